"""Technology contracts (issue 14): generated with quote and large package orders, rendered
to PDF, signed by both sides with their password, versioned on change; work waits for both
signatures; staff nudge and export signed contracts for registration."""

import csv
import hashlib
import io
import zipfile
from datetime import UTC, date, datetime, timedelta

import factories
import order_support as osup
import paperwork_support as pws
import pytest
from conftest import post_form
from sqlalchemy import func, select

from marketplace.i18n import to_local
from marketplace.models import Notification
from orders import cart, checkout, contracts, services, workflow
from orders.paperwork_models import ContractSignature


@pytest.fixture
def p(session):
    parties = osup.parties(session)
    session.commit()
    return parties


def test_accepted_quote_gets_a_contract_rendered_in_chinese(session, p):
    order = pws.quote_order(session, p)
    contract = contracts.live(session, order.id)
    assert contract is not None and contract.version == 1
    assert contract.status == "awaiting_signatures"
    assert contract.contract_type == "consulting"  # ip-strategy is advice: 技术咨询
    assert contract.terms["buyer"]["credit_code"] == p.buyer_org.credit_code
    assert contract.terms["provider"]["credit_code"] == p.provider_org.credit_code
    assert [m["amount"] for m in contract.terms["milestones"]] == ["¥24,000.00", "¥36,000.00"]
    data = contracts.ensure_pdf(session, contract)
    assert data.startswith(b"%PDF-")
    assert contract.sha256 == hashlib.sha256(data).hexdigest()
    # Rendered once and kept: the hash someone signs never changes under them.
    assert contracts.ensure_pdf(session, contract) == data


def test_category_proposes_the_contract_type(session, p):
    assert contracts.live(session, pws.quote_order(session, p, category_slug="pilot-facilities")
                          .id).contract_type == "development"
    assert contracts.live(session, pws.quote_order(session, p, category_slug="testing")
                          .id).contract_type == "service"
    assert contracts.live(session, pws.quote_order(
        session, p, category_slug="licensing-brokerage").id).contract_type == "licence"


def test_packages_get_a_contract_only_from_the_threshold(session, p, app):
    small = factories.product(session, p.provider_org, prices=(4_999_999,))
    large = factories.product(session, p.provider_org, prices=(5_000_000,))
    session.commit()
    placed = []
    for product in (small, large):
        cart.add(session, p.buyer, product.packages[0].id, 1)
        result = checkout.place_orders(session, p.buyer, checkout.CheckoutInput(
            token=f"t-{product.id}", payment_method="bank_transfer", voucher_id=None,
            requirements={}))
        placed.append(result.checkout.orders[0])
    assert contracts.live(session, placed[0].id) is None
    large_contract = contracts.live(session, placed[1].id)
    assert large_contract is not None and large_contract.contract_type == "service"
    app.config["CONTRACT_THRESHOLD"] = 10_000_000
    try:
        assert not contracts.needs_contract(placed[1])
    finally:
        app.config.pop("CONTRACT_THRESHOLD")


def test_order_cannot_start_until_both_sides_signed(session, p):
    order = pws.quote_order(session, p)
    pws.paid(session, order, status="accepted")
    session.commit()
    with pytest.raises(workflow.ContractUnsigned, match="waiting for the buyer and the "
                                                        "institution to sign version 1"):
        services.start(session, order, p.provider)
    session.rollback()
    with pytest.raises(workflow.ContractUnsigned):
        workflow.check(order, "deliver", p.provider)
    contract = contracts.live(session, order.id)
    contracts.sign(session, contract, p.buyer, factories.PASSWORD, ip="10.0.0.1")
    with pytest.raises(workflow.ContractUnsigned, match="waiting for the institution"):
        workflow.check(order, "start", p.provider)
    contracts.sign(session, contract, p.provider, factories.PASSWORD, ip="10.0.0.2")
    session.commit()
    assert contract.status == "signed" and contract.signed_at is not None
    services.start(session, order, p.provider)
    assert order.status == "in_progress"


