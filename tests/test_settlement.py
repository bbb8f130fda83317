"""Settlement: batches from the ledger, idempotent runs, one batch per order (also in the
database), payouts that leave every order's ledger at zero, CSV exports and the voucher
report for funders. The fixture and its hand computation are in settlement_support.py."""

import csv
import io
from datetime import timedelta

import factories
import pytest
import settlement_support as ss
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from stripe_fixtures import localstripe  # noqa: F401

from marketplace.database import utcnow
from marketplace.models import AuditLog, Notification
from orders import ledger, payments, settlement
from orders.models import LedgerEntry, SettlementBatch, SettlementItem, SettlementStatement
from orders.settlement import SettlementError


@pytest.fixture
def month(session, localstripe):  # noqa: F811
    return ss.build_month(session)


def _run(session, month):
    result = settlement.run_period(session, month.period, month.a.staff, "CNY")
    session.commit()
    return result


def _statement(batch, parties) -> SettlementStatement:
    return next(s for s in batch.statements if s.provider_org_id == parties.provider_org.id)


def test_a_batch_equals_the_hand_computed_figures_to_the_cent(session, month):
    result = _run(session, month)
    batch = result.batch
    assert result.created and batch.sequence == 1
    assert batch.order_count == 6
    assert ss.figures(batch) == ss.EXPECTED["batch"]
    a, b = _statement(batch, month.a), _statement(batch, month.b)
    assert ss.figures(a) == ss.EXPECTED["A"] and a.order_count == 3
    assert ss.figures(b) == ss.EXPECTED["B"] and b.order_count == 3
    by_number = {item.order.number: item for s in batch.statements for item in s.items}
    for key in ("A1", "A2", "A3", "B1", "B2", "B3"):
        assert ss.figures(by_number[month.orders[key].number]) == ss.EXPECTED[key], key
    # Orders outside the period, still open, cancelled, or with money not final stay out.
    for key in ("X1", "X2", "X3", "X4"):
        assert month.orders[key].number not in by_number
    assert [order.number for order, _why in result.waiting] == [month.orders["X4"].number]
    # Nothing is settled or paid out yet: orders wait for their statement's payout.
    assert month.orders["A1"].status == "completed" and month.orders["B1"].status == "resolved"
    assert session.scalar(select(func.count()).where(LedgerEntry.kind == "payout")) == 0
    audit = session.scalar(select(AuditLog).where(AuditLog.action == "settlement.batch_created"))
    assert audit.target_id == batch.id and audit.details["orders"] == 6


def test_running_the_same_period_again_creates_nothing(session, month):
    first = _run(session, month).batch
    again = _run(session, month)
    assert not again.created and again.batch.id == first.id
    assert session.scalar(select(func.count(SettlementBatch.id))) == 1
    assert session.scalar(select(func.count(SettlementItem.id))) == 6
    assert "nothing new" in again.summary()


def test_orders_ready_later_go_into_a_supplementary_batch_never_twice(session, month):
    first = _run(session, month).batch
    # X4's money becomes final (recognised) after the first run.
    x4 = month.orders["X4"]
    ledger.recognise(session, x4)
    session.commit()
    second = _run(session, month)
    assert second.created and second.batch.sequence == 2 and second.batch.id != first.id
    assert [i.order_id for s in second.batch.statements for i in s.items] == [x4.id]
    assert settlement.batch_number(second.batch).endswith("-2")
    third = _run(session, month)
    assert not third.created and third.batch.id == second.batch.id
    per_order = session.execute(select(SettlementItem.order_id, func.count())
                                .group_by(SettlementItem.order_id)).all()
    assert all(count == 1 for _order, count in per_order) and len(per_order) == 7


