"""Sign-up, login, logout and my account, through the web pages as a user would use them."""

import random
import re
from html import unescape

import factories
import pytest
from conftest import csrf_token, post_form
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from marketplace.credit_code import generate
from marketplace.database import db, utcnow
from marketplace.models import Organisation, User

GOOD_PASSWORD = "Blue-river-2024"
_rng = random.Random(2024)


def new_code() -> str:
    return generate(_rng)


def enterprise_form(**changes) -> dict:
    data = {
        "company_name": "苏州云帆微电子有限公司 Suzhou Yunfan Microelectronics",
        "credit_code": new_code(),
        "region": "suzhou_sip",
        "industry": "electronics",
        "size": "small",
        "contact_name": "Wang Fang",
        "contact_phone": "+86 512 6288 1234",
        "email": "wang.fang@yunfan-micro.cn",
        "password": GOOD_PASSWORD,
        "confirm": GOOD_PASSWORD,
        "accept_terms": "y",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def provider_form(**changes) -> dict:
    data = {
        "institution_name": "Gusu Patent Agency 姑苏专利代理事务所",
        "institution_type": "ip_agency",
        "contact_name": "Chen Jing",
        "contact_phone": "0512-6777 8899",
        "email": "chen.jing@gusu-ip.cn",
        "password": GOOD_PASSWORD,
        "confirm": GOOD_PASSWORD,
        "accept_terms": "y",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def text(response) -> str:
    return unescape(response.get_data(as_text=True))


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(Organisation)),
                db.session.scalar(select(func.count()).select_from(User)))


def field_errors(response, field_id: str) -> list[str]:
    """The messages shown under one field (its invalid-feedback block)."""
    body = response.get_data(as_text=True)
    match = re.search(rf'id="{field_id}-errors">((?:<div>.*?</div>)*)</div>', body, re.S)
    if not match:
        return []
    return [unescape(m) for m in re.findall(r"<div>(.*?)</div>", match.group(1), re.S)]


def make_member(app, kind: str = "enterprise", **fields) -> str:
    with app.app_context():
        org = factories.enterprise(db.session) if kind == "enterprise" else factories.provider(db.session)
        user = factories.user(db.session, org, **fields)
        db.session.commit()
        return user.email


def log_in(client, email: str, password: str = factories.PASSWORD, **extra):
    return post_form(client, "/login", {"email": email, "password": password, **extra})


def is_logged_in(client) -> bool:
    response = client.get("/account")
    return response.status_code == 200


# --- Sign-up chooser -----------------------------------------------------------------------


def test_signup_page_offers_enterprise_and_institution(client):
    body = text(client.get("/signup"))
    assert "I'm an enterprise" in body
    assert "I'm a service institution" in body
    assert 'href="/signup/enterprise"' in body
    assert 'href="/signup/provider"' in body


def test_enterprise_form_offers_reference_lists_in_the_viewers_language(client):
    body = text(client.get("/signup/enterprise"))
    assert "Suzhou Industrial Park" in body and "苏州工业园区" not in body
    assert "Biomedicine" in body
    assert "Medium (100–999 staff)" in body
    assert 'name="csrf_token"' in body
    client.set_cookie("lang", "zh_Hans_CN")
    chinese = text(client.get("/signup/enterprise"))
    assert "苏州工业园区" in chinese and "生物医药" in chinese and "中型" in chinese
    assert "Suzhou Industrial Park" not in chinese


# --- Enterprise sign-up --------------------------------------------------------------------


def test_enterprise_signup_creates_unverified_company_and_logs_in(app, client):
    form = enterprise_form(email="  Wang.Fang@Yunfan-Micro.CN ",
                           credit_code="91350100m000100y43")
    response = post_form(client, "/signup/enterprise", form)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"

    page = text(client.get("/account"))
    assert "Welcome to the Innovation Service Supermarket, Wang Fang!" in page
    assert "苏州云帆微电子有限公司 Suzhou Yunfan Microelectronics" in page
    assert "91350100M000100Y43" in page
    assert "Suzhou Industrial Park" in page
    assert "Electronics and semiconductors" in page
    assert "Small (10–99 staff)" in page
    assert "Not yet verified" in page
    assert "Enterprise member" in page

    with app.app_context():
        user = db.session.scalar(select(User))
        assert user.email == "wang.fang@yunfan-micro.cn"
        assert user.role == "enterprise" and user.is_org_owner
        assert user.password_hash != GOOD_PASSWORD
        org = user.organisation
        assert org.kind == "enterprise"
        assert org.verification_status == "unverified"
        assert org.credit_code == "91350100M000100Y43"
        assert (org.region, org.industry, org.size) == ("suzhou_sip", "electronics", "small")
        assert org.contact_phone == "+86 512 6288 1234"


