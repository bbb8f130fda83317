"""发票 (issue 14): invoice profiles, requests up to what was paid minus refunds, issuing with
a PDF/OFD file and a number unique per institution, red-letter reversal after a refund,
per-order reconciliation, overdue requests and nudges, and who may open what."""

import hashlib
import io
from datetime import date, timedelta

import factories
import order_support as osup
import paperwork_support as pws
import pytest
from conftest import post_form
from sqlalchemy import func, select

from marketplace.database import utcnow
from marketplace.models import Notification
from orders import invoices
from orders.paperwork_models import Invoice, InvoiceProfile
from providers import uploads


@pytest.fixture
def p(session, app, tmp_path):
    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    parties = osup.parties(session)
    parties.profile = invoices.save_profile(session, parties.buyer, invoices.ProfileInput(
        title=parties.buyer_org.name, taxpayer_number=parties.buyer_org.credit_code,
        address="苏州工业园区星湖街 328 号", phone="0512-6000000", bank_name="中国银行苏州分行",
        bank_account="5012 3456 7890", kind="special", email="finance@example.cn"))
    session.commit()
    return parties


def _issue_input(number="12345678", amount=6_000_000, **changes):
    values = dict(number=number, code="3200231130", issued_on=date.today(), amount=amount,
                  tax_rate_bp=600)
    values.update(changes)
    return invoices.IssueInput(**values)


def _checked(data=None, name="invoice.pdf"):
    return invoices.check_file(data or osup.pdf_bytes("发票"), name)


def test_profile_rules(session, p):
    assert p.profile.taxpayer_number == p.buyer_org.credit_code
    assert p.profile.bank_account == "501234567890"
    with pytest.raises(invoices.InvoiceError, match="Taxpayer number: .*18 characters"):
        invoices.save_profile(session, p.buyer, invoices.ProfileInput(
            title="X Co.", taxpayer_number="123"))
    with pytest.raises(invoices.InvoiceError, match="special VAT invoice needs the registered address"):
        invoices.save_profile(session, p.buyer, invoices.ProfileInput(
            title="X Co.", taxpayer_number=p.buyer_org.credit_code, kind="special"))
    with pytest.raises(invoices.InvoiceError) as refused:
        invoices.save_profile(session, p.provider, invoices.ProfileInput(
            title="X", taxpayer_number=p.provider_org.credit_code))
    assert refused.value.status == 403
    ordinary = invoices.save_profile(session, p.buyer, invoices.ProfileInput(
        title="X Co.", taxpayer_number=p.buyer_org.credit_code))
    assert ordinary.kind == "ordinary"


def test_request_up_to_paid_minus_refunds(session, p):
    order = pws.quote_order(session, p)
    with pytest.raises(invoices.InvoiceError, match="at most ¥0.00"):
        invoices.request_invoice(session, p.buyer, order, p.profile, 100)  # nothing paid yet
    pws.paid(session, order, refunded=1_000_000)  # ¥60,000 paid, ¥10,000 refunded
    with pytest.raises(invoices.InvoiceError, match="at most ¥50,000.00"):
        invoices.request_invoice(session, p.buyer, order, p.profile, 5_000_001)
    first = invoices.request_invoice(session, p.buyer, order, p.profile, 3_000_000)
    assert first.status == "requested" and first.kind == "special"
    assert first.profile["taxpayer_number"] == p.buyer_org.credit_code  # a snapshot
    # What is requested already counts: only ¥20,000 more.
    with pytest.raises(invoices.InvoiceError, match="at most ¥20,000.00"):
        invoices.request_invoice(session, p.buyer, order, p.profile, 2_000_001)
    invoices.request_invoice(session, p.buyer, order, p.profile, 2_000_000)
    assert session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == p.provider.id, Notification.kind == "invoice_requested")) == 2


def test_only_the_buyer_requests_with_its_own_profile(session, p):
    order = pws.quote_order(session, p)
    pws.paid(session, order)
    for user in (p.outsider, p.provider, p.staff):
        with pytest.raises(invoices.InvoiceError) as refused:
            invoices.request_invoice(session, user, order, p.profile, 100)
        assert refused.value.status == 403
    foreign = invoices.save_profile(session, p.outsider, invoices.ProfileInput(
        title="Other Co.", taxpayer_number=p.outsider.organisation.credit_code))
    with pytest.raises(invoices.InvoiceError) as refused:
        invoices.request_invoice(session, p.buyer, order, foreign, 100)
    assert refused.value.status == 404