def test_a_batch_marks_its_orders_and_the_backlog_keeps_only_those_still_waiting(session,
                                                                                 month):
    tomorrow = utcnow().date() + timedelta(days=1)
    before, _oldest = settlement.unbatched_backlog(session, tomorrow, "CNY")
    touched = {key: month.orders[key].updated_at for key in month.orders}
    batch = _run(session, month).batch
    session.expire_all()
    batched = {item.order.number for s in batch.statements for item in s.items}
    for key, order in month.orders.items():
        if order.number in batched:
            assert order.batched_at == batch.created_at, key
            assert order.updated_at == touched[key], key  # joining a batch is no activity
        else:
            assert order.batched_at is None, key
    after, _oldest = settlement.unbatched_backlog(session, tomorrow, "CNY")
    assert before - after == 6 and after >= 1  # X4 waits for its money to be final

    ledger.recognise(session, month.orders["X4"])
    session.commit()
    _run(session, month)
    session.expire_all()
    assert month.orders["X4"].batched_at is not None
    assert settlement.unbatched_backlog(session, tomorrow, "CNY")[0] == after - 1


def test_the_database_refuses_an_order_in_two_batches(session, month):
    batch = _run(session, month).batch
    item = batch.statements[0].items[0]
    other = SettlementBatch(period_start=batch.period_start, period_end=batch.period_end,
                            sequence=5, currency="CNY", order_count=1,
                            **{name: 0 for name in settlement.FIGURES})
    session.add(other)
    session.flush()
    statement = SettlementStatement(batch_id=other.id, provider_org_id=item.order.provider_org_id,
                                    order_count=1, **{n: 0 for n in settlement.FIGURES})
    session.add(statement)
    session.flush()
    session.add(SettlementItem(batch_id=other.id, statement_id=statement.id,
                               order_id=item.order_id, **{n: 0 for n in settlement.FIGURES}))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()
    assert session.scalar(select(func.count(SettlementItem.id))) == 6


def test_marking_paid_posts_payouts_settles_orders_and_zeroes_every_ledger(session, month):
    batch = _run(session, month).batch
    a = _statement(batch, month.a)
    settlement.mark_paid(session, a, month.a.staff, "  BOC 2026-11 / 0001  ")
    session.commit()
    assert a.payout_reference == "BOC 2026-11 / 0001" and a.paid_at is not None
    assert settlement.batch_status(batch) == "partly_paid"
    paid_out = session.scalars(select(LedgerEntry).where(
        LedgerEntry.kind == "payout", LedgerEntry.account == "provider_payable")).all()
    assert sum(e.amount for e in paid_out) == ss.EXPECTED["A"]["net"]
    for item in a.items:
        session.refresh(item.order)
        assert item.order.status == "settled"
        balances = ledger.balances(session, item.order_id)
        assert sum(balances.values()) == 0 and balances["provider_payable"] == 0
    # B still unpaid: its orders keep their status.
    b = _statement(batch, month.b)
    assert all(i.order.status == "resolved" for i in b.items)
    settlement.mark_paid(session, b, month.a.staff, "BOC-0002")
    session.commit()
    assert settlement.batch_status(batch) == "paid"
    for key in ("A1", "A2", "A3", "B1", "B2", "B3"):
        entries = ledger.entries(session, month.orders[key].id)
        assert sum(e.amount for e in entries) == 0, key
        assert ledger.balances(session, month.orders[key].id)["provider_payable"] == 0
    # The figures stay what they were: payouts are not part of "net payable".
    assert ss.figures(batch) == ss.EXPECTED["batch"]
    # Audit trail and the institution's notification.
    audit = session.scalars(select(AuditLog).where(
        AuditLog.action == "settlement.statement_paid")).all()
    assert {e.details["reference"] for e in audit} == {"BOC 2026-11 / 0001", "BOC-0002"}
    note = session.scalar(select(Notification).where(
        Notification.user_id == month.a.provider.id, Notification.kind == "settlement_paid"))
    assert month.period.label in note.title and "BOC 2026-11 / 0001" in note.body
    assert "¥1,979.99" in note.body
    # One notice per paid statement, not one more per order settled in it.
    assert session.scalar(select(func.count()).where(
        Notification.user_id == month.a.provider.id,
        Notification.created_at >= a.paid_at)) == 1


