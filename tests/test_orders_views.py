"""Order pages over HTTP: who sees what, actions answering 403/409 with nothing changed,
bank transfer confirmation, messages, files, milestones, rulings, lists and filters."""

import io
import re

import factories
import order_support as osup
import pytest
from conftest import csrf_token, post_form
from sqlalchemy import func, select

from marketplace.database import db
from marketplace.models import AuditLog
from orders import cart, checkout, ledger
from orders.models import Order, OrderEvent, OrderFile, OrderMessage


@pytest.fixture
def deal(session, app, tmp_path):
    """A bank-transfer order of one 3,000.00 package, placed through the real checkout."""
    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    p = osup.parties(session)
    product = factories.product(session, p.provider_org, prices=(300000,),
                                title="Patent drafting")
    cart.add(session, p.buyer, product.packages[0].id)
    result = checkout.place_orders(session, p.buyer, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="bank_transfer",
        requirements={p.provider_org.id: "A battery-pack patent"}))
    session.commit()
    return p, result.checkout.orders[0]


def page(client, path):
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def test_each_party_sees_the_order_and_outsiders_do_not(client, session, deal):
    p, order = deal
    osup.login(client, p.buyer)
    html = page(client, f"/orders/{order.id}")
    assert "Patent drafting" in html and order.bank_reference in html
    assert "A battery-pack patent" in html
    assert "Your share" in html and "Platform fee" not in html  # the buyer's view of money
    osup.logout(client)

    osup.login(client, p.provider)
    html = page(client, f"/provider/orders/{order.id}")
    assert "Platform fee" in html and "You will receive" in html
    assert "Awaiting payment" in html
    osup.logout(client)

    osup.login(client, p.outsider)
    assert client.get(f"/orders/{order.id}").status_code == 404
    assert client.get(f"/provider/orders/{order.id}").status_code == 404
    osup.logout(client)

    other_provider = factories.user(session, factories.provider(session))
    session.commit()
    osup.login(client, other_provider)
    assert client.get(f"/provider/orders/{order.id}").status_code == 404
    assert p.provider_org.name not in page(client, "/provider/orders")


def test_staff_confirm_the_transfer_with_the_exact_amount(client, session, deal):
    p, order = deal
    osup.login(client, p.staff)
    html = page(client, f"/staff/orders/{order.id}")
    assert "Confirm the bank transfer" in html
    response = post_form(client, f"/orders/{order.id}/transfer-received",
                         {"transfer-amount": "2,999.99", "transfer-reference": "ICBC 001"})
    assert response.status_code == 302
    assert "does not match" in page(client, f"/staff/orders/{order.id}")
    session.expire_all()
    assert session.get(Order, order.id).status == "pending_payment"
    post_form(client, f"/orders/{order.id}/transfer-received",
              {"transfer-amount": "3,000.00", "transfer-reference": "ICBC 001"})
    session.expire_all()
    assert session.get(Order, order.id).status == "paid"
    # Only staff may do it.
    osup.logout(client)
    osup.login(client, p.buyer)
    refused = post_form(client, f"/orders/{order.id}/transfer-received",
                        {"transfer-amount": "3,000.00"})
    assert refused.status_code == 403


def test_wrong_role_is_403_and_wrong_state_is_409_and_nothing_changes(client, session, deal):
    p, order = deal
    osup.login(client, p.buyer)
    events = session.scalar(select(func.count(OrderEvent.id)))
    # The buyer may never accept an order: 403.
    response = post_form(client, f"/orders/{order.id}/actions/accept", {})
    assert response.status_code == 403
    # The buyer may accept a delivery, but not while the order awaits payment: 409.
    response = post_form(client, f"/orders/{order.id}/actions/complete", {})
    assert response.status_code == 409
    assert "awaiting payment" in response.get_data(as_text=True).lower()
    session.expire_all()
    assert session.get(Order, order.id).status == "pending_payment"
    assert session.scalar(select(func.count(OrderEvent.id))) == events
    assert post_form(client, f"/orders/{order.id}/actions/nonsense", {}).status_code == 404