def test_signatures_record_signer_org_ip_and_the_hash_of_the_exact_pdf(session, p):
    order = pws.quote_order(session, p)
    contract = contracts.live(session, order.id)
    contracts.sign(session, contract, p.buyer, factories.PASSWORD, ip="203.0.113.7")
    contracts.sign(session, contract, p.provider, factories.PASSWORD, ip="198.51.100.2")
    buyer_sig = contract.signature_of("buyer")
    assert (buyer_sig.user_id, buyer_sig.organisation_id, buyer_sig.ip) == (
        p.buyer.id, p.buyer_org.id, "203.0.113.7")
    assert buyer_sig.credit_code == p.buyer_org.credit_code
    assert buyer_sig.pdf_sha256 == contract.signature_of("provider").pdf_sha256 == \
        hashlib.sha256(contract.pdf).hexdigest()
    # The signed copy adds the signature page: a different, larger file with its own hash.
    assert contracts.current_pdf(session, contract) == contract.signed_pdf
    assert contract.signed_pdf.startswith(b"%PDF-") and contract.signed_pdf != contract.pdf
    assert contract.signed_sha256 == hashlib.sha256(contract.signed_pdf).hexdigest()
    assert len(contract.signed_pdf) > len(contract.pdf)


@pytest.mark.parametrize("who", ["outsider", "staff", "other_institution",
                                 "provider_role_in_buyer_org"])
def test_only_members_of_a_party_can_sign(session, p, who):
    order = pws.quote_order(session, p)
    contract = contracts.live(session, order.id)
    signer = {"outsider": p.outsider, "staff": p.staff,
              "other_institution": factories.user(session, factories.provider(session)),
              "provider_role_in_buyer_org": factories.user(session, p.buyer_org,
                                                           role="provider")}[who]
    with pytest.raises(contracts.ContractError, match="Only a member") as refused:
        contracts.sign(session, contract, signer, factories.PASSWORD)
    assert refused.value.status == 403
    assert session.scalar(select(func.count(ContractSignature.id))) == 0


def test_wrong_password_signs_nothing(session, p):
    order = pws.quote_order(session, p)
    contract = contracts.live(session, order.id)
    with pytest.raises(contracts.ContractError, match="password is not right"):
        contracts.sign(session, contract, p.buyer, "not-my-password")
    with pytest.raises(contracts.ContractError, match="password is not right"):
        contracts.sign(session, contract, p.buyer, "")
    assert contract.signatures == []


def test_signing_twice_is_refused(session, p):
    order = pws.quote_order(session, p)
    contract = contracts.live(session, order.id)
    contracts.sign(session, contract, p.buyer, factories.PASSWORD)
    colleague = factories.user(session, p.buyer_org)
    with pytest.raises(contracts.ContractError, match="signed version 1 already") as refused:
        contracts.sign(session, contract, colleague, factories.PASSWORD)
    assert refused.value.status == 409
    assert len(contract.signatures) == 1


def test_a_change_after_a_signature_makes_a_new_version_both_sign_again(session, p):
    order = pws.quote_order(session, p)
    first = contracts.live(session, order.id)
    contracts.sign(session, first, p.buyer, factories.PASSWORD)
    second = contracts.change_terms(session, first, p.provider, contract_type="development",
                                    ownership="joint")
    assert (second.version, second.status, second.contract_type) == (2, "awaiting_signatures",
                                                                      "development")
    assert first.status == "superseded" and len(first.signatures) == 1  # kept, visible
    assert [c.version for c in contracts.versions(session, order.id)] == [2, 1]
    # Signing the outdated version is refused and says which one is current.
    with pytest.raises(contracts.ContractError, match="Version 1 .* is outdated.*version 2") \
            as refused:
        contracts.sign(session, first, p.provider, factories.PASSWORD)
    assert refused.value.status == 409
    osup.set_status(session, order, "accepted")
    with pytest.raises(workflow.ContractUnsigned, match="version 2"):
        workflow.check(order, "start", p.provider)
    # The buyer who signed v1 is told to sign again.
    assert session.scalar(select(func.count(Notification.id)).where(
        Notification.user_id == p.buyer.id, Notification.kind == "contract_changed")) == 1
    contracts.sign(session, second, p.buyer, factories.PASSWORD)
    contracts.sign(session, second, p.provider, factories.PASSWORD)
    assert second.status == "signed"
    with pytest.raises(contracts.ContractError, match="already signed by both sides"):
        contracts.change_terms(session, second, p.provider, contract_type="service",
                               ownership="buyer")


