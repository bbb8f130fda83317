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
