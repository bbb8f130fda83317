"""Service-level status of open orders (DESIGN.md §5): on track, at risk or overdue.

Pure functions taking ``now``, so a page, a job and a test with a frozen clock agree:

- the *deadline* of an order is its acceptance deadline (``accept_by``) while it is paid and
  waiting for the institution, and its due date (``due_at``) while the work is accepted or in
  progress; other open states (awaiting payment, delivered, in dispute) have no SLA clock;
- **overdue**: ``now`` is past the deadline (exactly at the deadline is not yet overdue);
- **at risk**: the deadline is within the warning window (``SLA_WARNING_DAYS``, inclusive)
  and progress is behind plan, i.e. the percent done (latest progress update or milestones
  reached, whichever is higher) is below the share of the time elapsed between the start
  (``accepted_at``, else ``paid_at``) and the deadline; exactly on plan is on track;
- otherwise **on track**.

``sla_case()`` is the same classification as an SQL expression, so lists filter, count and
sort by SLA in the database. Filters on one status use only ``status`` and the deadline
column, so they run on a (status, due_at) / (status, accept_by) index; the progress
sub-queries are evaluated only for the orders inside the warning window.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import BigInteger, and_, case, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from orders import states
from orders.models import Milestone, Order, ProgressUpdate

SLA_CODES = ("overdue", "at_risk", "on_track")
SLA_LABELS = {
    "overdue": (_l("Overdue"), "danger", "bi-exclamation-octagon"),
    "at_risk": (_l("At risk"), "warning", "bi-exclamation-triangle"),
    "on_track": (_l("On track"), "success", "bi-check-circle"),
}
DEFAULT_WARNING_DAYS = 3
# Status -> the column holding its deadline. Only these states run an SLA clock.
DEADLINE_COLUMN = states.DEADLINE_COLUMN
CLOCKED_STATUSES = states.CLOCKED
ACCEPT_STATUSES = states.ACCEPT_CLOCKED
WORK_STATUSES = states.WORK_CLOCKED
_NO_CLOCK_REASONS = states.WAITING_REASONS


@dataclass(frozen=True)
class SlaStatus:
    code: str  # overdue, at_risk, on_track
    reason: str  # "due in 2 days, 30% done, 80% expected"
    deadline: datetime | None = None
    done: int | None = None  # percent done
    expected: int | None = None  # percent expected by now (time elapsed), rounded down

    @property
    def clocked(self) -> bool:
        """False for open orders without a running deadline (awaiting payment, delivered,
        in dispute, no due date): they count as on track but are shown as "No deadline"."""
        return self.deadline is not None

    @property
    def label(self) -> str:
        return str(SLA_LABELS[self.code][0] if self.clocked else _("No deadline"))

    @property
    def badge(self) -> str:
        return SLA_LABELS[self.code][1] if self.clocked else "secondary"

    @property
    def icon(self) -> str:
        return SLA_LABELS[self.code][2] if self.clocked else "bi-dash-circle"


def warning_window(days: int | None = None) -> timedelta:
    return timedelta(days=DEFAULT_WARNING_DAYS if days is None else max(0, int(days)))


def deadline_field(order: Order) -> str | None:
    return DEADLINE_COLUMN.get(order.status)


def deadline(order: Order) -> datetime | None:
    name = deadline_field(order)
    return getattr(order, name) if name else None


def start(order: Order) -> datetime | None:
    return order.accepted_at or order.paid_at


def _span(delta: timedelta) -> str:
    """'2 days', '1 day 23 hours', '5 hours 12 minutes', '1 second': at most two units,
    rounded down, for reasons."""
    seconds = int(abs(delta.total_seconds()))
    parts: list[str] = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(_UNITS[unit](n))
        if parts and (len(parts) == 2 or not n or unit == "second"):
            break  # the largest unit and the one right below it, if not zero
    return " ".join(parts) or _UNITS["second"](0)


_UNITS = {
    "day": lambda n: ngettext("%(num)d day", "%(num)d days", n),
    "hour": lambda n: ngettext("%(num)d hour", "%(num)d hours", n),
    "minute": lambda n: ngettext("%(num)d minute", "%(num)d minutes", n),
    "second": lambda n: ngettext("%(num)d second", "%(num)d seconds", n),
}


def expected_percent(started: datetime | None, due: datetime, now: datetime) -> float:
    """Share of the time between start and deadline that has elapsed, 0–100."""
    if started is None or due <= started:
        return 100.0 if now >= due else 0.0
    share = (now - started).total_seconds() / (due - started).total_seconds() * 100
    return min(100.0, max(0.0, share))


def classify(order: Order, now: datetime, warning_days: int | None = None,
             done: int | None = None) -> SlaStatus:
    """The SLA status of ``order`` at ``now``. ``done`` overrides the percent done (the list
    passes the value it computed in SQL, so no per-row queries)."""
    if order.status not in CLOCKED_STATUSES:
        reason = _NO_CLOCK_REASONS.get(order.status)
        return SlaStatus("on_track", str(reason) if reason else _("no SLA clock"))
    due = deadline(order)
    accepting = order.status in ACCEPT_STATUSES
    if due is None:
        return SlaStatus("on_track", _("no due date set"))
    done = (0 if order.status in ACCEPT_STATUSES else order.progress_percent) \
        if done is None else done
    expected = expected_percent(start(order), due, now)
    figures = _("%(done)d%% done, %(expected)d%% expected", done=done,
                expected=round(expected))
    if accepting:
        figures = _("not yet accepted")
    if now > due:
        when = (_("acceptance due %(span)s ago", span=_span(now - due)) if accepting
                else _("due %(span)s ago", span=_span(now - due)))
        return SlaStatus("overdue", f"{when}, {figures}", due, done, round(expected))
    remaining = due - now
    if not remaining:
        when = _("acceptance due now") if accepting else _("due now")
    else:
        when = (_("acceptance due in %(span)s", span=_span(remaining)) if accepting
                else _("due in %(span)s", span=_span(remaining)))
    if remaining <= warning_window(warning_days) and done < expected:
        return SlaStatus("at_risk", f"{when}, {figures}", due, done, round(expected))
    return SlaStatus("on_track", f"{when}, {figures}", due, done, round(expected))


# --------------------------------------------------------------------------- SQL

class epoch(FunctionElement):
    """Whole seconds since 1970 of a UTC datetime column, on SQLite and PostgreSQL."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch)