def test_issue_and_reconcile(session, p):
    order = pws.quote_order(session, p)
    pws.paid(session, order)
    invoice = invoices.request_invoice(session, p.buyer, order, p.profile, 6_000_000)
    with pytest.raises(invoices.InvoiceError) as refused:
        invoices.issue(session, p.buyer, invoice, _issue_input(), _checked(), "x.pdf")
    assert refused.value.status == 403
    with pytest.raises(invoices.InvoiceError, match="8 digits"):
        invoices.issue(session, p.provider, invoice, _issue_input(number="12AB"), _checked(),
                       "x.pdf")
    with pytest.raises(invoices.InvoiceError, match="at most what the buyer paid"):
        invoices.issue(session, p.provider, invoice, _issue_input(amount=6_000_001),
                       _checked(), "x.pdf")
    with pytest.raises(invoices.InvoiceError, match="future"):
        invoices.issue(session, p.provider, invoice,
                       _issue_input(issued_on=date.today() + timedelta(days=2)), _checked(),
                       "x.pdf")
    invoices.issue(session, p.provider, invoice, _issue_input(), _checked(),
                   uploads.new_stored_name(uploads.PDF))
    assert invoice.status == "issued" and invoice.amount == 6_000_000
    figures = invoices.amounts(session, order)
    assert figures.issued <= figures.net_paid and figures.requestable == 0
    invoices.check_reconciles(session, order)
    with pytest.raises(invoices.InvoiceError, match="already recorded"):
        invoices.issue(session, p.provider, invoice, _issue_input(number="87654321"),
                       _checked(), "y.pdf")


def test_duplicate_number_for_the_same_institution_is_refused(session, p):
    first_order, second_order = pws.quote_order(session, p), pws.quote_order(session, p)
    for order in (first_order, second_order):
        pws.paid(session, order)
    first = invoices.request_invoice(session, p.buyer, first_order, p.profile, 1_000_000)
    second = invoices.request_invoice(session, p.buyer, second_order, p.profile, 1_000_000)
    invoices.issue(session, p.provider, first, _issue_input(amount=1_000_000), _checked(),
                   uploads.new_stored_name(uploads.PDF))
    with pytest.raises(invoices.InvoiceError, match="already recorded invoice number 12345678") \
            as refused:
        invoices.issue(session, p.provider, second, _issue_input(amount=1_000_000),
                       _checked(), uploads.new_stored_name(uploads.PDF))
    assert refused.value.status == 409
    assert second.status == "requested"
    # Another institution may well have a 发票 with the same number.
    other = osup.Parties(buyer_org=p.buyer_org, buyer=p.buyer,
                         provider_org=factories.provider(session), provider=None,
                         staff=p.staff, outsider=p.outsider)
    other.provider = factories.user(session, other.provider_org)
    their_order = pws.quote_order(session, other)
    pws.paid(session, their_order)
    theirs = invoices.request_invoice(session, p.buyer, their_order, p.profile, 1_000_000)
    invoices.issue(session, other.provider, theirs, _issue_input(amount=1_000_000),
                   _checked(), uploads.new_stored_name(uploads.PDF))
    assert theirs.status == "issued"


def test_invoice_files_are_pdf_or_ofd_checked_by_content(session, p):
    assert invoices.check_file(pws.ofd_bytes(), "发票.ofd").content_type == uploads.OFD
    assert invoices.check_file(osup.pdf_bytes(), "发票.pdf").content_type == uploads.PDF
    with pytest.raises(uploads.UploadError, match="not a PDF or OFD"):
        invoices.check_file(pws.zip_bytes(), "发票.ofd")
    with pytest.raises(uploads.UploadError, match="PNG image; here we accept PDF or OFD"):
        invoices.check_file(b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "发票.pdf")
    with pytest.raises(uploads.UploadError, match="too large"):
        invoices.check_file(b"%PDF-1.4\n" + b"0" * invoices.MAX_FILE_BYTES + b"%%EOF",
                            "big.pdf")
    with pytest.raises(uploads.UploadError, match="web page"):
        invoices.check_file(b"<html><script>alert(1)</script></html>", "发票.pdf")
    # Elsewhere OFD stays refused: qualification documents are PDF, PNG or JPEG only.
    with pytest.raises(uploads.UploadError, match="OFD format; here we accept PDF, PNG"):
        uploads.check(pws.ofd_bytes(), "licence.ofd")


