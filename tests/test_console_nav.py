"""The shared console nav heads the verification and moderation pages too (their own
three-link nav is gone) and keeps the rarely used pages under "More"."""

import re

import factories
import order_support as support
import pytest


@pytest.fixture
def p(session):
    parties = support.parties(session)
    session.commit()
    return parties


def nav(html: str) -> str:
    found = re.search(r'<nav class="console-nav.*?</nav>', html, re.S)
    assert found, "the console nav heads the page"
    return found.group(0)


@pytest.mark.parametrize("path, active", [
    ("/staff/verification", "verification"),
    ("/staff/verification/{provider}", "verification"),
    ("/staff/moderation", "moderation"),
    ("/staff/moderation/{product}", "moderation"),
])
def test_verification_and_moderation_pages_use_the_console_nav(session, client, p, path,
                                                                active):
    product = factories.product(session, p.provider_org, status="pending_review")
    session.commit()
    support.login(client, p.staff)
    response = client.get(path.format(provider=p.provider_org.id, product=product.id))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-testid="staff-nav"' not in html  # the old three-link nav
    bar = nav(html)
    assert re.search(rf'class="nav-link text-nowrap active" aria-current="page" href="[^"]+" '
                     rf'data-testid="console-nav-{active}"', bar)
    for key in ("dashboard", "progress", "orders", "settlement", "audit"):
        assert f'data-testid="console-nav-{key}"' in bar, key


def test_rare_pages_sit_under_more_which_names_the_current_one(session, client, p):
    support.login(client, p.staff)
    bar = nav(client.get("/staff/progress").get_data(as_text=True))
    menu = re.search(r'<ul class="dropdown-menu">(.*?)</ul>', bar, re.S).group(1)
    assert 'data-testid="console-nav-audit"' in menu
    assert 'data-testid="console-nav-vouchers"' in menu
    assert 'data-testid="console-nav-progress"' not in menu
    more = re.search(r'data-testid="console-nav-more">(.*?)</a>', bar, re.S).group(1)
    assert "More" in more

    bar = nav(client.get("/staff/audit").get_data(as_text=True))
    toggle = re.search(r'<a class="nav-link dropdown-toggle text-nowrap( active)?"[^>]*>(.*?)</a>',
                       bar, re.S)
    assert toggle.group(1) == " active" and "Audit log" in toggle.group(2)
    assert 'class="dropdown-item active" aria-current="page"' in bar
