"""Helpers every test shares, in one place: signing in and out (test client and browser) and
a minimal valid PDF. Test-area support modules (order_support, provider_support) re-export
them, so ``support.login(client, user)`` keeps working."""


import factories


def _email(who) -> str:
    return who if isinstance(who, str) else who.email


def login(client, user, password: str = factories.PASSWORD):
    """Sign in through the login form, as a person would (``user`` or an email address);
    fails the test unless the login is accepted."""
    from conftest import post_form

    response = post_form(client, "/login", {"email": _email(user), "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[-2500:]
    return response


def logout(client):
    from conftest import post_form

    return post_form(client, "/logout", {})


def pdf_bytes(text: str = "Report") -> bytes:
    """The smallest PDF the upload checks accept (one page: a PDF library must be able to
    read it); ``text`` tells files apart."""
    return (f"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            f"2 0 obj << /Type /Pages /Kids [9 0 R] /Count 1 >> endobj\n"
            f"9 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj\n% {text}\n"
            "trailer << /Root 1 0 R >>\n%%EOF\n").encode()


def browser_login(page, base: str, who, password: str = factories.PASSWORD) -> None:
    """Sign in in a Playwright page (``who`` is a user or an email address)."""
    from playwright.sync_api import expect

    page.goto(f"{base}/login")
    # By field name, not label: the page may be in Chinese (邮箱, 密码, 登录).
    form = page.locator("form").filter(has=page.locator("input[name=password]"))
    form.locator("input[name=email]").fill(_email(who))
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()
    expect(page.get_by_test_id("account-menu")).to_be_visible()


def browser_logout(page) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("account-menu").click()
    page.locator("form[action$='/logout'] button[type=submit]").click()
    expect(page.locator("a[href$='/login']").first).to_be_visible()


# --------------------------------------------------------------------------- Chinese in a browser

# Chinese screens are checked at a phone's width and a desktop's.
WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}


def browser_in_chinese(browser, base: str, who, width: str):
    """A new browser context signed in as ``who`` (at desktop width: the phone navbar folds
    the account menu away) whose browser asks for Chinese from then on, the account keeping
    no choice of its own; then the window takes ``width``. Returns (context, page)."""
    from marketplace.i18n import LOCALE_COOKIE

    context = browser.new_context(viewport=WIDTHS["desktop"])
    page = context.new_page()
    browser_login(page, base, who)
    context.add_cookies([{"name": LOCALE_COOKIE, "value": "zh_Hans_CN", "url": base}])
    page.set_viewport_size(WIDTHS[width])
    return context, page


def fits_on_screen(page, locator) -> None:
    """The element is inside the viewport horizontally: not pushed off-screen to the right."""
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"] + 1, box


def no_horizontal_scroll(page) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, f"{page.url} scrolls sideways by {overflow}px"