def test_paying_twice_or_without_a_valid_reference_is_refused(session, month):
    batch = _run(session, month).batch
    a = _statement(batch, month.a)
    for bad in ("", "   ", "ab", "<script>", "x" * 65):
        with pytest.raises(SettlementError) as refused:
            settlement.mark_paid(session, a, month.a.staff, bad)
        assert refused.value.status == 400
    session.rollback()
    assert session.scalar(select(func.count()).where(LedgerEntry.kind == "payout")) == 0
    settlement.mark_paid(session, a, month.a.staff, "REF-1")
    session.commit()
    with pytest.raises(SettlementError, match="already"):
        settlement.mark_paid(session, a, month.a.staff, "REF-2")
    session.rollback()
    assert a.payout_reference == "REF-1"


def test_a_late_refund_blocks_payment_until_the_figures_are_refreshed(session, month):
    batch = _run(session, month).batch
    a = _statement(batch, month.a)
    a1 = month.orders["A1"]
    payments.staff_refund(session, a1, month.a.staff, 20000, "Goodwill")  # after the batch
    session.commit()
    stale = settlement.stale_items(session, a)
    assert [s.order.number for s in stale] == [a1.number]
    with pytest.raises(SettlementError, match="changed after this batch"):
        settlement.mark_paid(session, a, month.a.staff, "REF-1")
    session.rollback()
    assert settlement.refresh_statement(session, a, month.a.staff) == 1
    session.commit()
    # A1 kept 80000: fee 8000, net 72000 (was 90000): the statement drops by 18000.
    assert a.net == ss.EXPECTED["A"]["net"] - 18000
    assert batch.net == ss.EXPECTED["batch"]["net"] - 18000
    assert batch.refunds == ss.EXPECTED["batch"]["refunds"] + 20000
    settlement.mark_paid(session, a, month.a.staff, "REF-1")
    session.commit()
    assert ledger.balances(session, a1.id)["provider_payable"] == 0