def test_empty_enterprise_form_shows_every_message_and_creates_nothing(app, client):
    before = counts(app)
    response = post_form(client, "/signup/enterprise", {})
    assert response.status_code == 200
    body = text(response)
    for message in ["Enter the registered company name.",
                    "Enter the 18-character unified social credit code.",
                    "Choose the region where the company is registered.",
                    "Choose the company's main industry.", "Choose the company size.",
                    "Tell us who we should contact.", "Enter a phone number.",
                    "Enter your email address.", "Choose a password.",
                    "Please accept the platform rules to create an account."]:
        assert message in body
    assert "is-invalid" in body
    assert counts(app) == before
    assert not is_logged_in(client)


def test_bad_credit_code_message_is_shown_under_the_field(app, client):
    before = counts(app)
    response = post_form(client, "/signup/enterprise",
                         enterprise_form(credit_code="91350100M000100Y44"))
    assert field_errors(response, "credit_code") == [
        "The check character does not match: please check the code for typos."]
    response = post_form(client, "/signup/enterprise",
                         enterprise_form(credit_code="91350100M00010"))
    assert field_errors(response, "credit_code") == [
        "A unified social credit code has 18 characters; this one has 14."]
    assert counts(app) == before


def test_every_password_problem_is_shown_and_values_are_kept(app, client):
    before = counts(app)
    response = post_form(client, "/signup/enterprise",
                         enterprise_form(password="aaaa", confirm="aaab"))
    errors = field_errors(response, "password")
    assert "Use at least 10 characters." in errors
    assert "Use both letters and digits." in errors
    assert "This password is too easy to guess." in errors
    assert field_errors(response, "confirm") == ["The two passwords do not match."]
    body = response.get_data(as_text=True)
    # What the user typed stays in the form, except the passwords.
    assert 'value="wang.fang@yunfan-micro.cn"' in body
    assert "Suzhou Yunfan Microelectronics" in body
    assert '<option selected value="suzhou_sip">' in body
    assert 'value="aaaa"' not in body and 'value="aaab"' not in body
    assert counts(app) == before


def test_terms_must_be_accepted(app, client):
    before = counts(app)
    response = post_form(client, "/signup/enterprise", enterprise_form(accept_terms=None))
    assert field_errors(response, "accept_terms") == [
        "Please accept the platform rules to create an account."]
    assert counts(app) == before


def test_tampered_select_value_is_refused(app, client):
    before = counts(app)
    response = post_form(client, "/signup/enterprise", enterprise_form(region="atlantis"))
    assert field_errors(response, "region") == ["Not a valid choice."]
    assert counts(app) == before


def test_duplicate_email_is_refused_whatever_the_case(app, client):
    email = make_member(app, email="li.lei@example.com")
    before = counts(app)
    response = post_form(client, "/signup/enterprise", enterprise_form(email="LI.Lei@Example.com"))
    assert response.status_code == 200
    assert field_errors(response, "email") == [
        f"An account with {email} already exists. Log in instead, or use another email address."]
    assert counts(app) == before
    assert not is_logged_in(client)


def test_duplicate_credit_code_is_refused(app, client):
    with app.app_context():
        existing = factories.enterprise(db.session).credit_code
        db.session.commit()
    before = counts(app)
    response = post_form(client, "/signup/enterprise",
                         enterprise_form(credit_code=existing.lower()))
    assert field_errors(response, "credit_code") == [
        "An organisation with this unified social credit code is already registered. "
        "Ask its account owner to invite you, or contact platform staff."]
    assert counts(app) == before


def test_concurrent_signup_with_same_email_is_refused_cleanly(app, client):
    """Another request registers the same email between our check and our insert: the unique
    constraint fires, we roll back and show the field message instead of a 500."""
    email = "race@yunfan-micro.cn"
    fired = []

    def rival_commits_first(session, _context, _instances):
        if fired or not any(isinstance(obj, User) and obj.email == email for obj in session.new):
            return
        fired.append(True)
        with db.engine.begin() as conn:
            conn.execute(User.__table__.insert().values(
                email=email, full_name="Rival", password_hash="x", role="enterprise",
                active=True, is_org_owner=False, session_version=1, created_at=utcnow()))

    event.listen(Session, "before_flush", rival_commits_first)
    try:
        response = post_form(client, "/signup/enterprise", enterprise_form(email=email))
    finally:
        event.remove(Session, "before_flush", rival_commits_first)
    assert fired
    assert response.status_code == 200
    assert field_errors(response, "email") == [
        f"An account with {email} already exists. Log in instead, or use another email address."]
    assert counts(app) == (0, 1)  # only the rival's account; our organisation was rolled back
    assert not is_logged_in(client)


