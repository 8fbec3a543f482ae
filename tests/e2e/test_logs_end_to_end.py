"""Logs joined to traces and journeys, end to end, all real: ``threadline serve`` on
loopback, two FastAPI services configured with ``logs=True`` that log at WARNING inside
one request (checkout calls payments), the trace and journey pages in headless
Chromium, and ``threadline erase --user`` removing the lines."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, Final

import httpx
import pytest

from sdk.conftest import clean_environ
from sdk.integrations.services import running_script
from support.browser import CHROMIUM, CHROMIUM_ARGS
from support.missing import require_executable, require_module
from support.processes import ServeProcess, threadline_serve

pytestmark = pytest.mark.e2e

SESSION: Final = "s-e2e-logs"
USER: Final = "ada@example.com"
# One pseudonymisation key for the services and the server, as in production: the
# server finds the raw user id's pseudonym with it.
KEY_ENV: Final = {"THREADLINE_USER_ID_KEY": "e2e-logs-secret-key-0123456789abcdef"}
LINES: Final = (
    "stock is low for sku-7",
    "card declined by the issuer",
    "payment refused (51), order kept",
)
WAIT_S: Final = 30.0
POLL_S: Final = 0.2
WAIT_MS: Final = 10_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    directory = tmp_path_factory.mktemp("logs-e2e")
    with threadline_serve(directory, env=clean_environ(KEY_ENV)) as server:
        yield server


def _poll(api: httpx.Client, path: str, done: Any, **params: str) -> Any:
    """GET ``path`` until ``done(answer)`` (bounded wait); the last answer."""
    answer: Any = None
    deadline = time.monotonic() + WAIT_S
    for _ in range(int(WAIT_S / POLL_S)):
        response = api.get(path, params=params)
        if response.status_code == 200:
            answer = response.json()
            if done(answer) or time.monotonic() > deadline:
                break
        time.sleep(POLL_S)
    return answer


@pytest.fixture(scope="module")
def request_made(
    served: ServeProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """One checkout request through both services; its stored lines and trace."""
    logs_dir = tmp_path_factory.mktemp("logs-e2e-services")
    env = {"THREADLINE_ENDPOINT": served.url, **KEY_ENV}
    with ExitStack() as services, httpx.Client(base_url=served.url, timeout=10) as api:
        payments = services.enter_context(
            running_script("logging_shop", "payments", env=env, log=logs_dir / "payments.log")
        )
        checkout = services.enter_context(
            running_script(
                "logging_shop",
                "checkout",
                f"http://127.0.0.1:{payments['port']}",
                env=env,
                log=logs_dir / "checkout.log",
            )
        )
        response = httpx.get(
            f"http://127.0.0.1:{checkout['port']}/checkout",
            headers={"X-Session-Id": SESSION, "X-User": USER},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        lines = _poll(api, "/api/logs", lambda a: len(a["logs"]) >= len(LINES), session=SESSION)[
            "logs"
        ]
        assert [line["body"] for line in lines] == list(LINES), lines
        trace_id = lines[0]["trace_id"]
        logged_in = {line["span_id"] for line in lines}
        trace = _poll(  # until the spans that logged have all arrived
            api,
            f"/api/traces/{trace_id}",
            lambda t: logged_in <= {span["span_id"] for span in t["spans"]},
        )
        yield {"lines": lines, "trace": trace, "api": api}


def test_the_lines_carry_their_trace_span_and_journey(request_made: dict[str, Any]) -> None:
    """All three lines are in the request's one trace, each under the server span of the
    service that logged it, with the session and the (pseudonymised) user."""
    lines, trace = request_made["lines"], request_made["trace"]
    spans = {span["span_id"]: span for span in trace["spans"]}
    assert {line["trace_id"] for line in lines} == {trace["trace_id"]}
    owners = [(spans[line["span_id"]]["service"], spans[line["span_id"]]["kind"]) for line in lines]
    assert owners == [
        ("shop-checkout", "server"),
        ("shop-payments", "server"),
        ("shop-checkout", "server"),
    ]
    assert {line["session_id"] for line in lines} == {SESSION}
    assert all(line["user_id"] for line in lines)
    assert {line["severity_text"] for line in lines} == {"WARNING"}


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    require_executable(str(CHROMIUM))
    sync_api = require_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(WAIT_MS)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            yield page, errors
        finally:
            browser.close()


def test_the_trace_page_shows_each_line_under_its_span(
    served: ServeProcess, request_made: dict[str, Any], chromium: tuple[Any, list[str]]
) -> None:
    """Markers on both services' server spans, each span's lines in its detail panel,
    and the Logs tab with the three lines in order."""
    page, errors = chromium
    trace = request_made["trace"]
    page.goto(f"{served.url}/trace/{trace['trace_id']}")
    page.wait_for_selector("body[data-ready-logs=true]")
    checkout = page.locator("#rows .row", has_text="GET /checkout")
    payments = page.locator("#rows .row", has_text="GET /charge")
    assert "2 log lines" in checkout.first.inner_text()
    assert "1 log line" in payments.first.inner_text()
    assert checkout.first.locator(".cell-bar .log-tick.warn").count() == 2  # on the bar
    assert payments.first.locator(".cell-bar .log-tick.warn").count() == 1
    payments.first.click()
    page.wait_for_function(
        "document.querySelector('#detail').innerText.includes('card declined by the issuer')"
    )
    assert "stock is low" not in page.inner_text("#detail")
    checkout.first.click()
    page.wait_for_function("document.querySelector('#detail').innerText.includes('order kept')")
    detail = page.locator("#detail .log-body").all_inner_texts()
    assert detail == [LINES[0], LINES[2]]
    assert page.locator("#trace-logs .log-body").all_inner_texts() == list(LINES)
    assert errors == []


def test_the_journey_page_shows_the_lines_in_order(
    served: ServeProcess, request_made: dict[str, Any], chromium: tuple[Any, list[str]]
) -> None:
    """The session's page lists the request's step, then its three lines oldest first,
    then where the journey stopped."""
    page, errors = chromium
    page.goto(f"{served.url}/journey/{SESSION}")
    page.wait_for_selector("body[data-ready-logs=true]")
    items = page.locator("#steps > li")
    kinds = [
        "log" if "log-step" in (items.nth(n).get_attribute("class") or "") else
        "stop" if items.nth(n).get_attribute("id") == "journey-stop" else
        "step" if "step" in (items.nth(n).get_attribute("class") or "") else "other"
        for n in range(items.count())
    ]  # fmt: skip
    assert kinds == ["step", "log", "log", "log", "stop"]
    logged = page.locator("#steps > li.log-step .log-body").all_inner_texts()
    assert logged == list(LINES)
    assert errors == []


def test_erasing_the_user_removes_the_lines(
    served: ServeProcess, request_made: dict[str, Any]
) -> None:
    """``threadline erase --user`` with the raw id removes the journey's lines and spans."""
    erased = subprocess.run(
        [sys.executable, "-m", "threadline.cli.main", "erase", "--user", USER],
        env=clean_environ({"THREADLINE_SERVER": served.url, **KEY_ENV}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert erased.returncode == 0, erased.stderr
    api: httpx.Client = request_made["api"]
    assert api.get("/api/logs", params={"session": SESSION}).json()["logs"] == []
    assert api.get("/api/logs", params={"user": USER}).json()["logs"] == []
    trace_id = request_made["trace"]["trace_id"]
    assert api.get(f"/api/traces/{trace_id}").status_code == 404
