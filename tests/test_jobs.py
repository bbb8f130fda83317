"""CLI jobs (marketplace/jobs.py): one lock per job across processes, progress only on a
terminal, a summary line; and the jobs themselves survive being killed halfway: a re-run
ends exactly where one clean run would have."""

import subprocess
import sys
from datetime import timedelta

import factories
import order_support as osup
import pytest
from conftest import _wipe
from sqlalchemy import func, select
from stripe_fixtures import localstripe  # noqa: F401

from catalog.categories import seed_categories
from catalog.models import Favourite, SearchOutbox
from catalog.search import outbox as search_outbox
from catalog.search.index import indexed_ids
from catalog.search.worker import drain_outbox
from marketplace import jobs
from marketplace.config import ROOT
from marketplace.database import db, utcnow
from marketplace.models import EmailMessage, Notification
from orders import cart, checkout, ledger, timers
from orders.models import Order, OrderEvent, Payment


class Killed(BaseException):
    """Stands for the process dying (kill -9, OOM, a deploy): nothing catches it."""


def kill_on_call(monkeypatch, target, name: str, at: int):
    """Make ``target.name`` die on its ``at``-th call (after doing the real work before)."""
    real = getattr(target, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at:
            raise Killed(f"killed during call {at} of {name}")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapper)
    return calls


def fresh_database(app):
    """Empty the database again (as between tests) to build the twin scenario."""
    db.session.remove()
    _wipe(db.engine)
    with app.app_context():
        seed_categories(db.session)
        db.session.commit()


@pytest.fixture
def lock_dir(app, tmp_path, monkeypatch):
    path = tmp_path / "locks"
    monkeypatch.setitem(app.config, "JOB_LOCK_DIR", str(path))
    return path


# ------------------------------------------------------------------ order timers

def unpaid_orders(session, count: int = 4) -> list[int]:
    """Bank-transfer orders past their payment window (run-order-timers cancels them)."""
    p = osup.parties(session)
    ids = []
    for n in range(count):
        product = factories.product(session, p.provider_org, title=f"Service {n}",
                                    prices=(100_000 * (n + 1),))
        cart.add(session, p.buyer, product.packages[0].id)
        order = checkout.place_orders(session, p.buyer, checkout.CheckoutInput(
            token=checkout.new_token(), payment_method="bank_transfer")).checkout.orders[0]
        session.commit()
        ids.append(order.id)
    return ids


def order_state(session, ids) -> list:
    """What a user or an accountant would notice, order by order (ids differ between runs)."""
    session.expire_all()
    state = []
    for order_id in ids:
        order = session.get(Order, order_id)
        events = session.scalars(select(OrderEvent.name).where(OrderEvent.order_id == order_id)
                                 .order_by(OrderEvent.id)).all()
        payments = session.scalars(select(Payment.status).where(Payment.order_id == order_id)
                                   .order_by(Payment.id)).all()
        state.append((order.title, order.status, list(events), list(payments),
                      sorted(ledger.balances(session, order_id).items())))
    notices = session.scalar(select(func.count()).select_from(Notification))
    emails = session.scalar(select(func.count()).select_from(EmailMessage))
    return [state, notices, emails]


def test_order_timers_killed_halfway_then_rerun_equal_one_clean_run(app, session, monkeypatch):
    from orders import payments

    ids = unpaid_orders(session)
    now = session.get(Order, ids[-1]).payment_due_at + timedelta(minutes=1)
    # Die in the middle of the batch: the 2nd order's cancellation is committed, its money
    # (the payment attempt and the ledger) not yet.
    kill_on_call(monkeypatch, payments, "sync_money", at=2)
    with pytest.raises(Killed):
        timers.run(session, now)
    session.rollback()  # what the database does when the process is gone
    monkeypatch.undo()
    statuses = [session.get(Order, i).status for i in ids]
    assert statuses == ["cancelled", "cancelled", "pending_payment", "pending_payment"]
    rerun = timers.run(session, now)
    assert rerun.errors == [] and len(rerun.cancelled) == 2 and len(rerun.repaired) == 1
    assert timers.run(session, now).cancelled == []  # and again: nothing new
    after_kill = order_state(session, ids)

    fresh_database(app)
    twin = unpaid_orders(session)
    clean = timers.run(session, now)
    assert clean.errors == [] and len(clean.cancelled) == 4
    assert order_state(session, twin) == after_kill


def test_run_order_timers_command_prints_one_summary_line(app, session, lock_dir):
    ids = unpaid_orders(session, 2)
    due = session.get(Order, ids[-1]).payment_due_at + timedelta(minutes=1)
    result = app.test_cli_runner().invoke(args=["run-order-timers", "--now", due.isoformat()])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("run-order-timers: 0 declined") and "2 cancelled (unpaid)" in lines[0]
    assert lines[0].endswith("s)")
    assert "\r" not in result.output and "#" not in result.output  # no progress bar off a TTY


# ------------------------------------------------------------------ search outbox drain