def test_the_whole_workflow_over_http(client, session, deal, app):
    p, order = deal
    osup.set_status(session, order, "pending_payment")
    osup.login(client, p.staff)
    post_form(client, f"/orders/{order.id}/transfer-received",
              {"transfer-amount": "3000", "transfer-reference": "X"})
    osup.logout(client)

    osup.login(client, p.provider)
    assert post_form(client, f"/orders/{order.id}/actions/accept", {}).status_code == 302
    post_form(client, f"/orders/{order.id}/milestones",
              {"milestone-title": "Prior-art search", "milestone-share": "40",
               "milestone-due_date": "2030-01-31"})
    milestone_id = session.scalar(select(func.max(OrderEvent.id)))  # something exists
    assert milestone_id
    html = page(client, f"/provider/orders/{order.id}")
    assert "Prior-art search" in html
    # Issue 13: the institution submits a milestone; the buyer's approval releases money.
    mid = re.search(r"/milestones/(\d+)/submit", html).group(1)
    post_form(client, f"/orders/{order.id}/milestones/{mid}/submit",
              {f"ms{mid}-note": "Search report attached",
               f"ms{mid}-files": (io.BytesIO(osup.pdf_bytes("search")), "search.pdf")},
              content_type="multipart/form-data")
    post_form(client, f"/orders/{order.id}/progress",
              {"progress-percent": "60", "progress-note": "Claims drafted",
               "progress-files": (io.BytesIO(osup.pdf_bytes("draft")), "claims.pdf")},
              content_type="multipart/form-data")
    response = post_form(client, f"/orders/{order.id}/deliver",
                         {"deliver-note": "Application filed",
                          "deliver-files": (io.BytesIO(osup.pdf_bytes("receipt")), "filing.pdf")},
                         content_type="multipart/form-data")
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Order, order.id).status == "delivered"
    osup.logout(client)

    osup.login(client, p.buyer)
    html = page(client, f"/orders/{order.id}")
    assert "filing.pdf" in html and "claims.pdf" in html and "Prior-art search" in html
    file_id = session.scalar(select(OrderFile.id).where(OrderFile.original_name == "filing.pdf"))
    download = client.get(f"/orders/{order.id}/files/{file_id}")
    assert download.status_code == 200 and download.data.startswith(b"%PDF")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    post_form(client, f"/orders/{order.id}/actions/complete", {})
    session.expire_all()
    completed = session.get(Order, order.id)
    assert completed.status == "completed"
    assert sum(ledger.balances(session, order.id).values()) == 0
    names = [e.name for e in completed.events]
    for expected in ("placed", "pay", "accept", "milestone_added", "milestone_submitted",
                     "progress", "deliver", "complete"):
        assert expected in names
    osup.logout(client)
    # The file is for the parties and staff only.
    osup.login(client, p.outsider)
    assert client.get(f"/orders/{order.id}/files/{file_id}").status_code == 404


def test_uploads_are_checked_by_content(client, session, deal):
    p, order = deal
    osup.set_status(session, order, "accepted")
    session.commit()
    osup.login(client, p.provider)
    post_form(client, f"/orders/{order.id}/progress",
              {"progress-percent": "10", "progress-note": "Started",
               "progress-files": (io.BytesIO(b"<html><script>alert(1)</script></html>"),
                                  "report.pdf")},
              content_type="multipart/form-data")
    html = page(client, f"/provider/orders/{order.id}")
    assert "web page" in html or "not a PDF" in html
    assert session.scalar(select(func.count(OrderFile.id)).where(
        OrderFile.purpose == "progress")) == 0


def test_messages_between_buyer_and_provider_and_staff_read_only(client, session, deal):
    p, order = deal
    osup.login(client, p.buyer)
    post_form(client, f"/orders/{order.id}/messages", {"message-body": "When can you start?"})
    osup.logout(client)
    osup.login(client, p.provider)
    assert "When can you start?" in page(client, f"/provider/orders/{order.id}")
    post_form(client, f"/orders/{order.id}/messages", {"message-body": "Monday."})
    osup.logout(client)
    osup.login(client, p.staff)
    html = page(client, f"/staff/orders/{order.id}")
    assert "When can you start?" in html and "Monday." in html
    assert post_form(client, f"/orders/{order.id}/messages",
                     {"message-body": "Staff here"}).status_code == 403
    assert session.scalar(select(func.count(OrderMessage.id))) == 2


def test_staff_ruling_moves_the_money(client, session, deal):
    p, order = deal
    osup.login(client, p.staff)
    post_form(client, f"/orders/{order.id}/transfer-received", {"transfer-amount": "3000"})
    osup.logout(client)
    session.expire_all()
    order = session.get(Order, order.id)
    osup.set_status(session, order, "disputed")
    session.commit()
    osup.login(client, p.staff)
    response = post_form(client, f"/orders/{order.id}/resolve",
                         {"ruling-ruling": "partial", "ruling-refund": "1,000.00",
                          "ruling-note": "Two thirds delivered"})
    assert response.status_code == 302
    session.expire_all()
    order = session.get(Order, order.id)
    assert order.status == "resolved" and order.ruling_refund == 100000
    refund = order.payments[0].refunds[0]
    assert refund.amount == 100000 and refund.status == "pending_transfer"
    balances = ledger.balances(session, order.id)
    assert balances["platform_cash"] == 200000 and sum(balances.values()) == 0
    assert "Ledger" in page(client, f"/staff/orders/{order.id}")


