"""Issue 13, escrow and settlement: a milestone release enters the next settlement batch while
its order still runs (a line per ledger posting, never in two batches), the order's own line
later carries only the rest, and a staff clawback of released money is a line of its own
that the institution's next statement deducts. Statement figures keep
gross - refunds = fee + net, and every order's ledger still sums to zero."""

from datetime import timedelta

import order_support as osup
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from marketplace.audit import AuditLog
from marketplace.i18n import local_today
from orders import ledger, milestones, payments, services, settlement
from orders.models import LedgerEntry, Order, SettlementItem

PRICE = 500000




def _approve(session, order, p, index):
    milestone = order.milestones[index]
    milestones.submit(session, order, p.provider, milestone.id, "Done")
    milestones.approve(session, order, p.buyer, milestone.id)
    session.commit()
    return milestone


def _period():
    today = local_today()
    return settlement.period_between(today - timedelta(days=1), today + timedelta(days=1))


def _figures(holder):
    return {name: getattr(holder, name) for name in settlement.FIGURES}


def test_a_release_is_settled_while_the_order_runs_and_the_order_later_for_the_rest(session):
    p = osup.parties(session)
    order = osup.funded_order(session, p)
    first = _approve(session, order, p, 0)

    run = settlement.run_period(session, _period(), p.staff)
    session.commit()
    assert run.created and run.batch.order_count == 1
    (statement,) = run.batch.statements
    (item,) = statement.items
    assert (item.kind, item.posting, item.order_id) == ("release", first.release_posting,
                                                       order.id)
    assert _figures(item) == {"gross": 150000, "refunds": 0, "voucher": 0, "fee": 15000,
                              "net": 135000}
    assert session.get(Order, order.id).batched_at is None  # the order itself runs on
    again = settlement.run_period(session, _period(), p.staff)
    assert not again.created  # a posting is never in two batches

    settlement.mark_paid(session, statement, p.staff, "PAY-0001")
    session.commit()
    assert order.status == "in_progress"
    assert ledger.balances(session, order.id)["provider_payable"] == 0

    _approve(session, order, p, 1)
    services.deliver(session, order, p.provider, "All done")
    session.commit()
    services.complete(session, order, p.buyer)
    run = settlement.run_period(session, _period(), p.staff)
    session.commit()
    assert run.created and run.batch.sequence == 2
    (item,) = run.batch.statements[0].items
    # The whole-order line: the order value less the release settled already (the second
    # milestone's release is part of it).
    assert item.kind == "order" and item.posting is None
    assert _figures(item) == {"gross": 350000, "refunds": 0, "voucher": 0, "fee": 35000,
                              "net": 315000}
    assert not settlement.stale_items(session, run.batch.statements[0])
    settlement.mark_paid(session, run.batch.statements[0], p.staff, "PAY-0002")
    session.commit()
    session.refresh(order)
    assert order.status == "settled"
    balances = ledger.balances(session, order.id)
    assert sum(balances.values()) == 0 and balances["provider_payable"] == 0
    assert balances["escrow"] == 0
    paid = session.scalar(select(func.sum(LedgerEntry.amount)).where(
        LedgerEntry.order_id == order.id, LedgerEntry.kind == "payout",
        LedgerEntry.account == "provider_payable"))
    assert paid == 450000  # 135000 + 315000: the order's net, paid once


