"""Generated values built from the pieces detectors look for: never an error, nothing left over."""

from __future__ import annotations

import random
from typing import Final

import pytest

from threadline.redaction import Redactor, rules_from_text

PIECES: Final = (
    "@",
    ".",
    "-",
    " ",
    "4111",
    "1111",
    "5555",
    "4444",
    "0",
    "9",
    "bob",
    "example",
    "com",
    "eyJ",
    "hbGciOi",
    "Bearer ",
    "basic ",
    "token=",
    "?",
    "&",
    "#",
    ":",
    "::",
    "10.0.0.",
    "REDACTED",
    "[",
    "]",
    "\x00",
    "<b>",
    "'",
    "é",
)
CASES: Final = 1500
REDACTOR: Final = Redactor(rules_from_text(detectors="email,card,jwt,bearer,ip"), "k")


def generated(seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(PIECES, k=rng.randint(1, 30))) for _ in range(CASES)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_redacting_generated_text_is_stable(seed: int) -> None:
    """Any mix of detector-like pieces is redacted without error; a second pass finds nothing."""
    changed = 0
    for value in generated(seed):
        once = REDACTOR.text(value)
        scrubbed = value if once is None else once
        changed += once is not None
        assert REDACTOR.text(scrubbed) is None, (value, scrubbed)
    assert changed > CASES // 10  # the pieces do form findings often


@pytest.mark.parametrize("seed", [4, 5])
def test_generated_urls_are_stable(seed: int) -> None:
    """URL attributes built from the same pieces are redacted once and stay that way."""
    changed = 0
    for value in generated(seed):
        attributes = {"url.full": "https://shop.example/p?" + value}
        once = REDACTOR.attributes(attributes, [])
        scrubbed = attributes if once is None else once
        changed += once is not None
        assert REDACTOR.attributes(scrubbed, []) is None, (value, scrubbed)
    assert changed > CASES // 10
