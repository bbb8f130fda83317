"""Every browser test also checks that the pages it visited logged no console error: no
Content-Security-Policy violation (inline script or style, eval, a foreign host), no
uncaught JavaScript exception, no missing static asset and no server error.

Pages are watched wherever they come from: the ``page`` fixture, ``context.new_page()``, or a
context the test opens itself with ``browser.new_context()``. Application answers in the 4xx
range (a 403 page, a form refused with 422, an htmx 409) are part of what tests check, so
Chromium's "Failed to load resource" line for them is not an error here, except for static
files and the favicon.

Every context runs with ``prefers-reduced-motion: reduce``, which turns off Bootstrap's
collapse and fade transitions: a step that opens a collapsed form and fills it then never
races the animation on a slow machine. When a browser test fails, the address and the alert
messages of every page it still has open are printed with the failure, and a screenshot of
each is saved under test-artifacts/<test name>/, so a CI log says what the page showed.
"""

import importlib.util
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

# Assertions wait for the page up to 15 s instead of Playwright's 5 s: CI runs the suite on a
# small shared machine where a form post with an upload can take longer than 5 s to answer.
expect.set_options(timeout=15_000)

# Tests and helpers everywhere import helpers with `from conftest import post_form`. Once this
# file is loaded, the name "conftest" means this module (pytest imports every conftest.py as
# "conftest"), so the helpers of tests/conftest.py are offered here too: a copy of that
# module loaded under another name (its fixtures are not registered twice: pytest only
# collects fixtures from the conftest modules themselves).
_spec = importlib.util.spec_from_file_location(
    "tests_top_conftest", Path(__file__).resolve().parent.parent / "conftest.py")
_top = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_top)
csrf_token = _top.csrf_token
post_form = _top.post_form


def __getattr__(name):
    return getattr(_top, name)


RESOURCE_FAILURE = re.compile(r"^Failed to load resource: the server responded with a status of (\d{3})")


class ConsoleWatch:
    def __init__(self):
        self.problems: list[str] = []
        self._pages: list = []

    def page(self, page) -> None:
        if any(seen is page for seen in self._pages):
            return
        self._pages.append(page)
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.problems.append(f"uncaught error on {page.url}: {error}"))

    def describe_pages(self, test_name: str) -> None:
        """Print what each open page shows and save a screenshot of it (after a failure)."""
        folder = _top.ARTIFACTS / test_name
        folder.mkdir(parents=True, exist_ok=True)
        for number, page in enumerate(self._pages, start=1):
            if page.is_closed():
                continue
            try:
                alerts = page.locator(".alert, .invalid-feedback").all_inner_texts()
                path = folder / f"failure-page-{number}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"page {number} at {page.url}: alerts {alerts!r}; screenshot {path}")
            except Exception as exc:  # a page that died with the failure still gets a line
                print(f"page {number} at {page.url}: not described ({exc})")

    def context(self, context) -> None:
        for page in context.pages:
            self.page(page)
        context.on("page", self.page)

    def _console(self, page, message) -> None:
        if message.type != "error":
            return
        text = message.text
        failure = RESOURCE_FAILURE.match(text)
        if failure:
            url = (message.location or {}).get("url", "")
            status = int(failure.group(1))
            if status < 500 and "/static/" not in url and not url.endswith("favicon.ico"):
                return
            text = f"{text} ({url})"
        self.problems.append(f"console error on {page.url}: {text}")


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """The ``context`` and ``page`` fixtures get reduced motion too."""
    return {**browser_context_args, "reduced_motion": "reduce"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report


@pytest.fixture(autouse=True)
def no_console_errors(request, monkeypatch):
    watch = ConsoleWatch()
    names = request.fixturenames
    if "browser" in names or "page" in names or "context" in names:
        browser = request.getfixturevalue("browser")
        original = browser.new_context

        def new_context(*args, **kwargs):
            kwargs.setdefault("reduced_motion", "reduce")
            context = original(*args, **kwargs)
            watch.context(context)
            return context

        monkeypatch.setattr(browser, "new_context", new_context)
    if "context" in names or "page" in names:
        watch.context(request.getfixturevalue("context"))
    yield watch
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        watch.describe_pages(request.node.name)
    assert not watch.problems, "the browser reported:\n" + "\n".join(watch.problems)
