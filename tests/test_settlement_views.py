"""Settlement pages: staff run a period, read a batch and its statements, mark a statement
paid (with validation), download CSVs; providers read only their own statements; every staff
page is refused to visitors, enterprises and providers, changing nothing."""

import csv
import io

import order_support as osup
import pytest
import settlement_support as ss
from conftest import csrf_token, post_form
from sqlalchemy import func, select
from stripe_fixtures import localstripe  # noqa: F401

from orders import settlement
from orders.models import LedgerEntry, SettlementBatch, SettlementStatement


@pytest.fixture
def month(session, localstripe):  # noqa: F811
    return ss.build_month(session)


def _batch(session, month):
    batch = settlement.run_period(session, month.period, month.a.staff, "CNY").batch
    session.commit()
    return batch


def test_settling_the_current_month_needs_an_explicit_confirmation(client, session, month):
    """The month is not over: the run is refused with a clear message and a confirmation
    box, nothing is created; ticking it settles the month."""
    osup.login(client, month.a.staff)
    refused = post_form(client, "/staff/settlement/run",
                        {"kind": "month", "month": month.period.label})
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert f"{month.period.label} is not over yet" in html
    assert 'data-testid="confirm-unfinished"' in html
    assert session.scalar(select(func.count(SettlementBatch.id))) == 0
    confirmed = post_form(client, "/staff/settlement/run",
                          {"kind": "month", "month": month.period.label,
                           "confirm_unfinished": "y"})
    assert confirmed.status_code == 302
    assert session.scalar(select(func.count(SettlementBatch.id))) == 1


def test_staff_run_settlement_read_statements_and_download_csv(client, session, month):
    osup.login(client, month.a.staff)
    page = client.get("/staff/settlement")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "No settlement batches yet" in html and 'data-testid="run-settlement-form"' in html
    # The demo month is the current one: settling it needs the explicit confirmation.
    response = post_form(client, "/staff/settlement/run",
                         {"kind": "month", "month": month.period.label,
                          "confirm_unfinished": "y"})
    assert response.status_code == 302
    batch = session.scalar(select(SettlementBatch))
    assert response.headers["Location"].endswith(f"/staff/settlement/{batch.id}")
    detail = client.get(f"/staff/settlement/{batch.id}").get_data(as_text=True)
    assert "¥3,409.15" in detail and month.b.provider_org.name in detail
    assert 'data-testid="console-nav"' in detail
    # Running it again says so and creates nothing.
    again = post_form(client, "/staff/settlement/run", {"kind": "month",
                                                         "month": month.period.label,
                                                         "confirm_unfinished": "y"})
    assert again.status_code == 302
    assert "already settled" in client.get(again.headers["Location"]).get_data(as_text=True)
    assert session.scalar(select(func.count(SettlementBatch.id))) == 1

    statement = next(s for s in batch.statements if s.provider_org_id == month.a.provider_org.id)
    page = client.get(f"/staff/settlement/statements/{statement.id}").get_data(as_text=True)
    assert month.orders["A2"].number in page and "¥1,979.99" in page
    assert f'/staff/orders/{month.orders["A2"].id}' in page  # traceable to the order
    assert "Ledger entries behind these figures" in page
    download = client.get(f"/staff/settlement/statements/{statement.id}/export.csv")
    assert download.status_code == 200
    assert download.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in download.headers["Content-Disposition"]
    assert ".csv" in download.headers["Content-Disposition"]
    text = download.data.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[-1][0] == "TOTAL" and "1979.99" in rows[-1]
    whole = client.get(f"/staff/settlement/{batch.id}/export.csv")
    assert whole.status_code == 200 and "3409.15" in whole.data.decode("utf-8")


def test_mark_paid_needs_a_reference_then_pays(client, session, month):
    batch = _batch(session, month)
    statement = next(s for s in batch.statements if s.provider_org_id == month.a.provider_org.id)
    osup.login(client, month.a.staff)
    path = f"/staff/settlement/statements/{statement.id}/pay"
    refused = post_form(client, path, {"reference": "  "})
    assert refused.status_code == 400
    assert "Enter the bank transfer reference" in refused.get_data(as_text=True)
    bad = post_form(client, path, {"reference": "<b>x</b>"})
    assert bad.status_code == 400 and "4–64 characters" in bad.get_data(as_text=True)
    assert session.scalar(select(func.count()).where(LedgerEntry.kind == "payout")) == 0
    session.expire_all()
    assert session.get(SettlementStatement, statement.id).paid_at is None
    paid = post_form(client, path, {"reference": "ICBC-20261130-77"})
    assert paid.status_code == 302
    page = client.get(paid.headers["Location"]).get_data(as_text=True)
    assert "ICBC-20261130-77" in page and 'data-status="paid"' in page
    assert 'data-testid="mark-paid-form"' not in page
    session.expire_all()
    assert session.get(SettlementStatement, statement.id).payout_reference == "ICBC-20261130-77"
    again = post_form(client, path, {"reference": "ICBC-2"})
    assert again.status_code == 409 and "already" in again.get_data(as_text=True)


def test_voucher_report_page_and_csv(client, session, month):
    osup.login(client, month.a.staff)
    p2 = month.programmes["P2"]
    page = client.get(f"/staff/settlement/vouchers?programme={p2.id}&month={month.period.label}")
    assert page.status_code == 200 and month.orders["B1"].number in page.get_data(as_text=True)
    download = client.get(f"/staff/settlement/vouchers?programme={p2.id}"
                          f"&month={month.period.label}&format=csv")
    assert download.status_code == 200 and "attachment" in download.headers["Content-Disposition"]
    assert "66.66" in download.data.decode("utf-8")  # B1: the voucher share it kept
    assert client.get("/staff/settlement/vouchers?programme=999999&month=2026-01"
                      ).status_code == 404


