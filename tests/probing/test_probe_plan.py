"""Probe plans from TOML: every key checked, bad values named, never silently ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline.probing.plan import PlanError, load_plan, parse_plan


def test_a_scripted_journey_from_toml(tmp_path: Path) -> None:
    """Steps keep their order, method, headers, body, expected status and budget."""
    path = tmp_path / "checkout.toml"
    path.write_text(
        """
services = ["gateway", "orders"]

[[steps]]
name = "add"
method = "post"
url = "http://127.0.0.1:8000/cart"
headers = { "Content-Type" = "application/json" }
body = '{"sku": "tea"}'
budget = "250ms"

[[steps]]
url = "http://127.0.0.1:8000/checkout"
status = 402
""",
        encoding="utf-8",
    )
    plan = load_plan(path)
    assert plan.name == "checkout"
    assert plan.services == ("gateway", "orders")
    first, second = plan.steps
    assert (first.name, first.method, first.budget_ns) == ("add", "POST", 250_000_000)
    assert first.headers == (("Content-Type", "application/json"),)
    assert (second.name, second.method, second.status, second.budget_ns) == (
        "step 2",
        "GET",
        402,
        None,
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": []}, "at least one"),
        ({"steps": [{"url": "ftp://x/"}]}, r"steps\[1\].url must be an http"),
        ({"steps": [{"url": "http://x/", "budget": "soon"}]}, r"steps\[1\].budget"),
        ({"steps": [{"url": "http://x/", "status": 99}]}, r"steps\[1\].status"),
        ({"steps": [{"url": "http://x/", "method": "FETCH"}]}, r"steps\[1\].method"),
        ({"steps": [{"url": "http://x/", "timeout": 3}]}, "unknown keys timeout"),
        ({"url": "http://x/", "steps": [{"url": "http://x/"}]}, "either url"),
        ({"url": "http://x/", "services": "gateway"}, "services must be a list"),
    ],
)
def test_bad_plans_are_refused_naming_the_key(data: dict[str, object], message: str) -> None:
    """Each bad value is a PlanError that names the key and what is allowed."""
    with pytest.raises(PlanError, match=message):
        parse_plan(data)


def test_a_file_that_is_not_toml(tmp_path: Path) -> None:
    """Broken TOML is a PlanError naming the file."""
    path = tmp_path / "bad.toml"
    path.write_text("[[steps]\n", encoding="utf-8")
    with pytest.raises(PlanError, match=r"bad\.toml is not valid TOML"):
        load_plan(path)
