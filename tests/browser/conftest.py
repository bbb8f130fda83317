"""Every browser test also checks that the pages it visited logged no console error: no
Content-Security-Policy violation (inline script or style, eval, a foreign host), no
uncaught JavaScript exception, no missing static asset and no server error.

Pages are watched wherever they come from: the ``page`` fixture, ``context.new_page()``, or a
context the test opens itself with ``browser.new_context()``. Application answers in the 4xx
range (a 403 page, a form refused with 422, an htmx 409) are part of what tests check, so
Chromium's "Failed to load resource" line for them is not an error here, except for static
files and the favicon.
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
        self._watched: set[int] = set()

    def page(self, page) -> None:
        if id(page) in self._watched:
            return
        self._watched.add(id(page))
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.problems.append(f"uncaught error on {page.url}: {error}"))

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


@pytest.fixture(autouse=True)
def no_console_errors(request, monkeypatch):
    watch = ConsoleWatch()
    names = request.fixturenames
    if "browser" in names or "page" in names or "context" in names:
        browser = request.getfixturevalue("browser")
        original = browser.new_context

        def new_context(*args, **kwargs):
            context = original(*args, **kwargs)
            watch.context(context)
            return context

        monkeypatch.setattr(browser, "new_context", new_context)
    if "context" in names or "page" in names:
        watch.context(request.getfixturevalue("context"))
    yield watch
    assert not watch.problems, "the browser reported:\n" + "\n".join(watch.problems)