def _epoch_default(element, compiler, **kw):
    inner = compiler.process(element.clauses, **kw)
    return f"CAST(ROUND(EXTRACT(EPOCH FROM {inner})) AS BIGINT)"


@compiles(epoch, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    # Whole seconds, so "exactly on plan" compares integers on both backends.
    inner = compiler.process(element.clauses, **kw)
    return f"CAST(ROUND((julianday({inner}) - 2440587.5) * 86400.0) AS INTEGER)"


def deadline_expr():
    return case((Order.status.in_(ACCEPT_STATUSES), Order.accept_by), else_=Order.due_at)


def done_expr():
    """Percent done in SQL: the higher of the best progress update and milestones reached
    (the same rule as ``Order.progress_percent`` for orders still being worked on)."""
    progress = func.coalesce(select(func.max(ProgressUpdate.percent))
                             .where(ProgressUpdate.order_id == Order.id)
                             .correlate(Order).scalar_subquery(), 0)
    milestones = func.coalesce(select(func.sum(Milestone.share_bp))
                               .where(Milestone.order_id == Order.id,
                                      Milestone.status.in_(states.MILESTONE_REACHED))
                               .correlate(Order).scalar_subquery(), 0) // 100
    work = case((progress >= milestones, progress), else_=milestones)
    return case((Order.status.in_(ACCEPT_STATUSES), literal(0)), else_=work)


# Each branch tests IS NOT NULL first, so an order without a deadline is FALSE (never NULL)
# and "on track" (NOT overdue AND NOT at risk) includes it.
def _overdue(now: datetime):
    return or_(and_(Order.status.in_(ACCEPT_STATUSES), Order.accept_by.is_not(None),
                    Order.accept_by < now),
               and_(Order.status.in_(WORK_STATUSES), Order.due_at.is_not(None),
                    Order.due_at < now))


def _in_window(now: datetime, window: timedelta):
    edge = now + window
    return or_(and_(Order.status.in_(ACCEPT_STATUSES), Order.accept_by.is_not(None),
                    Order.accept_by >= now, Order.accept_by <= edge),
               and_(Order.status.in_(WORK_STATUSES), Order.due_at.is_not(None),
                    Order.due_at >= now, Order.due_at <= edge))


def sla_condition(code: str, now: datetime, warning_days: int | None = None):
    """WHERE clause selecting open orders with SLA status ``code`` at ``now``."""
    window = warning_window(warning_days)
    overdue = _overdue(now)
    at_risk = and_(_in_window(now, window), _behind_plan_bool(now))
    if code == "overdue":
        return overdue
    if code == "at_risk":
        return at_risk
    if code == "on_track":
        return and_(~overdue, ~at_risk)
    raise ValueError(code)


def _behind_plan_bool(now: datetime):
    """The behind-plan test as a plain boolean expression (portable across backends)."""
    due = epoch(deadline_expr())
    started_col = func.coalesce(Order.accepted_at, Order.paid_at)
    started = epoch(started_col)
    done = done_expr()
    return or_(
        and_(started_col.is_(None), done < 100),
        and_(started_col.is_not(None), due <= started, done < 100),
        and_(started_col.is_not(None), due > started,
             done * (due - started) < 100 * (literal(round(now.timestamp())) - started)),
    )


def behind_plan(now: datetime):
    """Progress behind plan at ``now`` (for orders inside the warning window)."""
    return _behind_plan_bool(now)


def sla_case(now: datetime, warning_days: int | None = None):
    """CASE expression giving 0 (overdue), 1 (at risk) or 2 (on track): sorts worst first."""
    window = warning_window(warning_days)
    return case((_overdue(now), 0),
                (and_(_in_window(now, window), _behind_plan_bool(now)), 1),
                else_=2)


SLA_RANK = {0: "overdue", 1: "at_risk", 2: "on_track"}
