"""The scale check's bulk generator (bench/scale.py) at a small size, on SQLite and
PostgreSQL: the data it writes is consistent, so the console pages and the jobs measured on
it see what real use would leave behind."""

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from marketplace.database import db
from orders import ledger
from orders.models import LedgerEntry, Order, Payment, VoucherRedemption
from orders.money import fee_split

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import scale  # noqa: E402

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
SIZES = scale.Sizes(listings=700, enterprises=60, orders=1500)


@pytest.fixture
def generated(app):
    with app.app_context():
        result = scale.generate(db.engine, SIZES, now=NOW, say=lambda _message: None)
        yield result


def test_counts_by_state_are_exactly_as_requested(app, generated):
    expected = scale.state_counts(SIZES.orders)
    assert sum(expected.values()) == SIZES.orders
    assert set(expected) == set(scale.STATE_SHARES)
    with app.app_context():
        found = dict(db.session.execute(
            select(Order.status, func.count()).group_by(Order.status)).all())
        assert found == expected
        assert db.session.scalar(select(func.count()).select_from(Order)) == SIZES.orders
        assert generated["listings"] == SIZES.listings
        assert db.session.scalar(text(
            "SELECT count(*) FROM organisation WHERE kind = 'enterprise'")) == SIZES.enterprises


def test_every_order_balances_and_references_real_rows(app, generated):
    with app.app_context():
        unbalanced = db.session.execute(
            select(LedgerEntry.order_id).group_by(LedgerEntry.order_id)
            .having(func.sum(LedgerEntry.amount) != 0)).all()
        assert unbalanced == []
        unbalanced_postings = db.session.execute(
            select(LedgerEntry.posting).group_by(LedgerEntry.posting)
            .having(func.sum(LedgerEntry.amount) != 0)).all()
        assert unbalanced_postings == []
        dangling = db.session.scalar(text("""
            SELECT count(*) FROM purchase_order o
            LEFT JOIN organisation b ON b.id = o.buyer_org_id AND b.kind = 'enterprise'
            LEFT JOIN organisation p ON p.id = o.provider_org_id AND p.kind = 'provider'
            LEFT JOIN product pr ON pr.id = o.product_id AND pr.provider_id = o.provider_org_id
            LEFT JOIN user_account u ON u.id = o.buyer_user_id AND u.organisation_id = b.id
            WHERE b.id IS NULL OR p.id IS NULL OR pr.id IS NULL OR u.id IS NULL"""))
        assert dangling == 0
        lines = db.session.scalar(text(
            "SELECT count(*) FROM order_line l JOIN purchase_order o ON o.id = l.order_id "
            "WHERE l.unit_price * l.quantity = o.subtotal"))
        assert lines == SIZES.orders


def test_ledger_matches_each_state(app, generated):
    """What orders/ledger.py would leave: a completed order has recognised its value
    (platform fee plus provider payable), a settled one has paid the provider out, a
    cancelled or declined one holds nothing, an open paid one keeps the money in escrow."""
    with app.app_context():
        session = db.session
        sample = {status: session.scalars(select(Order).where(Order.status == status)
                                          .order_by(Order.id).limit(25)).all()
                  for status in scale.STATE_SHARES}
        for order in sample["completed"]:
            current = ledger.balances(session, order.id)
            fee, net = fee_split(order.subtotal, order.commission_bp)
            assert current["platform_fee_revenue"] == -fee
            assert current["provider_payable"] == -net
            assert current["escrow"] == 0 and current["buyer_funds_held"] == 0
            assert current["platform_cash"] == order.subtotal - order.voucher_amount
            assert current["voucher_receivable"] == order.voucher_amount
            assert ledger.provider_view(session, order)["earned"] is True
        for order in sample["settled"]:
            current = ledger.balances(session, order.id)
            assert current["provider_payable"] == 0
            assert current["platform_fee_revenue"] < 0 or order.commission_bp == 0
        for status in ("cancelled", "declined"):
            for order in sample[status]:
                current = ledger.balances(session, order.id)
                assert all(amount == 0 for amount in current.values()), (order, current)
        for status in ("paid", "accepted", "in_progress", "delivered", "disputed"):
            for order in sample[status]:
                assert ledger.balances(session, order.id)["escrow"] == -order.subtotal
                assert order.live_payment is not None
        for order in sample["pending_payment"]:
            assert ledger.entries(session, order.id) == []
        for order in sample["resolved"]:
            current = ledger.balances(session, order.id)
            kept = order.subtotal - order.ruling_refund
            assert -current["platform_fee_revenue"] - current["provider_payable"] == kept
            assert current["escrow"] == 0