def test_only_the_institution_changes_terms(session, p):
    order = pws.quote_order(session, p)
    contract = contracts.live(session, order.id)
    with pytest.raises(contracts.ContractError) as refused:
        contracts.change_terms(session, contract, p.buyer, contract_type="development",
                               ownership="buyer")
    assert refused.value.status == 403
    with pytest.raises(contracts.ContractError, match="one of the five"):
        contracts.change_terms(session, contract, p.provider, contract_type="sale",
                               ownership="buyer")


# --------------------------------------------------------------------------- pages

def test_contract_page_reads_in_chinese_for_a_chinese_viewer(client, session, p):
    order = pws.quote_order(session, p)
    session.commit()
    client.set_cookie("lang", "zh_Hans_CN")
    osup.login(client, p.buyer)
    html = client.get(f"/orders/{order.id}/contract").get_data(as_text=True)
    assert "技术合同" in html and "技术咨询合同" in html and "签署合同" in html
    assert "Contract (合同)" not in html and "Signatures" not in html
    assert "等待委托方和服务机构签署第 1 版" in html  # why the work cannot start yet


def test_contract_page_sign_form_and_pdf_download(client, session, p):
    order = pws.quote_order(session, p)
    session.commit()
    osup.login(client, p.buyer)
    html = client.get(f"/orders/{order.id}/contract").get_data(as_text=True)
    assert "Technology consulting contract" in html and 'data-testid="sign-contract"' in html
    assert 'data-testid="change-contract"' not in html  # the buyer does not edit terms
    response = client.get(f"/orders/{order.id}/contract/v1.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    english = client.get(f"/orders/{order.id}/contract/v1.pdf?lang=en")
    assert english.status_code == 200 and english.data != response.data
    refused = post_form(client, f"/orders/{order.id}/contract/sign",
                        {"contract_id": contracts.live(session, order.id).id,
                         "password": "wrong"}, follow_redirects=True)
    assert "password is not right" in refused.get_data(as_text=True)
    done = post_form(client, f"/orders/{order.id}/contract/sign",
                     {"contract_id": contracts.live(session, order.id).id,
                      "password": factories.PASSWORD}, follow_redirects=True)
    assert "You signed the contract" in done.get_data(as_text=True)
    session.expire_all()
    contract = contracts.live(session, order.id)
    assert contract.signature_of("buyer").ip == "127.0.0.1"
    # The order page links to the contract.
    assert 'data-testid="contract-link"' in client.get(f"/orders/{order.id}").get_data(
        as_text=True)


def test_another_enterprise_cannot_open_or_sign_a_contract_by_url(client, session, p):
    order = pws.quote_order(session, p)
    contract = contracts.live(session, order.id)
    session.commit()
    osup.login(client, p.outsider)
    assert client.get(f"/orders/{order.id}/contract").status_code == 404
    assert client.get(f"/orders/{order.id}/contract/v1.pdf").status_code == 404
    assert post_form(client, f"/orders/{order.id}/contract/sign",
                     {"contract_id": contract.id,
                      "password": factories.PASSWORD}).status_code == 404
    assert session.scalar(select(func.count(ContractSignature.id))) == 0


def test_staff_see_unsigned_contracts_and_nudge(client, session, p):
    order = pws.quote_order(session, p)
    contract = contracts.live(session, order.id)
    contracts.sign(session, contract, p.buyer, factories.PASSWORD)
    session.commit()
    osup.login(client, p.staff)
    html = client.get("/staff/paperwork").get_data(as_text=True)
    assert f'data-testid="unsigned-{contract.id}"' in html and order.number in html
    response = post_form(client, f"/staff/contracts/{contract.id}/nudge", {})
    assert response.status_code == 302
    nudged = session.scalars(select(Notification).where(
        Notification.kind == "contract_nudge")).all()
    assert [n.user_id for n in nudged] == [p.provider.id]  # the buyer signed already
    osup.logout(client)
    osup.login(client, p.buyer)
    assert client.get("/staff/paperwork").status_code == 403


def test_registration_export_lists_signed_contracts(client, session, p):
    order = pws.quote_order(session, p)
    unsigned_order = pws.quote_order(session, p)
    contract = contracts.live(session, order.id)
    contracts.sign(session, contract, p.buyer, factories.PASSWORD)
    contracts.sign(session, contract, p.provider, factories.PASSWORD)
    session.commit()
    month = contract.signed_at.strftime("%Y-%m")
    osup.login(client, p.staff)
    html = client.get(f"/staff/contract-registration?month={month}").get_data(as_text=True)
    assert order.number in html and unsigned_order.number not in html
    # The page speaks the viewer's language; the exports keep the office's Chinese wording.
    assert p.buyer_org.credit_code in html and "Technology consulting contract" in html
    rows = list(csv.reader(io.StringIO(client.get(
        f"/staff/contract-registration/export.csv?month={month}").get_data(as_text=True)
        .lstrip("\ufeff"))))
    assert len(rows) == 2
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["合同类型 Type"] == "技术咨询合同"
    assert row["委托方信用代码 Buyer credit code"] == p.buyer_org.credit_code
    assert row["受托方信用代码 Institution credit code"] == p.provider_org.credit_code
    assert row["合同金额（元） Amount (CNY)"] == "60000.00"
    assert row["技术交易额（元） Technical-transaction amount (CNY)"] == "60000.00"
    assert row["签订日期 Signed on"] == to_local(contract.signed_at).date().isoformat()
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(client.get(
        f"/staff/contract-registration/export.xlsx?month={month}").data))
    sheet = book.active
    assert sheet.max_row == 2 and sheet.cell(2, 8).value == 60000.0
    archive = zipfile.ZipFile(io.BytesIO(client.get(
        f"/staff/contract-registration/signed-pdfs.zip?month={month}").data))
    assert archive.namelist() == [f"{order.number}-V1.pdf"]
    assert archive.read(f"{order.number}-V1.pdf") == contract.signed_pdf
    # Another month lists nothing.
    other = date(2020, 1, 1).strftime("%Y-%m")
    assert order.number not in client.get(
        f"/staff/contract-registration?month={other}").get_data(as_text=True)