STAFF_GETS = ["/staff/settlement", "/staff/settlement/{batch}",
              "/staff/settlement/{batch}/export.csv", "/staff/settlement/statements/{a}",
              "/staff/settlement/statements/{a}/export.csv", "/staff/reconciliation"]
STAFF_POSTS = ["/staff/settlement/run", "/staff/settlement/statements/{a}/pay",
               "/staff/settlement/statements/{a}/refresh"]


@pytest.mark.parametrize("who", ["visitor", "buyer", "provider"])
def test_staff_pages_are_refused_to_everyone_else(client, session, month, who):
    batch = _batch(session, month)
    a = next(s for s in batch.statements if s.provider_org_id == month.a.provider_org.id)
    ids = {"batch": batch.id, "a": a.id}
    if who != "visitor":
        osup.login(client, month.a.buyer if who == "buyer" else month.a.provider)
    for path in STAFF_GETS:
        response = client.get(path.format(**ids))
        if who == "visitor":
            assert response.status_code == 302 and "/login" in response.headers["Location"]
        else:
            assert response.status_code == 403, path
    token = csrf_token(client)
    for path in STAFF_POSTS:
        response = client.post(path.format(**ids), data={
            "csrf_token": token, "kind": "month", "month": month.period.label,
            "reference": "HACK-1"})
        assert response.status_code in ((302,) if who == "visitor" else (403,)), path
    assert session.scalar(select(func.count(SettlementBatch.id))) == 1
    assert session.scalar(select(func.count()).where(LedgerEntry.kind == "payout")) == 0
    session.expire_all()
    assert session.get(SettlementStatement, a.id).paid_at is None


def test_providers_see_only_their_own_statements(client, session, month):
    batch = _batch(session, month)
    a = next(s for s in batch.statements if s.provider_org_id == month.a.provider_org.id)
    b = next(s for s in batch.statements if s.provider_org_id == month.b.provider_org.id)
    osup.login(client, month.a.provider)
    assert "/provider/statements" in client.get("/provider").get_data(as_text=True)
    listing = client.get("/provider/statements").get_data(as_text=True)
    assert f"/provider/statements/{a.id}" in listing
    assert f"/provider/statements/{b.id}" not in listing
    own = client.get(f"/provider/statements/{a.id}")
    assert own.status_code == 200
    html = own.get_data(as_text=True)
    assert "¥1,979.99" in html and 'data-testid="mark-paid-form"' not in html
    assert f'/provider/orders/{month.orders["A1"].id}' in html
    csv_own = client.get(f"/provider/statements/{a.id}/export.csv")
    assert csv_own.status_code == 200 and "1979.99" in csv_own.data.decode("utf-8")
    assert client.get(f"/provider/statements/{b.id}").status_code == 404
    assert client.get(f"/provider/statements/{b.id}/export.csv").status_code == 404
    assert client.get("/provider/statements/999999").status_code == 404
    osup.logout(client)
    osup.login(client, month.a.buyer)
    assert client.get(f"/provider/statements/{a.id}").status_code == 403


def test_empty_provider_statements_page(client, session):
    p = osup.parties(session)
    session.commit()
    osup.login(client, p.provider)
    page = client.get("/provider/statements")
    assert page.status_code == 200 and "No statements yet" in page.get_data(as_text=True)


def test_csv_exports_are_streamed_in_chunks(client, session, month, monkeypatch):
    batch = _batch(session, month)
    monkeypatch.setattr(settlement, "CSV_CHUNK", 2)
    chunks = list(settlement.iter_batch_csv(session, batch))
    assert len(chunks) == 1 + 3 + 1  # header, six orders two at a time, totals
    assert "".join(chunks) == settlement.batch_csv(batch)
    osup.login(client, month.a.staff)
    for path in (f"/staff/settlement/{batch.id}/export.csv",
                 f"/staff/settlement/statements/{batch.statements[0].id}/export.csv",
                 f"/staff/settlement/vouchers?programme={month.programmes['P2'].id}"
                 f"&month={month.period.label}&format=csv"):
        response = client.get(path)
        assert response.status_code == 200 and response.is_streamed, path
        assert response.get_data(as_text=True).startswith("\ufeff")


def test_voucher_report_is_paged_on_screen_but_whole_in_the_csv(client, session, month,
                                                                 monkeypatch):
    from orders import services
    from orders.models import Voucher

    p1 = month.programmes["P1"]
    voucher = session.scalar(select(Voucher).where(Voucher.programme_id == p1.id))
    more = ss._paid(session, month.a, 50000, voucher=voucher)
    services.complete(session, more, month.a.buyer)
    session.commit()
    monkeypatch.setattr(settlement, "VOUCHER_PAGE_SIZE", 1)
    osup.login(client, month.a.staff)
    path = f"/staff/settlement/vouchers?programme={p1.id}&month={month.period.label}"
    first, second = (client.get(path).get_data(as_text=True),
                     client.get(path + "&page=2").get_data(as_text=True))
    numbers = (month.orders["A2"].number, more.number)
    assert first.count('data-testid="redemption-row"') == 1 == second.count(
        'data-testid="redemption-row"')
    assert {n for n in numbers if n in first} != {n for n in numbers if n in second}
    assert "Total · 2 orders" in first and "Total · 2 orders" in second  # the whole period
    assert 'aria-label="Pagination"' in first
    rows = list(csv.reader(io.StringIO(client.get(path + "&format=csv").get_data(
        as_text=True)[1:])))
    assert [row[5] for row in rows[1:-1]] == list(numbers) and rows[-1][5] == "2 orders"