def test_red_letter_reversal_follows_a_refund(session, p):
    order = pws.quote_order(session, p)
    payment = pws.paid(session, order)
    invoice = invoices.request_invoice(session, p.buyer, order, p.profile, 6_000_000)
    invoices.issue(session, p.provider, invoice, _issue_input(), _checked(),
                   uploads.new_stored_name(uploads.PDF))
    with pytest.raises(invoices.InvoiceError, match="follows a refund"):
        invoices.reverse(session, p.provider, invoice, "87654321", "refund")
    payment.amount_refunded = 2_000_000
    session.flush()
    # Issued ¥60,000 against ¥40,000 kept: reconciliation says so until it is reversed.
    with pytest.raises(invoices.InvoiceError, match="more than the ¥40,000.00"):
        invoices.check_reconciles(session, order)
    invoices.reverse(session, p.provider, invoice, "87654321", "Partial refund after dispute")
    assert invoice.status == "reversed"
    invoices.check_reconciles(session, order)
    assert invoices.amounts(session, order).requestable == 4_000_000
    again = invoices.request_invoice(session, p.buyer, order, p.profile, 4_000_000)
    invoices.issue(session, p.provider, again, _issue_input(number="11112222",
                                                            amount=4_000_000), _checked(),
                   uploads.new_stored_name(uploads.PDF))
    invoices.check_reconciles(session, order)


def test_staff_see_overdue_requests_and_nudge(client, session, p, app):
    order = pws.quote_order(session, p)
    pws.paid(session, order)
    old = invoices.request_invoice(session, p.buyer, order, p.profile, 1_000_000,
                                   now=utcnow() - timedelta(days=8))
    fresh = invoices.request_invoice(session, p.buyer, order, p.profile, 1_000_000)
    session.commit()
    assert [i.id for i in invoices.overdue(session)] == [old.id]
    app.config["INVOICE_OVERDUE_DAYS"] = 10
    try:
        assert invoices.overdue(session) == []
    finally:
        app.config.pop("INVOICE_OVERDUE_DAYS")
    osup.login(client, p.staff)
    html = client.get("/staff/paperwork").get_data(as_text=True)
    assert f'data-testid="overdue-{old.id}"' in html
    assert f'data-testid="overdue-{fresh.id}"' not in html
    assert post_form(client, f"/staff/invoices/{old.id}/nudge", {}).status_code == 302
    assert session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == p.provider.id, Notification.kind == "invoice_nudge")) == 1


# --------------------------------------------------------------------------- pages

def test_buyer_requests_institution_uploads_buyer_downloads(client, session, p):
    order = pws.quote_order(session, p)
    pws.paid(session, order)
    session.commit()
    osup.login(client, p.buyer)
    page = client.get(f"/orders/{order.id}/invoices").get_data(as_text=True)
    assert 'data-testid="request-invoice"' in page
    response = post_form(client, f"/orders/{order.id}/invoices",
                         {"profile_id": p.profile.id, "amount": "60,000"})
    assert response.status_code == 302
    invoice = session.scalar(select(Invoice))
    assert invoice.amount_requested == 6_000_000
    too_much = post_form(client, f"/orders/{order.id}/invoices",
                         {"profile_id": p.profile.id, "amount": "1"}, follow_redirects=True)
    assert "at most ¥0.00" in too_much.get_data(as_text=True)
    osup.logout(client)

    osup.login(client, p.provider)
    form = {"number": "24322000000012345678", "code": "", "issued_on": date.today().isoformat(),
            "amount": "60000", "tax_rate": "6"}
    refused = post_form(client, f"/invoices/{invoice.id}/issue",
                        {**form, "file": (io.BytesIO(b"GIF89a not an invoice"), "发票.pdf")},
                        content_type="multipart/form-data", follow_redirects=True)
    assert "is not a PDF or OFD file" in refused.get_data(as_text=True)
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "requested"
    response = post_form(client, f"/invoices/{invoice.id}/issue",
                         {**form, "file": (io.BytesIO(pws.ofd_bytes()), "发票.ofd")},
                         content_type="multipart/form-data")
    assert response.status_code == 302
    session.expire_all()
    invoice = session.get(Invoice, invoice.id)
    assert invoice.status == "issued" and invoice.tax_rate_bp == 600
    assert invoice.file_content_type == uploads.OFD
    osup.logout(client)

    osup.login(client, p.buyer)
    download = client.get(f"/invoices/{invoice.id}/file")
    assert download.status_code == 200
    assert hashlib.sha256(download.data).hexdigest() == invoice.file_sha256
    assert "24322000000012345678" in client.get(f"/invoices/{invoice.id}").get_data(
        as_text=True)