def _parse(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_statement_and_batch_csv_columns_and_totals(session, month):
    batch = _run(session, month).batch
    b = _statement(batch, month.b)
    rows = _parse(settlement.statement_csv(b))
    assert rows[0] == [str(c) for c in settlement.STATEMENT_COLUMNS]
    body, total = rows[1:-1], rows[-1]
    assert len(body) == 3
    col = {name: rows[0].index(name) for name in rows[0]}
    b1 = next(r for r in body if r[col["Order number"]] == month.orders["B1"].number)
    assert [b1[col[c]] for c in ("Gross", "Refunds", "Voucher share", "Platform fee",
                                 "Net payable")] == ["333.33", "200.00", "66.66", "16.67",
                                                     "116.66"]
    assert b1[col["Institution"]] == month.b.provider_org.name
    assert total[0] == "TOTAL"
    assert [total[col[c]] for c in ("Gross", "Refunds", "Voucher share", "Platform fee",
                                    "Net payable")] == ["3533.33", "1900.00", "66.66", "204.17",
                                                        "1429.16"]
    # The totals row is the sum of the lines.
    from decimal import Decimal
    for name in ("Gross", "Refunds", "Voucher share", "Platform fee", "Net payable"):
        assert sum(Decimal(r[col[name]]) for r in body) == Decimal(total[col[name]])

    whole = _parse(settlement.batch_csv(batch))
    assert whole[0] == [str(c) for c in settlement.STATEMENT_COLUMNS] and len(whole) == 1 + 6 + 1
    assert whole[-1][col["Net payable"]] == "3409.15"
    assert whole[-1][col["Order number"]] == "6 orders"


def test_voucher_redemptions_per_programme_for_the_funder(session, month):
    _run(session, month)
    p1 = settlement.voucher_report(session, month.programmes["P1"], month.period)
    assert [o.number for _r, o, _e in p1.rows] == [month.orders["A2"].number]
    assert (p1.order_total, p1.applied, p1.returned, p1.net) == (80000, 24000, 3001, 20999)
    p2 = settlement.voucher_report(session, month.programmes["P2"], month.period)
    assert (p2.order_total, p2.applied, p2.returned, p2.net) == (33333, 16666, 10000, 6666)
    rows = _parse(settlement.voucher_csv(p2))
    assert rows[0] == [str(c) for c in settlement.VOUCHER_COLUMNS]
    col = {name: rows[0].index(name) for name in rows[0]}
    line = rows[1]
    assert line[col["Enterprise"]] == month.a.buyer_org.name
    assert line[col["Credit code"]] == (month.a.buyer_org.credit_code or "")
    assert line[col["Order number"]] == month.orders["B1"].number
    assert (line[col["Order amount"]], line[col["Voucher applied"]],
            line[col["Voucher returned"]], line[col["Voucher amount"]]) == (
        "333.33", "166.66", "100.00", "66.66")
    assert rows[-1][0] == "TOTAL" and rows[-1][col["Voucher amount"]] == "66.66"
    # Another month has nothing to reimburse.
    empty = settlement.voucher_report(session, month.programmes["P1"],
                                      settlement.month("2001-01"))
    assert empty.rows == [] and empty.net == 0


def test_periods_are_parsed_and_checked():
    period = settlement.month("2026-02")
    assert (period.start.isoformat(), period.end.isoformat(), period.label) == (
        "2026-02-01", "2026-02-28", "2026-02")
    for bad in ("2026-13", "26-11", "november", "", "2026-1"):
        with pytest.raises(SettlementError):
            settlement.month(bad)
    custom = settlement.period_between(period.start, period.start.replace(day=15))
    assert custom.label == "2026-02-01 – 2026-02-15"
    with pytest.raises(SettlementError, match="ends before"):
        settlement.period_between(period.end, period.start)


def test_a_period_that_is_not_over_is_refused_unless_confirmed(app):
    """Settling the current month early would split its orders over two batches: the rule
    refuses it (with a message saying so) unless staff confirmed; days are Beijing days."""
    from datetime import date

    from orders.settlement import UnfinishedPeriod

    november = settlement.month("2026-11")
    with pytest.raises(UnfinishedPeriod, match="2026-11 is not over yet"):
        settlement.ensure_period_over(november, date(2026, 11, 20))
    with pytest.raises(UnfinishedPeriod):  # the last day itself is not over
        settlement.ensure_period_over(november, date(2026, 11, 30))
    settlement.ensure_period_over(november, date(2026, 11, 20), confirmed=True)
    settlement.ensure_period_over(november, date(2026, 12, 1))  # over: no confirmation
    week = settlement.period_between(date(2026, 12, 1), date(2026, 12, 7))
    with pytest.raises(UnfinishedPeriod):
        settlement.ensure_period_over(week, date(2026, 12, 7))


def test_an_empty_period_creates_nothing(session):
    factories.user(session, role="staff")
    result = settlement.run_period(session, settlement.month("2001-01"), None, "CNY")
    assert result.batch is None and not result.created
    assert "no orders to settle" in result.summary()
    assert session.scalar(select(func.count(SettlementBatch.id))) == 0


def test_run_settlement_command_prints_a_summary_and_is_idempotent(app, session, month):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["run-settlement", "--period", month.period.label])
    assert first.exit_code == 0, first.output
    assert "6 orders, 2 statements" in first.output and "¥3,409.15" in first.output
    assert f"waiting: {month.orders['X4'].number}" in first.output
    again = runner.invoke(args=["run-settlement", "--period", month.period.label])
    assert again.exit_code == 0 and "nothing new" in again.output
    assert session.scalar(select(func.count(SettlementBatch.id))) == 1
    bad = runner.invoke(args=["run-settlement", "--period", "2026-13"])
    assert bad.exit_code != 0 and "2026-11" in bad.output


def test_a_run_reports_its_progress(session, month):
    """run-settlement passes job.progress: a bar over the ledger reads and the statements."""
    seen = []

    def progress(items, label):
        items = list(items)
        seen.append((label, len(items)))
        return items

    result = settlement.run_period(session, month.period, month.a.staff, "CNY",
                                   progress=progress)
    assert result.created and result.batch.order_count == 6
    assert seen == [("reading the ledger", 1), ("statements", 2)]
