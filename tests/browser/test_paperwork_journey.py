"""Contracts and 发票 in real Chromium (issue 14): the buyer accepts a quote, the contract PDF
is generated in Chinese, both sides sign with their password, the order starts; the buyer
requests a 专票 (增值税专用发票), the institution uploads it and the buyer downloads it; the
staff contract-registration export for the month lists the contract."""

import re
import zlib
from datetime import date, timedelta

import factories
import pytest
from helpers import pdf_bytes
from playwright.sync_api import expect
from sqlalchemy import select

from marketplace.database import db
from marketplace.models import User
from orders import invoices, payments, quotes
from orders.models import Order
from orders.paperwork_models import Contract

pytestmark = pytest.mark.browser


def _unicode_in_pdf(data: bytes) -> bytes:
    """The inflated streams of a PDF: its ToUnicode maps name every character it shows."""
    out = b""
    for match in re.finditer(rb"stream\r?\n", data):
        end = data.find(b"endstream", match.end())
        try:
            out += zlib.decompressobj().decompress(data[match.end():end])
        except zlib.error:
            continue
    return out.upper()


@pytest.fixture
def deal(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path / "uploads"))
    with app.app_context():
        session = db.session
        agency = factories.provider(session, name="Jinji Lake IP Centre 金鸡湖知识产权中心")
        buyer_org = factories.enterprise(session, name="苏州纳米光电科技有限公司")
        buyer = factories.user(session, buyer_org, email="buyer@nano.example")
        agent = factories.user(session, agency, email="agent@jinji.example")
        factories.user(session, role="staff", email="monitor@platform.example")
        product = factories.product(session, agency, mode="quote",
                                    title="Freedom-to-operate analysis 自由实施分析",
                                    category_slug="ip-strategy")
        request = quotes.request_quote(session, buyer, product,
                                       "FTO for a solid-state battery in the EU and US.",
                                       budget=None, deadline=None)
        quotes.send_quote(session, agent, request, 6_000_000,
                          date.today() + timedelta(days=45), "Two calls included.", [],
                          valid_days=14)
        invoices.save_profile(session, buyer, invoices.ProfileInput(
            title=buyer_org.name, taxpayer_number=buyer_org.credit_code,
            address="苏州工业园区星湖街 328 号", phone="0512-6000000",
            bank_name="中国银行苏州分行", bank_account="501234567890", kind="special"))
        session.commit()
        return {"request_id": request.id}


def login(page, base, email):
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name=re.compile("Log in")).click()
    expect(page.get_by_test_id("account-menu")).to_be_visible()


def logout(page):
    page.get_by_test_id("account-menu").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("link", name="Log in")).to_be_visible()


def sign(page, password=factories.PASSWORD):
    page.get_by_label("Your account password").fill(password)
    page.get_by_test_id("sign-contract").click()