def test_other_enterprise_cannot_open_an_invoice_or_profile_by_url(client, session, p):
    order = pws.quote_order(session, p)
    pws.paid(session, order)
    invoice = invoices.request_invoice(session, p.buyer, order, p.profile, 1_000_000)
    invoices.issue(session, p.provider, invoice, _issue_input(amount=1_000_000), _checked(),
                   uploads.new_stored_name(uploads.PDF))
    session.commit()
    osup.login(client, p.outsider)
    assert client.get(f"/invoices/{invoice.id}").status_code == 404
    assert client.get(f"/invoices/{invoice.id}/file").status_code == 404
    assert client.get(f"/orders/{order.id}/invoices").status_code == 404
    assert post_form(client, f"/orders/{order.id}/invoices",
                     {"profile_id": p.profile.id, "amount": "1"}).status_code == 404
    assert post_form(client, f"/account/invoice-profiles/{p.profile.id}",
                     {"title": "Hijacked", "taxpayer_number": p.buyer_org.credit_code}
                     ).status_code == 404
    assert post_form(client, f"/account/invoice-profiles/{p.profile.id}/delete",
                     {}).status_code == 404
    session.expire_all()
    assert session.get(InvoiceProfile, p.profile.id).title == p.buyer_org.name
    osup.logout(client)
    # Another institution neither.
    stranger = factories.user(session, factories.provider(session))
    session.commit()
    osup.login(client, stranger)
    assert client.get(f"/invoices/{invoice.id}").status_code == 404
    assert post_form(client, f"/invoices/{invoice.id}/reverse",
                     {"reversal_number": "11111111", "reason": "x"}).status_code == 404


def test_profiles_page_creates_edits_and_deletes(client, session, p):
    osup.login(client, p.buyer)
    page = client.get("/account/invoice-profiles").get_data(as_text=True)
    assert p.buyer_org.credit_code in page  # the new-profile form starts from the company
    response = post_form(client, "/account/invoice-profiles", {
        "title": "Branch office", "taxpayer_number": p.buyer_org.credit_code,
        "kind": "ordinary", "email": "a@b.cn"})
    assert response.status_code == 302
    new = session.scalar(select(InvoiceProfile).where(InvoiceProfile.title == "Branch office"))
    assert new is not None
    bad = post_form(client, "/account/invoice-profiles", {
        "title": "Bad", "taxpayer_number": "nope", "kind": "ordinary"}, follow_redirects=True)
    assert "Taxpayer number: " in bad.get_data(as_text=True)
    post_form(client, f"/account/invoice-profiles/{new.id}", {
        "title": "Branch office 2", "taxpayer_number": p.buyer_org.credit_code,
        "kind": "ordinary"})
    session.expire_all()
    assert session.get(InvoiceProfile, new.id).title == "Branch office 2"
    post_form(client, f"/account/invoice-profiles/{new.id}/delete", {})
    session.expire_all()
    assert session.get(InvoiceProfile, new.id) is None


def test_platform_fee_invoice_once_per_paid_statement(client, session, p):
    from orders.models import SettlementBatch, SettlementStatement
    from orders.paperwork_models import PlatformFeeInvoice

    today = date.today()
    batch = SettlementBatch(period_start=today.replace(day=1), period_end=today, fee=50_000)
    session.add(batch)
    session.flush()
    statement = SettlementStatement(batch_id=batch.id, provider_org_id=p.provider_org.id,
                                    gross=1_000_000, fee=50_000, net=950_000,
                                    payout_reference="BOC-1", paid_at=utcnow())
    unpaid = SettlementStatement(batch_id=batch.id, provider_org_id=factories.provider(
        session).id, gross=1_000_000, fee=50_000, net=950_000)
    session.add_all([statement, unpaid])
    session.commit()
    assert [s.id for s in invoices.statements_to_invoice(session)] == [statement.id]
    osup.login(client, p.staff)
    assert f'data-testid="fee-statement-{statement.id}"' in client.get(
        "/staff/paperwork").get_data(as_text=True)
    post_form(client, f"/staff/settlement/statements/{statement.id}/fee-invoice", {})
    post_form(client, f"/staff/settlement/statements/{statement.id}/fee-invoice", {})
    rows = session.scalars(select(PlatformFeeInvoice)).all()
    assert [(r.statement_id, r.amount, r.provider_org_id) for r in rows] == [
        (statement.id, 50_000, p.provider_org.id)]
    assert invoices.statements_to_invoice(session) == []
    assert session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == p.provider.id, Notification.kind == "platform_invoice")) == 1
