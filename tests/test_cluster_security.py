"""Holes a probe found (issue 16): each test here failed on the code before the fix."""

import factories
from conftest import post_form

from marketplace.database import db


def _member(app) -> str:
    with app.app_context():
        org = factories.enterprise(db.session)
        email = factories.user(db.session, org).email
        db.session.commit()
    return email


def _log_in(client, email, **extra):
    return post_form(client, "/login", {"email": email, "password": factories.PASSWORD,
                                        **extra})


# --- logout ends the login on the server --------------------------------------------------

def test_logout_ends_copied_session_and_remember_me_cookies(app):
    email = _member(app)
    browser = app.test_client()
    assert _log_in(browser, email, remember="y").status_code == 302
    session_cookie = browser.get_cookie("session").value
    remember_cookie = browser.get_cookie("remember_token").value

    thief = app.test_client()  # a copy of the whole cookie jar
    thief.set_cookie("session", session_cookie)
    thief.set_cookie("remember_token", remember_cookie)
    remembered = app.test_client()  # only the one-year remember-me cookie
    remembered.set_cookie("remember_token", remember_cookie)
    assert thief.get("/account").status_code == 200
    assert remembered.get("/account").status_code == 200

    post_form(browser, "/logout", {})

    for client in (browser, thief, remembered):
        response = client.get("/account")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")
    # Logging in again works.
    assert _log_in(app.test_client(), email).headers["Location"] == "/account"


# --- sign-up: no organisation may copy another's name or credit code ------------------------

def _enterprise_form(**changes):
    from test_accounts import enterprise_form

    return enterprise_form(**changes)


def test_signup_refuses_a_name_or_code_copying_another_organisation(app, client):
    with app.app_context():
        victim = factories.enterprise(db.session, name="Suzhou Nano Materials Co., Ltd.")
        db.session.commit()
        name, code = victim.name, victim.credit_code
    for impostor in ("  suzhou nano  materials co ltd ", "ＳＵＺＨＯＵ Nano Materials Co., Ltd.",
                     code, f"Nano {code} Trading"):
        response = post_form(client, "/signup/enterprise", _enterprise_form(
            company_name=impostor, email=f"x{len(impostor)}@impostor.cn"))
        assert response.status_code == 200, impostor
        assert "already used by a registered organisation" in response.get_data(as_text=True)
    response = post_form(client, "/signup/provider", {
        "institution_name": name, "institution_type": "ip_agency", "contact_name": "Chen",
        "contact_phone": "0512-6777 8899", "email": "p@impostor.cn",
        "password": "Blue-river-2024", "confirm": "Blue-river-2024", "accept_terms": "y"})
    assert "already used by a registered organisation" in response.get_data(as_text=True)
    with app.app_context():
        from sqlalchemy import func, select

        from marketplace.models import Organisation
        assert db.session.scalar(select(func.count()).select_from(Organisation)) == 1


# --- vouchers: exactly one organisation, the programme's regions --------------------------

def _programme(session, staff, regions):
    from datetime import date, timedelta

    from orders import vouchers

    return vouchers.create_programme(session, staff, vouchers.ProgrammeInput(
        name="SIP innovation vouchers", funder="SIP Science Bureau", budget=10_000_000,
        valid_from=date.today() - timedelta(days=1), valid_until=date.today() + timedelta(days=30),
        max_share_bp=5000, eligible_category_ids=[], regions=regions))


def test_voucher_grant_names_one_organisation_picked_from_a_list(app, client):
    import order_support as osup
    from sqlalchemy import select

    from orders.models import Voucher

    with app.app_context():
        admin = factories.user(db.session, role="admin")
        real = factories.enterprise(db.session, name="Suzhou Nano Materials Co., Ltd.")
        # An impostor that got in before names were checked, named after the real one's code.
        impostor = factories.enterprise(db.session, name=real.credit_code)
        programme = _programme(db.session, admin, ["suzhou_sip"])
        db.session.commit()
        real_id, impostor_id, code = real.id, impostor.id, real.credit_code
        programme_id = programme.id
    osup.login(client, admin)
    page = client.get(f"/staff/vouchers/{programme_id}?q={code}").get_data(as_text=True)
    # Both matches are listed with their credit code and region; nothing is picked for staff.
    assert page.count('name="organisation_id"') == 2
    assert "Suzhou Industrial Park" in page and "checked" not in page
    # Typing the code is not a grant: an organisation must be picked.
    response = post_form(client, f"/staff/vouchers/{programme_id}?q={code}",
                         {"organisation": code, "amount": "1,000"})
    assert "Find the enterprise and pick it from the list." in response.get_data(as_text=True)
    response = post_form(client, f"/staff/vouchers/{programme_id}",
                         {"organisation_id": str(real_id), "amount": "1,000"})
    assert response.status_code == 302
    with app.app_context():
        granted = db.session.scalars(select(Voucher)).all()
        assert [v.organisation_id for v in granted] == [real_id]
        assert impostor_id != real_id