# --- Provider sign-up ----------------------------------------------------------------------


def test_provider_signup_creates_unverified_institution_and_states_next_step(app, client):
    response = post_form(client, "/signup/provider", provider_form())
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    page = text(client.get("/account"))
    assert "Gusu Patent Agency 姑苏专利代理事务所" in page
    assert "IP agency" in page
    assert ("Not yet verified</strong>\n          — your listings can't be published until "
            "platform staff verify your institution") in page
    assert "Next step: complete your institution application" in page
    assert "Service institution member" in page
    with app.app_context():
        user = db.session.scalar(select(User))
        assert (user.role, user.is_org_owner, user.email) == ("provider", True, "chen.jing@gusu-ip.cn")
        org = user.organisation
        assert (org.kind, org.verification_status, org.institution_type) == (
            "provider", "unverified", "ip_agency")
        assert org.credit_code is None
        assert not org.is_listed


def test_provider_signup_errors_create_nothing(app, client):
    before = counts(app)
    response = post_form(client, "/signup/provider", provider_form(
        institution_name="", institution_type="", confirm="Other-pass-99", email="not-an-email"))
    assert field_errors(response, "institution_name") == ["Enter the institution's registered name."]
    assert field_errors(response, "institution_type") == ["Choose the kind of institution."]
    assert field_errors(response, "confirm") == ["The two passwords do not match."]
    assert field_errors(response, "email") == ["Enter a valid email address, like name@company.cn."]
    assert counts(app) == before


def test_provider_duplicate_email_refused(app, client):
    make_member(app, "provider", email="chen.jing@gusu-ip.cn")
    before = counts(app)
    response = post_form(client, "/signup/provider", provider_form())
    assert "An account with chen.jing@gusu-ip.cn already exists." in text(response)
    assert counts(app) == before


def test_signup_never_creates_staff_even_if_a_role_is_posted(app, client):
    post_form(client, "/signup/provider", provider_form(role="admin"))
    with app.app_context():
        assert db.session.scalar(select(User.role)) == "provider"


# --- Login and logout ----------------------------------------------------------------------


def test_login_and_logout(app, client):
    email = make_member(app)
    response = log_in(client, email.upper())
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    page = text(client.get("/account"))
    assert "Welcome back, Test User" in page
    assert email in page
    with app.app_context():
        assert db.session.scalar(select(User.last_login_at)) is not None

    response = post_form(client, "/logout", {})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "You have logged out." in text(client.get("/"))
    assert client.get("/account").status_code == 302