@pytest.fixture
def index_dir(app, tmp_path, monkeypatch):
    path = tmp_path / "search-index"
    monkeypatch.setitem(app.config, "SEARCH_INDEX_DIR", str(path))
    return path


def outbox_scenario(session) -> None:
    """Five listings changed: three visible, two withdrawn that a buyer had collected."""
    provider = factories.provider(session, name="Gusu Testing Lab")
    buyer = factories.user(session, factories.enterprise(session))
    for n in range(5):
        status = "suspended" if n in (1, 3) else "published"
        product = factories.product(session, provider, title=f"Calibration service {n}",
                                    status=status, category_slug="calibration")
        session.add(Favourite(user_id=buyer.id, product_id=product.id))
        search_outbox.enqueue(session, product.id, status)
    session.commit()


def search_state(session, index_dir) -> list:
    from catalog.models import Product

    titles = dict(session.execute(select(Product.id, Product.title)).all())
    notices = session.scalars(select(Notification.title).order_by(Notification.title)).all()
    return [sorted(titles[i] for i in indexed_ids(index_dir)), list(notices),
            session.scalar(select(func.count()).select_from(SearchOutbox))]


def test_outbox_drain_killed_halfway_then_rerun_equals_one_clean_run(app, session, index_dir,
                                                                     monkeypatch):
    from catalog import favourites

    outbox_scenario(session)
    # Batches of two; die after the second batch is in the index but before its outbox rows
    # are deleted and its favourite notes committed.
    kill_on_call(monkeypatch, favourites, "notify_favourite_changes", at=4)
    with pytest.raises(Killed):
        drain_outbox(session, index_dir, batch_size=2)
    session.rollback()
    monkeypatch.undo()
    assert session.scalar(select(func.count()).select_from(SearchOutbox)) == 3
    drain_outbox(session, index_dir, batch_size=2)
    assert drain_outbox(session, index_dir, batch_size=2).rows == 0
    after_kill = search_state(session, index_dir)
    assert after_kill[0] == ["Calibration service 0", "Calibration service 2",
                             "Calibration service 4"]
    notes = after_kill[1]
    assert len(notes) == 5 and len(set(notes)) == 5  # one note per favourite, never two
    assert sum("no longer available" in note for note in notes) == 2

    fresh_database(app)
    clean_dir = index_dir.parent / "clean-index"
    outbox_scenario(session)
    drain_outbox(session, clean_dir, batch_size=2)
    assert search_state(session, clean_dir) == after_kill


