"""Chinese first: which language a page speaks, the switch, Beijing time and money formats,
and a Chinese catalogue with nothing left untranslated."""

import re
from datetime import UTC, date, datetime

import pytest
from conftest import csrf_token, post_form

from marketplace import i18n
from marketplace.database import db
from marketplace.i18n_check import catalogue_report
from marketplace.models import User


@pytest.fixture
def chinese_default(app, monkeypatch):
    """The production default (most tests pin English)."""
    monkeypatch.setitem(app.config, "DEFAULT_LOCALE", "zh_Hans_CN")


def html_lang(response) -> str:
    match = re.search(r'<html lang="([^"]+)"', response.get_data(as_text=True))
    assert match, "no <html lang>"
    return match.group(1)


def make_member(app, email="li.na@example.cn", locale=None):
    """A staff member (no organisation needed). Outside any request: requests made inside
    one app context would share flask-login's ``g`` and so one login."""
    from marketplace.passwords import hash_password

    with app.app_context():
        db.session.add(User(email=email, password_hash=hash_password("Long-enough-pass-2026"),
                            full_name="Li Na", role="staff", locale=locale))
        db.session.commit()


def saved_locale(app, email="li.na@example.cn"):
    with app.app_context():
        return db.session.query(User).filter_by(email=email).one().locale