def test_registration_months_are_beijing_months(client, session, p):
    """Signed at 07:30 Beijing time on 1 November (23:30 UTC on 31 October): November's."""
    order = pws.quote_order(session, p)
    contract = contracts.live(session, order.id)
    contracts.sign(session, contract, p.buyer, factories.PASSWORD)
    contracts.sign(session, contract, p.provider, factories.PASSWORD)
    contract.signed_at = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)
    session.commit()
    osup.login(client, p.staff)
    assert order.number not in client.get(
        "/staff/contract-registration?month=2026-10").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(client.get(
        "/staff/contract-registration/export.csv?month=2026-11").get_data(as_text=True)
        .lstrip("\ufeff"))))
    assert dict(zip(rows[0], rows[1], strict=True))["签订日期 Signed on"] == "2026-11-01"


def test_saving_after_the_order_changed_takes_the_current_terms(session, p):
    order = pws.quote_order(session, p)
    contract = contracts.live(session, order.id)
    with pytest.raises(contracts.ContractError, match="Nothing changed"):
        contracts.change_terms(session, contract, p.provider,
                               contract_type=contract.contract_type,
                               ownership=contract.ownership)
    order.due_at += timedelta(days=10)  # e.g. staff extended the deadline
    session.flush()
    second = contracts.change_terms(session, contract, p.provider,
                                    contract_type=contract.contract_type,
                                    ownership=contract.ownership)
    assert second.version == 2
    assert second.terms["due_date"] == order.due_at.date().isoformat() != \
        contract.terms["due_date"]