def test_a_clawback_is_deducted_from_the_next_statement_and_audited(session):
    p = osup.parties(session)
    order = osup.funded_order(session, p)
    _approve(session, order, p, 0)
    run = settlement.run_period(session, _period(), p.staff)
    settlement.mark_paid(session, run.batch.statements[0], p.staff, "PAY-0001")
    session.commit()

    with pytest.raises(payments.PaymentError, match="at most"):
        payments.staff_clawback(session, order, p.staff, 150001, "Too much")
    session.rollback()
    with pytest.raises(payments.PaymentError, match="reason"):
        payments.staff_clawback(session, order, p.staff, 1000, " ")
    session.rollback()
    with pytest.raises(Exception, match="staff"):
        payments.staff_clawback(session, order, p.buyer, 1000, "Mine")
    session.rollback()

    refund = payments.staff_clawback(session, order, p.staff, 50000, "Report plagiarised")
    session.commit()
    assert refund.amount == 50000 and refund.status == "pending_transfer"
    lines = {e.account: e.amount for e in ledger.entries(session, order.id)
             if e.kind == "clawback"}
    assert lines == {"provider_payable": 45000, "platform_fee_revenue": 5000,
                     "platform_cash": -50000}
    assert ledger.balances(session, order.id)["provider_payable"] == 45000  # owed by it
    assert session.scalar(select(func.count(AuditLog.id)).where(
        AuditLog.action == "order.clawback")) == 1
    assert payments.clawback_limit(session, order) == 100000

    run = settlement.run_period(session, _period(), p.staff)
    session.commit()
    (item,) = run.batch.statements[0].items
    assert item.kind == "clawback"
    assert _figures(item) == {"gross": 0, "refunds": 50000, "voucher": 0, "fee": -5000,
                              "net": -45000}
    assert run.batch.statements[0].net == -45000
    csv = settlement.statement_csv(run.batch.statements[0])
    assert "Clawback" in csv and "-450.00" in csv
    settlement.mark_paid(session, run.batch.statements[0], p.staff, "PAY-0003")
    session.commit()
    balances = ledger.balances(session, order.id)
    assert balances["provider_payable"] == 0 and sum(balances.values()) == 0

    # The order completes later: its line holds the rest, the clawback is not counted twice.
    services.deliver(session, order, p.provider, "Done")
    session.commit()
    services.complete(session, order, p.buyer)
    run = settlement.run_period(session, _period(), p.staff)
    session.commit()
    (item,) = run.batch.statements[0].items
    assert item.kind == "order"
    assert _figures(item) == {"gross": 350000, "refunds": 0, "voucher": 0, "fee": 35000,
                              "net": 315000}


def test_a_posting_cannot_be_in_two_batches(session):
    p = osup.parties(session)
    order = osup.funded_order(session, p)
    first = _approve(session, order, p, 0)
    run = settlement.run_period(session, _period(), p.staff)
    session.commit()
    item = run.batch.statements[0].items[0]
    session.add(SettlementItem(batch_id=item.batch_id, statement_id=item.statement_id,
                               order_id=order.id, kind="release", posting=first.release_posting,
                               gross=1, refunds=0, voucher=0, fee=0, net=1))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_statement_page_lists_milestone_releases(client, session):
    p = osup.parties(session)
    order = osup.funded_order(session, p)
    _approve(session, order, p, 0)
    run = settlement.run_period(session, _period(), p.staff)
    session.commit()
    statement_id = run.batch.statements[0].id
    osup.login(client, p.staff)
    html = client.get(f"/staff/settlement/statements/{statement_id}").get_data(as_text=True)
    assert 'data-kind="release"' in html and "Milestone release" in html
    assert order.number in html
    # The line names the milestone it pays, on the page and in the CSV finance files.
    assert 'data-testid="statement-milestone">Step 1<' in html
    csv_text = client.get(f"/staff/settlement/statements/{statement_id}/export.csv"
                          ).get_data(as_text=True)
    assert "Milestone release: Step 1" in csv_text
    osup.logout(client)
    osup.login(client, p.provider)
    response = client.get(f"/provider/statements/{statement_id}")
    assert response.status_code == 200 and "Milestone release" in response.get_data(
        as_text=True)


def test_a_refund_after_completion_never_takes_back_money_paid_out(session):
    """A release paid out in an earlier statement is not the order's to refund any more:
    "Refund after capture" refuses it (pointing to the clawback) and the clawback takes it."""
    p = osup.parties(session)
    order = osup.funded_order(session, p)
    _approve(session, order, p, 0)
    run = settlement.run_period(session, _period(), p.staff)
    settlement.mark_paid(session, run.batch.statements[0], p.staff, "PAY-0001")
    services.deliver(session, order, p.provider, "Done")
    session.commit()
    services.complete(session, order, p.buyer)
    with pytest.raises(payments.PaymentError, match="clawback"):
        payments.staff_refund(session, order, p.staff, PRICE, "Everything back")
    session.rollback()
    assert sum(ledger.balances(session, order.id).values()) == 0
    done = payments.staff_refund(session, order, p.staff, 350000, "The unpaid part back")
    session.commit()
    assert done.cash == 350000
    payments.staff_clawback(session, order, p.staff, 150000, "The paid part back")
    session.commit()
    balances = ledger.balances(session, order.id)
    assert sum(balances.values()) == 0 and balances["escrow"] == 0
    assert balances["provider_payable"] > 0  # the institution owes what it was paid
    payment = order.payments[-1]
    assert payment.amount_refunded == payment.amount_captured == PRICE