def test_quote_to_signed_contract_to_invoice_to_registration(app, live_server, page, deal,
                                                              tmp_path, screenshots):
    base = live_server
    login(page, base, "buyer@nano.example")
    page.goto(f"{base}/quotes/{deal['request_id']}")
    page.get_by_test_id("accept-quote").click()
    page.wait_for_url(re.compile(r"/orders/\d+/pay"))
    with app.app_context():
        order = db.session.scalar(select(Order).where(Order.quote_id.is_not(None)))
        order_id = order.id
        # Paid by corporate transfer, confirmed by staff (the payment pages have their tests).
        payments.begin_bank_transfer(db.session, order)
        staff = db.session.scalar(select(User).where(User.email == "monitor@platform.example"))
        payments.mark_transfer_received(db.session, order, staff, order.amount_due, "BOC 1")
        db.session.commit()

    # The buyer reads the contract: Chinese PDF, and signs (a wrong password first).
    page.goto(f"{base}/orders/{order_id}")
    page.get_by_test_id("contract-link").click()
    expect(page.get_by_test_id("contract-page")).to_contain_text("Technology consulting contract")
    with page.expect_download() as download_info:
        page.get_by_test_id("contract-pdf").click()
    pdf = (tmp_path / "contract.pdf")
    download_info.value.save_as(pdf)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    shown = _unicode_in_pdf(data)
    assert b"6280" in shown and b"54A8" in shown  # 技, 咨: the text is Chinese
    sign(page, "wrong password")
    expect(page.locator(".alert-danger")).to_contain_text("password is not right")
    sign(page)
    expect(page.get_by_test_id("signature-buyer")).to_contain_text("signed by")
    expect(page.get_by_test_id("signature-provider")).to_contain_text("not signed yet")
    screenshots(page, "buyer-signed")
    logout(page)

    # The institution accepts; it cannot start before signing; it signs and starts.
    login(page, base, "agent@jinji.example")
    page.goto(f"{base}/provider/orders/{order_id}")
    page.get_by_test_id("action-accept").click()
    expect(page.get_by_test_id("order-paperwork")).to_contain_text("waiting for the institution")
    screenshots(page, "accepted-waiting-for-signature")
    page.get_by_test_id("contract-link").click()
    sign(page)
    expect(page.get_by_test_id("contract-status")).to_contain_text("Signed by both sides")
    page.goto(f"{base}/provider/orders/{order_id}")
    page.get_by_test_id("action-start").click()
    expect(page.locator("header")).to_contain_text("In progress")
    logout(page)

    # The buyer asks for a 专票.
    login(page, base, "buyer@nano.example")
    page.goto(f"{base}/orders/{order_id}")
    page.get_by_test_id("invoices-link").click()
    expect(page.get_by_test_id("requestable")).to_contain_text("¥60,000.00")
    expect(page.get_by_label("Invoice profile")).to_contain_text("Special VAT invoice")
    page.get_by_test_id("request-invoice").click()
    expect(page.get_by_test_id("order-invoices")).to_contain_text("Requested")
    logout(page)

    # The institution records it with the PDF.
    login(page, base, "agent@jinji.example")
    page.goto(f"{base}/orders/{order_id}/invoices")
    page.get_by_role("link", name="Open").click()
    page.get_by_label("Invoice number (8 or 20 digits)").fill("24322000000012345678")
    page.get_by_label("The VAT invoice file (PDF or OFD, at most 5 MB)").set_input_files(
        files=[{"name": "发票.pdf", "mimeType": "application/pdf",
                "buffer": pdf_bytes("fapiao")}])
    page.get_by_test_id("issue-invoice").click()
    expect(page.get_by_test_id("invoice-status")).to_contain_text("Issued")
    screenshots(page, "invoice-issued")
    logout(page)

    # The buyer downloads it.
    login(page, base, "buyer@nano.example")
    page.goto(f"{base}/orders/{order_id}/invoices")
    page.get_by_role("link", name="Open").click()
    expect(page.get_by_test_id("invoice-number")).to_have_text("24322000000012345678")
    with page.expect_download() as download_info:
        page.get_by_test_id("invoice-download").click()
    saved = tmp_path / "fapiao.pdf"
    download_info.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF-1.4")
    logout(page)

    # Staff: the month's registration export lists the contract.
    login(page, base, "monitor@platform.example")
    with app.app_context():
        contract = db.session.scalar(select(Contract).where(Contract.order_id == order_id))
        month = contract.signed_at.strftime("%Y-%m")
        number = db.session.get(Order, order_id).number
    page.goto(f"{base}/staff/contract-registration?month={month}")
    rows = page.get_by_test_id("registration-rows")
    expect(rows).to_contain_text(number)
    expect(rows).to_contain_text("Technology consulting contract")  # the viewer's language
    screenshots(page, "registration")
    with page.expect_download() as download_info:
        page.get_by_test_id("export-xlsx").click()
    assert download_info.value.suggested_filename == f"contract-registration-{month}.xlsx"