def test_payments_vouchers_and_timelines_are_consistent(app, generated):
    with app.app_context():
        session = db.session
        too_much = session.scalar(select(func.count()).select_from(Payment).where(
            Payment.amount_refunded > Payment.amount_captured))
        assert too_much == 0
        # Every redemption belongs to an order whose voucher share it equals.
        mismatched = session.scalar(
            select(func.count()).select_from(VoucherRedemption)
            .join(Order, Order.id == VoucherRedemption.order_id)
            .where(VoucherRedemption.amount != Order.voucher_amount))
        assert mismatched == 0
        assert session.scalar(text(
            "SELECT count(*) FROM voucher WHERE balance < 0 OR balance > amount")) == 0
        # Each order's timeline starts with "placed" and ends in its current state.
        last_states = session.execute(text("""
            SELECT o.status, e.to_status FROM purchase_order o JOIN order_event e
            ON e.order_id = o.id AND e.created_at = (SELECT max(created_at) FROM order_event x
                                                     WHERE x.order_id = o.id)""")).all()
        assert last_states and all(status == last for status, last in last_states)
        # Open orders are recent; settled ones are older than the period being settled.
        start, _end = generated["settlement_period"]
        settled_late = session.scalar(select(func.count()).select_from(Order).where(
            Order.status == "settled",
            Order.completed_at >= datetime(start.year, start.month, 1, tzinfo=UTC)))
        assert settled_late == 0
        order = session.scalar(select(Order).where(Order.status == "in_progress").limit(1))
        assert order.accepted_at < NOW and order.due_at > order.accepted_at


def test_settled_orders_sit_in_paid_settlement_batches(app, generated):
    with app.app_context():
        session = db.session
        assert session.scalar(text(
            "SELECT count(*) FROM purchase_order o LEFT JOIN settlement_item i "
            "ON i.order_id = o.id WHERE o.status = 'settled' AND i.id IS NULL")) == 0
        assert session.scalar(text(
            "SELECT count(*) FROM settlement_statement WHERE paid_at IS NULL")) == 0
        assert session.scalar(text(
            "SELECT count(*) FROM settlement_item i JOIN purchase_order o ON o.id = i.order_id "
            "WHERE o.status <> 'settled'")) == 0
        # Exactly the orders in a batch carry batched_at, as run_period leaves them.
        assert session.scalar(text(
            "SELECT count(*) FROM purchase_order o LEFT JOIN settlement_item i "
            "ON i.order_id = o.id WHERE (i.id IS NULL) <> (o.batched_at IS NULL)")) == 0


def test_reviews_only_on_completed_orders_and_ratings_match(app, generated):
    with app.app_context():
        session = db.session
        assert generated["reviews"] > 0
        assert session.scalar(text(
            "SELECT count(*) FROM review r JOIN purchase_order o ON o.id = r.order_id "
            "WHERE o.status NOT IN ('completed', 'settled', 'resolved')")) == 0
        assert session.scalar(text(
            "SELECT count(*) FROM review r JOIN purchase_order o ON o.id = r.order_id "
            "WHERE (r.side = 'buyer' AND r.author_org_id <> o.buyer_org_id) "
            "OR (r.side = 'provider' AND r.author_org_id <> o.provider_org_id)")) == 0
        from catalog import reviews
        from catalog.models import Product

        product = session.scalar(select(Product).where(Product.rating_count > 0).limit(1))
        before = (product.rating_x100, product.rating_count)
        reviews.refresh_product_rating(session, product.id)
        assert (product.rating_x100, product.rating_count) == before
        session.rollback()