def test_programme_region_rule_holds_at_grant_and_at_checkout(app):
    from datetime import date

    import pytest

    from orders import cart, checkout, vouchers
    from orders.models import Voucher

    with app.app_context():
        session = db.session
        staff = factories.user(session, role="staff")
        nanjing = factories.enterprise(session)
        nanjing.region = "nanjing"
        sip = factories.enterprise(session)  # the factory's region: suzhou_sip
        programme = _programme(session, staff, ["suzhou_sip"])
        with pytest.raises(vouchers.VoucherError, match="funds enterprises of"):
            vouchers.grant(session, staff, programme, nanjing, 100_000)
        assert vouchers.grant(session, staff, programme, sip, 100_000).balance == 100_000
        # A voucher granted before the rule existed (the demo had such): not spendable.
        stale = Voucher(programme_id=programme.id, organisation_id=nanjing.id, code="CV-OLD",
                        amount=100_000, balance=100_000, granted_by_id=staff.id)
        session.add(stale)
        buyer = factories.user(session, nanjing)
        product = factories.product(session, prices=(100_000,), voucher_eligible=True)
        cart.add(session, buyer, product.packages[0].id)
        session.flush()
        assert vouchers.usable_vouchers(session, nanjing.id, date.today()) == []
        with pytest.raises(checkout.CheckoutError):
            checkout.preview(session, buyer, stale.id, date.today())
        session.rollback()


# --- PDF uploads: parsed for real, never shown inline -------------------------------------

def _pdf_with_hidden_javascript() -> bytes:
    """An OpenAction whose JavaScript sits in an object stream behind two filters."""
    import provider_support as ps

    inner = b"5 0 << /S /JavaScript /JS (app.alert(1)) >>"
    body = inner.hex().encode() + b">"
    base = ps.pdf_bytes().replace(b"/Type /Catalog", b"/Type /Catalog /OpenAction 5 0 R")
    objstm = (b"4 0 obj << /Type /ObjStm /N 1 /First 4 /Filter /ASCIIHexDecode /Length %d >>\n"
              b"stream\n" % len(body) + body + b"\nendstream endobj\n")
    return base.replace(b"trailer", objstm + b"trailer")


def test_pdf_with_javascript_in_an_encoded_object_stream_is_refused(app, client):
    import io

    import provider_support as ps

    from providers.models import QualificationDocument

    with app.app_context():
        _org, owner = ps.applicant(db.session)
        db.session.commit()
    ps.login(client, owner)
    from conftest import csrf_token

    token = csrf_token(client, "/provider/institution")
    response = client.post("/provider/institution/documents", data={
        "csrf_token": token, "kind": "business_licence",
        "file": (io.BytesIO(_pdf_with_hidden_javascript()), "licence.pdf")},
        content_type="multipart/form-data")
    assert response.status_code == 422
    assert "contain scripts" in response.get_data(as_text=True)
    # A genuine PDF is stored, and served as a download in a sandbox, never inline.
    token = csrf_token(client, "/provider/institution")
    client.post("/provider/institution/documents", data={
        "csrf_token": token, "kind": "business_licence",
        "file": (io.BytesIO(ps.pdf_bytes()), "licence\u202efdp.exe")},
        content_type="multipart/form-data")
    with app.app_context():
        document = db.session.query(QualificationDocument).one()
        assert "\u202e" not in document.original_name
    served = client.get(f"/documents/{document.id}")
    assert served.status_code == 200
    assert served.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in served.headers["Content-Security-Policy"]


def test_file_names_lose_bidi_controls():
    from providers import uploads

    assert uploads.display_name("invoice\u202efdp.exe") == "invoicefdp.exe"
    assert uploads.display_name("\u2067a\u200fb\u2069.pdf") == "ab.pdf"


# --- CSV cells ------------------------------------------------------------------------------

def test_csv_cells_are_neutralised_in_one_helper():
    from marketplace.csv_export import csv_text

    text = csv_text([["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx",
                      "-12.50", 1200, "plain"]])
    cells = text.strip().split(",")
    assert cells[:4] == ['"\'=HYPERLINK(""http://x"")"', "'+1+1", "'-2+3", "'@SUM(A1)"]
    assert cells[4] == "'\tx"
    assert cells[6:] == ["-12.50", "1200", "plain"]


def test_settlement_export_neutralises_a_formula_in_an_organisation_name():
    import inspect

    from orders import settlement

    # Every export goes through _csv_text, which is the shared helper.
    assert "csv_text(rows)" in inspect.getsource(settlement._csv_text)
    assert settlement._csv_text([["=cmd|' /C calc'!A0"]]).startswith("'=")


# --- ids, amounts and control characters at the edge ------------------------------------------

def test_ids_beyond_the_integer_range_are_404(app, client):
    import order_support as osup

    with app.app_context():
        staff = factories.user(db.session, role="staff")
        db.session.commit()
    osup.login(client, staff)
    for path in ("/orders/99999999999999999999", "/documents/2147483648",
                 "/staff/vouchers/99999999999999999999999"):
        assert client.get(path).status_code == 404, path


def test_amounts_are_bounded_with_a_form_error():
    import pytest

    from orders.money import MAX_AMOUNT, MoneyError, parse_amount

    assert parse_amount("10,000,000,000", "CNY") == MAX_AMOUNT
    for typed in ("1e20", "10000000000.01", "9" * 400):
        with pytest.raises(MoneyError, match="at most"):
            parse_amount(typed, "CNY")


def test_nul_and_control_characters_are_a_form_error(app, client):
    response = post_form(client, "/signup/enterprise", _enterprise_form(
        company_name="Evil\x00 Co", contact_name="Wang\x07Fang"))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.count("Remove the invisible control characters") == 2
