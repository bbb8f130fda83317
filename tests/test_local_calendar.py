"""Days and months are Beijing days and months: settlement periods and the dashboard's daily
figures cut at local midnight, not at UTC midnight."""

from datetime import UTC, datetime, timedelta

import order_support as osup

from marketplace import console_service
from orders import figures, settlement

# 07:30 on 1 December 2026 in Suzhou is 23:30 on 30 November in UTC.
DEC_1_0730_BEIJING = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)


def test_an_order_completed_early_on_the_first_belongs_to_that_local_month(session):
    p = osup.parties(session)
    order = osup.order(session, p, "completed", completed_at=DEC_1_0730_BEIJING)
    december = settlement.candidates(session, settlement.month("2026-12"), "CNY")
    november = settlement.candidates(session, settlement.month("2026-11"), "CNY")
    assert [o.id for o in december] == [order.id]
    assert november == []


def test_the_last_evening_of_the_month_still_belongs_to_it(session):
    p = osup.parties(session)
    # 23:59 on 30 November in Suzhou is 15:59 UTC the same day.
    order = osup.order(session, p, "completed",
                       completed_at=datetime(2026, 11, 30, 15, 59, tzinfo=UTC))
    assert [o.id for o in settlement.candidates(session, settlement.month("2026-11"), "CNY")] \
        == [order.id]


def test_dashboard_days_follow_beijing_midnight(session):
    p = osup.parties(session)
    osup.order(session, p, created_at=DEC_1_0730_BEIJING)
    osup.order(session, p, created_at=DEC_1_0730_BEIJING - timedelta(hours=8))  # 23:30 Nov 30
    session.flush()
    placed, _gmv = figures.daily(session, datetime(2026, 11, 29).date(),
                                 datetime(2026, 12, 2).date(), "CNY")
    assert placed == {datetime(2026, 12, 1).date(): 1, datetime(2026, 11, 30).date(): 1}
    series = console_service.time_series(session, "30d", DEC_1_0730_BEIJING, "CNY")
    assert series.labels[-1] == "2026-12-01"
    assert series.orders[-1] == 1 and series.orders[-2] == 1


def test_rebuilt_figures_bucket_by_local_day_too(session):
    p = osup.parties(session)
    osup.order(session, p, created_at=DEC_1_0730_BEIJING)
    session.flush()
    figures.rebuild(session)
    placed, _gmv = figures.daily(session, datetime(2026, 11, 29).date(),
                                 datetime(2026, 12, 2).date(), "CNY")
    assert placed == {datetime(2026, 12, 1).date(): 1}