def test_drain_and_reindex_commands_print_summary_lines(app, session, index_dir, lock_dir):
    outbox_scenario(session)
    runner = app.test_cli_runner()
    drained = runner.invoke(args=["drain-outbox"])
    assert drained.exit_code == 0, drained.output
    assert drained.output.startswith("drain-outbox: Applied 5 outbox rows: 3 listings indexed")
    rebuilt = runner.invoke(args=["reindex"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert rebuilt.output.startswith("reindex: Indexed 3 listings. (")


# ------------------------------------------------------------------ one run at a time

def test_a_second_run_while_one_holds_the_lock_refuses_cleanly(app, session, lock_dir):
    ids = unpaid_orders(session, 1)
    due = session.get(Order, ids[0]).payment_due_at + timedelta(minutes=1)
    runner = app.test_cli_runner()
    with jobs.job_lock("run-order-timers", db.engine, lock_dir) as held:
        assert held
        result = runner.invoke(args=["run-order-timers", "--now", due.isoformat()])
        assert result.exit_code == 0, result.output
        assert "run-order-timers: another run is in progress" in result.output
        session.expire_all()
        assert session.get(Order, ids[0]).status == "pending_payment"  # nothing done
        # Other jobs have locks of their own.
        assert runner.invoke(args=["drain-outbox"]).output.startswith("drain-outbox: Applied")
    result = runner.invoke(args=["run-order-timers", "--now", due.isoformat()])
    assert "1 cancelled (unpaid)" in result.output
    session.expire_all()
    assert session.get(Order, ids[0]).status == "cancelled"


def test_the_lock_holds_across_processes(app, lock_dir, database_url):
    probe = (
        "import sys; from sqlalchemy import create_engine; from marketplace import jobs\n"
        "engine = create_engine(sys.argv[1])\n"
        "with jobs.job_lock('run-settlement', engine, sys.argv[2]) as held: print(held)\n"
    )

    def other_process() -> str:
        done = subprocess.run([sys.executable, "-c", probe, database_url, str(lock_dir)],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    with jobs.job_lock("run-settlement", db.engine, lock_dir) as held:
        assert held
        assert other_process() == "False"
    assert other_process() == "True"  # released when the holder finished


def test_a_failing_job_reports_and_releases_its_lock(app, lock_dir):
    import click

    def broken(job):
        raise RuntimeError("disk full")

    with app.app_context(), pytest.raises(RuntimeError):
        jobs.run("run-settlement", broken)
    with app.app_context(), jobs.job_lock("run-settlement", db.engine, lock_dir) as held:
        assert held

    def with_errors(job):
        job.fail()
        return "1 error"

    with app.app_context(), pytest.raises(click.ClickException) as failed:
        jobs.run("run-settlement", with_errors)
    assert failed.value.exit_code == 1 and failed.value.message.startswith("run-settlement: 1 error")


def test_progress_bar_only_on_a_terminal(app, capsys, lock_dir):
    quiet = jobs.Job("reindex", interactive=False)
    assert list(quiet.progress(range(3), "listings")) == [0, 1, 2]
    with quiet.bar(10, "listings") as advance:
        advance(10)
    assert capsys.readouterr().err == ""
    loud = jobs.Job("reindex", interactive=True)
    assert list(loud.progress(range(3), "listings")) == [0, 1, 2]
    assert "reindex: listings" in capsys.readouterr().err


# ------------------------------------------------------------------ settlement

def settlement_state(session) -> list:
    from orders.models import SettlementBatch, SettlementItem, SettlementStatement

    session.expire_all()
    batches = session.scalars(select(SettlementBatch).order_by(SettlementBatch.id)).all()
    statements = sorted(
        (s.order_count, *(getattr(s, f) for f in settlement_figures()))
        for s in session.scalars(select(SettlementStatement)))
    return [[(b.sequence, b.order_count) for b in batches], statements,
            session.scalar(select(func.count()).select_from(SettlementItem))]


def settlement_figures():
    from orders.settlement import FIGURES

    return FIGURES


def test_settlement_killed_halfway_then_rerun_equals_one_clean_run(app, session, localstripe,  # noqa: F811
                                                                   lock_dir, monkeypatch):
    import settlement_support as ss

    from orders import settlement

    month = ss.build_month(session)
    runner = app.test_cli_runner()
    args = ["run-settlement", "--period", month.period.label]
    # Die while writing the batch: statement lines of the first institution are added, the
    # second institution's not yet.
    kill_on_call(monkeypatch, settlement.Figures, "add", at=4)
    with pytest.raises(Killed):
        runner.invoke(args=args)
    monkeypatch.undo()
    session.rollback()  # what the database does when the process is gone
    assert settlement_state(session) == [[], [], 0]  # the batch is one transaction: nothing
    rerun = runner.invoke(args=args)
    assert rerun.exit_code == 0, rerun.output
    assert "run-settlement: " in rerun.output and "6 orders, 2 statements" in rerun.output
    assert "nothing new" in runner.invoke(args=args).output
    after_kill = settlement_state(session)

    fresh_database(app)
    ss.build_month(session)
    assert runner.invoke(args=args).exit_code == 0
    assert settlement_state(session) == after_kill


# ------------------------------------------------------------------ credibility

def credibility_scenario(session) -> None:
    p = osup.parties(session)
    for n in range(3):
        factories.product(session, p.provider_org, title=f"Listing {n}")
    factories.provider(session)
    osup.order(session, p, status="completed", completed_at=utcnow() - timedelta(days=3))
    session.commit()


def credibility_state(session) -> list:
    from marketplace.models import Organisation
    from providers.models import CredibilitySnapshot

    session.expire_all()
    scores = sorted(session.execute(select(Organisation.kind, Organisation.credibility_score,
                                           Organisation.credibility_level)).all())
    return [[tuple(row) for row in scores],
            session.scalar(select(func.count()).select_from(CredibilitySnapshot)),
            session.scalar(select(func.count()).select_from(SearchOutbox))]


def test_credibility_recompute_killed_halfway_then_rerun_equals_one_clean_run(
        app, session, lock_dir, monkeypatch):
    from providers import credibility

    credibility_scenario(session)
    runner = app.test_cli_runner()
    args = ["recompute-credibility", "--now", "2026-11-20T02:00"]
    kill_on_call(monkeypatch, credibility.store, "score", at=3)  # the third organisation
    with pytest.raises(Killed):
        runner.invoke(args=args)
    monkeypatch.undo()
    session.rollback()
    rerun = runner.invoke(args=args)
    assert rerun.exit_code == 0, rerun.output
    assert rerun.output.startswith("recompute-credibility: ")
    after_kill = credibility_state(session)
    assert all(score is not None for _kind, score, _level in after_kill[0])
    assert " 0 changed" in runner.invoke(args=args).output  # and again: nothing new

    fresh_database(app)
    credibility_scenario(session)
    assert runner.invoke(args=args).exit_code == 0
    assert credibility_state(session) == after_kill


# ------------------------------------------------------------------ console figures

def test_rebuild_console_figures_runs_as_a_job(app, session, lock_dir):
    osup.order(session, osup.parties(session), status="paid")
    session.commit()
    runner = app.test_cli_runner()
    with jobs.job_lock("rebuild-console-figures", db.engine, lock_dir) as held:
        assert held
        result = runner.invoke(args=["rebuild-console-figures"])
        assert result.exit_code == 0, result.output
        assert "rebuild-console-figures: another run is in progress" in result.output
    result = runner.invoke(args=["rebuild-console-figures"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rebuild-console-figures: Rebuilt the console figures: ")
    assert "1 orders counted" in lines[0] and lines[0].endswith("s)")