def log_in(client, email):
    response = post_form(client, "/login", {"email": email, "password": "Long-enough-pass-2026"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


# --------------------------------------------------------------------------- choosing

def test_first_visit_without_a_preference_is_in_chinese(client, chinese_default):
    response = client.get("/")
    assert html_lang(response) == "zh-Hans-CN"
    page = response.get_data(as_text=True)
    assert "创新服务超市" in page and "登录" in page
    assert ">Log in<" not in page


def test_browser_language_decides_the_first_visit(client, chinese_default):
    english = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert html_lang(english) == "en"
    assert ">Log in<" in english.get_data(as_text=True)
    chinese = client.get("/", headers={"Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"})
    assert html_lang(chinese) == "zh-Hans-CN"
    other = client.get("/", headers={"Accept-Language": "fr-FR"})
    assert html_lang(other) == "zh-Hans-CN", "an unsupported language falls back to Chinese"


def test_visitor_switch_is_kept_in_a_cookie_over_the_browser_language(client, chinese_default):
    response = post_form(client, "/language", {"locale": "en", "next": "/institutions?page=1"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/institutions?page=1")
    assert "lang=en" in response.headers["Set-Cookie"]
    page = client.get("/", headers={"Accept-Language": "zh-CN"})
    assert html_lang(page) == "en"
    post_form(client, "/language", {"locale": "zh_Hans_CN", "next": "/"})
    assert html_lang(client.get("/", headers={"Accept-Language": "en"})) == "zh-Hans-CN"


def test_switch_refuses_other_sites_and_unknown_languages(client, chinese_default):
    for target in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = post_form(client, "/language", {"locale": "en", "next": target})
        assert response.headers["Location"].endswith("/"), target
        assert "evil" not in response.headers["Location"]
    response = post_form(client, "/language", {"locale": "fr", "next": "/"})
    assert "Set-Cookie" not in response.headers or "lang=" not in response.headers["Set-Cookie"]


def test_switch_needs_the_csrf_token(client):
    response = client.post("/language", data={"locale": "en", "next": "/"})
    assert response.status_code == 400


def test_member_choice_follows_them_to_another_device(app, client, chinese_default):
    make_member(app)
    log_in(client, "li.na@example.cn")
    post_form(client, "/language", {"locale": "en", "next": "/account"})
    assert saved_locale(app) == "en"
    other_device = app.test_client()
    log_in(other_device, "li.na@example.cn")
    page = other_device.get("/account", headers={"Accept-Language": "zh-CN"})
    assert html_lang(page) == "en"


def test_member_who_never_chose_follows_the_browser(app, chinese_default):
    make_member(app)
    device = app.test_client()
    log_in(device, "li.na@example.cn")
    assert html_lang(device.get("/account", headers={"Accept-Language": "en-US"})) == "en"
    assert html_lang(device.get("/account", headers={"Accept-Language": "zh-CN"})) == "zh-Hans-CN"


def test_visitor_page_cache_keeps_languages_apart(client, chinese_default):
    chinese = client.get("/", headers={"Accept-Language": "zh-CN"})
    english = client.get("/", headers={"Accept-Language": "en"})
    again = client.get("/", headers={"Accept-Language": "zh-CN"})
    assert html_lang(chinese) == html_lang(again) == "zh-Hans-CN"
    assert html_lang(english) == "en"


def test_language_switch_on_every_page_offers_the_other_language(client, chinese_default):
    page = client.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert 'value="en"' in page and "English" in page
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'value="zh_Hans_CN"' in page and "中文" in page


# --------------------------------------------------------------------------- time

def test_times_are_shown_in_beijing_time_per_locale(app):
    moment = datetime(2026, 12, 7, 6, 5, tzinfo=UTC)
    with app.test_request_context():
        assert i18n.format_datetime(moment, "zh_Hans_CN") == "2026年12月7日 14:05"
        assert i18n.format_datetime(moment, "en") == "7 Dec 2026, 14:05"
        # 23:30 UTC on the 6th is already the 7th in Suzhou.
        late = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
        assert i18n.format_date(late, "zh_Hans_CN") == "2026年12月7日"
        assert i18n.format_date(date(2026, 12, 7), "en") == "7 Dec 2026"


def test_local_calendar_days_and_months_start_at_beijing_midnight(app):
    with app.app_context():
        start, end = i18n.local_month_bounds(2026, 12)
        assert start == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
        assert end == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
        # 07:30 on 1 December in Beijing is 23:30 on 30 November in UTC: December's.
        completed = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
        assert start <= completed < end
        day_start, day_end = i18n.local_day_bounds(date(2026, 12, 7))
        assert day_start == datetime(2026, 12, 6, 16, 0, tzinfo=UTC)
        assert (day_end - day_start).total_seconds() == 86400
        assert i18n.local_today(datetime(2026, 12, 6, 17, 0, tzinfo=UTC)) == date(2026, 12, 7)


# --------------------------------------------------------------------------- money

@pytest.mark.parametrize(("amount", "locale", "expected"), [
    (5_000_000_00, "zh_Hans_CN", "500万元"),
    (120_000_000_00, "zh_Hans_CN", "1.2亿元"),
    (50_000_00, "zh_Hans_CN", "5万元"),
    (12_345_00, "zh_Hans_CN", "¥12,345.00"),  # not a round number of 万: stays exact
    (1_234_50, "zh_Hans_CN", "¥1,234.50"),
    (5_000_000_00, "en", "¥5M"),
    (80_000_00, "en", "¥80k"),
])
def test_compact_amounts_count_in_wan_in_chinese(amount, locale, expected):
    from orders.money import format_compact

    assert format_compact(amount, "CNY", chinese=i18n.is_chinese(locale)) == expected


def test_money_ranges_say_the_unit_once():
    from orders.money import format_range

    assert format_range(50_000_000, 300_000_000, "CNY", chinese=True) == "50万–300万元"
    assert format_range(50_000_000, 300_000_000, "CNY", chinese=False) == "¥500k–¥3M"


def test_financial_card_shows_wan_in_chinese_and_k_m_in_english(app, chinese_default):
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        from flask import render_template_string

        assert render_template_string("{{ 5000000|money_range(30000000) }}") == "5万–30万元"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        from flask import render_template_string

        assert render_template_string("{{ 5000000|money_range(30000000) }}") == "¥50k–¥300k"


# --------------------------------------------------------------------------- catalogue

def test_chinese_catalogue_translates_every_message():
    report = catalogue_report("zh_Hans_CN")
    assert report.total > 0
    assert report.missing == [], f"{len(report.missing)} ids not in messages.po (scripts/i18n update)"
    assert report.untranslated == [], f"{len(report.untranslated)} untranslated"
    assert report.fuzzy == [], f"{len(report.fuzzy)} fuzzy"


def test_placeholders_survive_translation():
    """A translation that drops or renames %(name)s would crash or mislead at run time."""
    from babel.messages.pofile import read_po

    from marketplace.i18n_check import ROOT

    with open(ROOT / "translations/zh_Hans_CN/LC_MESSAGES/messages.po", "rb") as handle:
        catalog = read_po(handle)
    pattern = re.compile(r"%\(\w+\)[sd]|\{\w+\}")
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(pattern.findall(ids[-1]))
        for text in strings:
            assert set(pattern.findall(text)) == wanted, (message.id, text)


def test_chinese_page_has_no_csrf_or_markup_breakage(client, chinese_default):
    token = csrf_token(client, "/")
    assert token
    page = client.get("/login", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200
    assert html_lang(page) == "zh-Hans-CN"


@pytest.mark.parametrize(("text", "fen"), [
    ("1,200.50", 120050), ("1200.5", 120050), ("12万", 12_000_000), ("12万元", 12_000_000),
    ("1.5亿", 15_000_000_000), ("¥3,000", 300000), ("0.5万", 500_000),
])
def test_amount_inputs_accept_grouping_and_wan(text, fen):
    from orders.money import parse_amount

    assert parse_amount(text, "CNY") == fen


@pytest.mark.parametrize("text", ["12万5", "1.2.3", "万", "1万2千", "1,200.505", "12 thousand"])
def test_ambiguous_amounts_are_refused_with_a_reason(text):
    from orders.money import MoneyError, parse_amount

    with pytest.raises(MoneyError, match=r"amount|decimal"):
        parse_amount(text, "CNY")


def test_imported_macros_speak_each_requests_language(app, client):
    """A macro file's top level runs once when first imported: labels built there would
    keep the language of the first page that used it (the listing cards' mode badges did)."""
    import factories

    with app.app_context():
        factories.product(db.session, factories.provider(db.session))
        db.session.commit()
    client.set_cookie("lang", "zh_Hans_CN")
    chinese = client.get("/c/patent-application").get_data(as_text=True)
    client.set_cookie("lang", "en")
    english = client.get("/c/patent-application").get_data(as_text=True)
    badge = re.compile(r'data-testid="mode-badge"><i class="bi [\w-]+"></i> ([^<]+)</span>')
    assert badge.findall(chinese) and badge.findall(english)
    assert set(badge.findall(english)) == {"Packaged"}
    assert "Packaged" not in set(badge.findall(chinese))