def test_order_lists_filter_and_paginate(client, session, deal, app):
    p, order = deal
    for status in ("paid", "completed", "cancelled"):
        osup.order(session, p, status=status, title=f"Order {status}")
    session.commit()
    osup.login(client, p.buyer)
    html = page(client, "/orders")
    assert html.count('data-testid="order-row"') == 4
    html = page(client, "/orders?group=closed")
    assert html.count('data-testid="order-row"') == 1 and "Order cancelled" in html
    html = page(client, "/orders?group=todo")  # awaiting payment or delivered
    assert html.count('data-testid="order-row"') == 1
    html = page(client, f"/orders?q={order.number}")
    assert html.count('data-testid="order-row"') == 1
    app.config["PAGE_SIZE"] = 2
    try:
        html = page(client, "/orders?page=2")
        assert html.count('data-testid="order-row"') == 2 and "Showing 3–4 of 4" in html
    finally:
        app.config["PAGE_SIZE"] = 24
    osup.logout(client)
    osup.login(client, p.provider)
    html = page(client, "/provider/orders?group=todo")
    assert html.count('data-testid="order-row"') == 1  # the paid one waits for acceptance
    osup.logout(client)
    osup.login(client, p.staff)
    assert page(client, "/staff/orders").count('data-testid="order-row"') == 4
    assert "1 bank transfer" in page(client, "/staff/orders")


def test_order_pages_need_the_right_role(client, session, deal):
    p, _order = deal
    assert client.get("/orders").status_code == 302  # log in first
    osup.login(client, p.provider)
    assert client.get("/orders").status_code == 403
    assert client.get("/cart").status_code == 403
    assert client.get("/staff/orders").status_code == 403
    osup.logout(client)
    osup.login(client, p.buyer)
    assert client.get("/provider/orders").status_code == 403
    assert client.get("/staff/vouchers").status_code == 403


def test_navbar_shows_cart_and_orders_to_enterprises(client, session, deal):
    p, _order = deal
    osup.login(client, p.buyer)
    html = page(client, "/")
    assert 'data-testid="orders-link"' in html and 'data-testid="cart-link"' in html
    assert csrf_token(client, "/orders")
    db.session.remove()


def test_admin_sets_commission_rates_that_checkout_snapshots(client, session):
    admin = factories.user(session, role="admin")
    p = osup.parties(session)
    product = factories.product(session, p.provider_org, prices=(100_000,))
    session.commit()
    osup.login(client, admin)
    assert "Commission rates" in page(client, "/staff/commissions")
    post_form(client, "/staff/commissions", {"kind": "category", "rate": "8.5",
                                             "category_id": product.category.parent_id})
    osup.logout(client)
    cart.add(session, p.buyer, product.packages[0].id)
    order = checkout.place_orders(session, p.buyer, checkout.CheckoutInput(
        token=checkout.new_token(), payment_method="bank_transfer")).checkout.orders[0]
    session.commit()
    assert order.commission_bp == 850
    osup.login(client, admin)
    post_form(client, "/staff/commissions", {"kind": "provider", "rate": "3",
                                             "provider_id": p.provider_org.id, "note": "Partner"})
    post_form(client, "/staff/commissions", {"kind": "category", "rate": "250",
                                             "category_id": product.category_id})
    assert "Not saved" in page(client, "/staff/commissions")
    # Each change that was saved is in the audit log with who, before and after; the refused
    # 250% left no entry.
    log = page(client, "/staff/audit?action=commission.set_category")
    assert "commission.set_category" in log and "8.5%" in log and "250%" not in log
    entries = session.scalars(select(AuditLog).where(AuditLog.action.like("commission.%"))
                              .order_by(AuditLog.id)).all()
    assert [(e.action, e.actor_id, e.details) for e in entries] == [
        ("commission.set_category", admin.id, {"before": None, "after": "8.5%"}),
        ("commission.set_provider", admin.id, {"before": None, "after": "3%"}),
    ]
    assert entries[1].target_id == p.provider_org.id and entries[1].reason == "Partner"
    osup.logout(client)
    osup.login(client, p.staff)
    assert client.get("/staff/commissions").status_code == 403


def test_demo_vouchers_command_is_repeatable(app, session):
    factories.user(session, role="admin")
    factories.enterprise(session)
    session.commit()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo-vouchers"])
    assert first.exit_code == 0 and "1 granted" in first.output
    again = runner.invoke(args=["seed-demo-vouchers"])
    assert "0 granted" in again.output