def test_wrong_password_and_unknown_email_get_the_same_generic_message(app, client):
    email = make_member(app)
    wrong = log_in(client, email, "Wrong-password-1")
    unknown = log_in(client, "nobody@example.com", factories.PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert "Email or password is incorrect." in text(response)
        assert "already" not in text(response)
    strip = re.compile(r'(content|value)="[^"]*"')
    # Apart from the typed email and the CSRF token, the two pages are identical.
    assert strip.sub("", wrong.get_data(as_text=True)) == strip.sub("", unknown.get_data(as_text=True))
    assert not is_logged_in(client)


def test_deactivated_account_cannot_log_in(app, client):
    email = make_member(app, active=False)
    response = log_in(client, email)
    assert "This account has been deactivated." in text(response)
    assert not is_logged_in(client)
    # Without the right password a deactivated account looks like any other failure.
    assert "Email or password is incorrect." in text(log_in(client, email, "Wrong-password-1"))


def test_remember_me_sets_a_persistent_cookie(app, client):
    email = make_member(app)
    log_in(client, email, remember="y")
    assert client.get_cookie("remember_token") is not None


def test_login_required_pages_send_visitors_to_login_and_back(app, client):
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Faccount"
    email = make_member(app)
    response = log_in(client, email, next="/account")
    assert response.headers["Location"] == "/account"


def test_safe_next_is_followed(app, client):
    email = make_member(app)
    token = csrf_token(client)
    response = client.post("/login?next=/signup%3Fx%3D1", data={
        "csrf_token": token, "email": email, "password": factories.PASSWORD})
    assert response.headers["Location"] == "/signup?x=1"


@pytest.mark.parametrize("target", ["//evil.example", "http://evil.example/account",
                                    "https://evil.example", "/\\evil.example",
                                    "javascript:alert(1)", "evil.example", "///evil.example"])
def test_open_redirect_next_is_refused(app, client, target):
    email = make_member(app)
    response = log_in(client, email, next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"


def test_login_page_does_not_echo_unsafe_next(client):
    body = client.get("/login?next=//evil.example").get_data(as_text=True)
    assert "evil.example" not in body


def test_logged_in_users_are_sent_from_login_and_signup_to_their_account(app, client):
    log_in(client, make_member(app))
    for path in ("/login", "/signup", "/signup/enterprise", "/signup/provider"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"] == "/account"


def test_logout_is_post_only(app, client):
    log_in(client, make_member(app))
    assert client.get("/logout").status_code == 405
    assert is_logged_in(client)


def test_post_without_csrf_token_is_refused_with_the_site_error_page(app, client):
    email = make_member(app)
    response = client.post("/login", data={"email": email, "password": factories.PASSWORD})
    assert response.status_code == 400
    body = text(response)
    assert "Your form expired or was sent without its security token." in body
    assert "Back to the supermarket" in body
    assert not is_logged_in(client)

    log_in(client, email)
    response = client.post("/logout", data={})
    assert response.status_code == 400
    assert is_logged_in(client)

    before = counts(app)
    response = client.post("/signup/enterprise", data=enterprise_form())
    assert response.status_code == 400
    assert counts(app) == before


# --- My account ----------------------------------------------------------------------------


def test_account_page_shows_user_and_company(app, client):
    with app.app_context():
        org = factories.enterprise(db.session, name="Kunshan Precision Optics Co., Ltd.")
        org.region, org.industry, org.size = "kunshan", "advanced_manufacturing", "medium"
        user = factories.user(db.session, org, phone="13800001111")
        user.full_name = "Zhao Min"
        email, code = user.email, org.credit_code
        db.session.commit()
    log_in(client, email)
    page = text(client.get("/account"))
    for expected in ["Zhao Min", email, "13800001111", "Enterprise member", "Account owner",
                     "Kunshan Precision Optics Co., Ltd.", code, "Kunshan",
                     "Advanced manufacturing", "Medium (100–999 staff)", "Verified",
                     "Change password"]:
        assert expected in page
    assert "staff console" not in page.lower()


def test_staff_account_links_to_the_staff_console(app, client):
    with app.app_context():
        email = factories.user(db.session, role="staff").email
        db.session.commit()
    log_in(client, email)
    page = text(client.get("/account"))
    assert "Platform staff" in page
    assert 'href="/staff"' in page
    assert "Open the staff console" in page


def test_change_password_signs_out_other_sessions(app):
    email = make_member(app)
    laptop, phone = app.test_client(), app.test_client()
    log_in(laptop, email)
    log_in(phone, email, remember="y")
    assert is_logged_in(laptop) and is_logged_in(phone)

    new_password = "Green-valley-77"
    response = post_form(laptop, "/account/password", {
        "current_password": factories.PASSWORD, "new_password": new_password,
        "confirm": new_password})
    assert response.status_code == 302
    assert "Your password has been changed. Other devices have been signed out." in text(
        laptop.get("/account"))

    assert is_logged_in(laptop)
    # The phone is signed out, even with its remember-me cookie.
    response = phone.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")

    fresh = app.test_client()
    assert "Email or password is incorrect." in text(log_in(fresh, email, factories.PASSWORD))
    assert log_in(fresh, email, new_password).headers["Location"] == "/account"


def test_change_password_requires_the_current_password_and_good_new_one(app, client):
    email = make_member(app)
    log_in(client, email)
    response = post_form(client, "/account/password", {
        "current_password": "Not-my-password-1", "new_password": "Green-valley-77",
        "confirm": "Green-valley-77"})
    assert field_errors(response, "current_password") == ["Your current password is not correct."]

    response = post_form(client, "/account/password", {
        "current_password": factories.PASSWORD, "new_password": "short1", "confirm": "short2"})
    assert "Use at least 10 characters." in field_errors(response, "new_password")
    assert field_errors(response, "confirm") == ["The two passwords do not match."]

    # Nothing changed: the old password still works and this session is still signed in.
    assert is_logged_in(client)
    assert log_in(app.test_client(), email).headers["Location"] == "/account"
