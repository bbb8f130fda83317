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

Milestones (DESIGN.md §5, issue 13) count too, for orders whose work is under way. Their due
dates are local (Beijing) calendar days, compared with ``local_today(now)``:

- a milestone still awaiting the institution's submission
  (``states.MILESTONE_AWAITING_SUBMISSION``) after its due day has ended makes the order
  **overdue**, whatever the order's own due date;
- one awaiting submission and due within the warning window (today up to today + the
  window's days) makes the order **at risk** when the percent done is below the milestone
  plan at its due day (the cumulative share of the milestones due on or before that day);
- the milestone plan *by now* (cumulative share of the milestones whose due day has ended)
  joins the time-elapsed share in "behind plan" for the order's own warning window.

``sla_case()`` is the same classification as an SQL expression, so lists filter, count and
sort by SLA in the database. Filters on one status use only ``status`` and the deadline
column, so they run on a (status, due_at) / (status, accept_by) index; the progress
sub-queries are evaluated only for the orders inside the warning window.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from sqlalchemy import BigInteger, and_, case, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.expression import FunctionElement

from marketplace.i18n import format_date, local_today
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
AWAITING_SUBMISSION = states.MILESTONE_AWAITING_SUBMISSION
MILESTONE_REACHED = states.MILESTONE_REACHED  # count in the percent done (progress_percent, done_expr)


@dataclass(frozen=True)
class SlaStatus:
    code: str  # overdue, at_risk, on_track
    reason: str  # "due in 2 days, 30% done, 80% expected"
    deadline: datetime | None = None
    done: int | None = None  # percent done
    expected: int | None = None  # percent expected by now (time elapsed), rounded down
    # The milestone behind an "overdue" / "at risk" caused by a milestone (None otherwise).
    milestone: Milestone | None = None

    @property
    def clocked(self) -> bool:
        """False for open orders without a running deadline (awaiting payment, delivered,
        in dispute, no due date): they count as on track but are shown as "No deadline"."""
        return self.deadline is not None or self.milestone is not None

    @property
    def milestone_overdue(self) -> bool:
        return self.code == "overdue" and self.milestone is not None

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


@dataclass(frozen=True)
class MilestonePlan:
    """Where an order stands against its milestones on the local day ``today``."""

    overdue: Milestone | None  # the earliest past its due day, still awaiting submission
    at_risk: Milestone | None  # the earliest due within the window with progress behind it
    at_risk_planned: int  # basis points planned by the at-risk milestone's due day
    planned_bp: int  # basis points of the milestones whose due day has ended


def milestone_horizon(now: datetime, warning_days: int | None = None) -> tuple[date, date]:
    """(today, last day of the warning window) on the platform's calendar."""
    today = local_today(now)
    return today, today + timedelta(days=warning_window(warning_days).days)


def milestone_plan(milestones, done: int, now: datetime,
                   warning_days: int | None = None) -> MilestonePlan:
    """The milestone rules of the module docstring, in Python (``milestones`` of one order,
    ``done`` its percent done)."""
    today, horizon = milestone_horizon(now, warning_days)
    dated = sorted((m for m in milestones if m.due_date is not None),
                   key=lambda m: (m.due_date, m.position, m.id or 0))
    waiting = [m for m in dated if m.status in AWAITING_SUBMISSION]
    overdue = next((m for m in waiting if m.due_date < today), None)
    at_risk, at_risk_planned = None, 0
    for m in waiting:
        if today <= m.due_date <= horizon:
            planned = sum(other.share_bp for other in dated if other.due_date <= m.due_date)
            if done * 100 < planned:
                at_risk, at_risk_planned = m, planned
                break
    planned_bp = sum(m.share_bp for m in dated if m.due_date < today)
    return MilestonePlan(overdue, at_risk, at_risk_planned, planned_bp)


def milestone_deviations(order: Order, now: datetime, warning_days: int | None = None
                         ) -> list[tuple[str, Milestone, int]]:
    """Every deviating milestone of ``order`` as (kind, milestone, basis points planned by its
    due day): "overdue" for each one past its due day without a submission, "at_risk" for
    each one awaiting submission due within the window with the percent done below the plan
    at its day. Nothing unless the work is under way (the deviation alerts, orders/alerts.py)."""
    if order.status not in WORK_STATUSES:
        return []
    done = order.progress_percent
    today, horizon = milestone_horizon(now, warning_days)
    dated = [m for m in order.milestones if m.due_date is not None]
    found = []
    for m in sorted(dated, key=lambda m: (m.due_date, m.position, m.id)):
        if m.status not in AWAITING_SUBMISSION:
            continue
        planned = sum(other.share_bp for other in dated if other.due_date <= m.due_date)
        if m.due_date < today:
            found.append(("overdue", m, planned))
        elif m.due_date <= horizon and done * 100 < planned:
            found.append(("at_risk", m, planned))
    return found


def overdue_milestones(order: Order, now: datetime) -> list[Milestone]:
    """The order's milestones past their due day without a submission (the order page marks
    them); none unless the work is under way."""
    if order.status not in WORK_STATUSES:
        return []
    today = local_today(now)
    return [m for m in order.milestones if m.status in AWAITING_SUBMISSION
            and m.due_date is not None and m.due_date < today]


def _milestone_reason(plan: MilestonePlan, done: int, today: date) -> str:
    if plan.overdue is not None:
        m = plan.overdue
        return _("milestone “%(title)s” was due %(date)s (%(span)s ago) and is not submitted, "
                 "%(done)d%% done", title=m.title, date=format_date(m.due_date),
                 span=_UNITS["day"]((today - m.due_date).days), done=done)
    m = plan.at_risk
    when = (_("milestone “%(title)s” due today", title=m.title) if m.due_date == today else
            _("milestone “%(title)s” due in %(span)s", title=m.title,
              span=_UNITS["day"]((m.due_date - today).days)))
    return _("%(when)s, %(done)d%% done, %(planned)d%% planned by then", when=when, done=done,
             planned=plan.at_risk_planned // 100)


def classify(order: Order, now: datetime, warning_days: int | None = None,
             done: int | None = None) -> SlaStatus:
    """The SLA status of ``order`` at ``now``. ``done`` overrides the percent done (the list
    passes the value it computed in SQL, so no per-row queries)."""
    if order.status not in CLOCKED_STATUSES:
        reason = _NO_CLOCK_REASONS.get(order.status)
        return SlaStatus("on_track", str(reason) if reason else _("no SLA clock"))
    due = deadline(order)
    accepting = order.status in ACCEPT_STATUSES
    done = (0 if order.status in ACCEPT_STATUSES else order.progress_percent) \
        if done is None else done
    plan = None if accepting else milestone_plan(order.milestones, done, now, warning_days)
    today = local_today(now)
    if due is None:
        if plan is not None and (plan.overdue or plan.at_risk):
            milestone = plan.overdue or plan.at_risk
            return SlaStatus("overdue" if plan.overdue else "at_risk",
                             _milestone_reason(plan, done, today), None, done, None, milestone)
        return SlaStatus("on_track", _("no due date set"))
    expected = expected_percent(start(order), due, now)
    figures = _("%(done)d%% done, %(expected)d%% expected", done=done,
                expected=round(expected))
    if accepting:
        figures = _("not yet accepted")
    if now > due:
        when = (_("acceptance due %(span)s ago", span=_span(now - due)) if accepting
                else _("due %(span)s ago", span=_span(now - due)))
        return SlaStatus("overdue", _("%(when)s, %(figures)s", when=when, figures=figures), due, done, round(expected),
                         plan.overdue if plan is not None else None)
    if plan is not None and plan.overdue is not None:
        return SlaStatus("overdue", _milestone_reason(plan, done, today), due, done,
                         round(expected), plan.overdue)
    remaining = due - now
    if not remaining:
        when = _("acceptance due now") if accepting else _("due now")
    else:
        when = (_("acceptance due in %(span)s", span=_span(remaining)) if accepting
                else _("due in %(span)s", span=_span(remaining)))
    behind_milestones = plan is not None and done * 100 < plan.planned_bp
    if remaining <= warning_window(warning_days) and (done < expected or behind_milestones):
        if behind_milestones and not done < expected:
            figures = _("%(done)d%% done, %(planned)d%% planned by the milestones due so far",
                        done=done, planned=plan.planned_bp // 100)
        return SlaStatus("at_risk", _("%(when)s, %(figures)s", when=when, figures=figures), due, done, round(expected))
    if plan is not None and plan.at_risk is not None:
        return SlaStatus("at_risk", _milestone_reason(plan, done, today), due, done,
                         round(expected), plan.at_risk)
    return SlaStatus("on_track", _("%(when)s, %(figures)s", when=when, figures=figures), due, done, round(expected))


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


def _sent_back_updates(order_id):
    """The progress updates of submissions the buyer sent back (they no longer count)."""
    sent_back = aliased(Milestone)
    return (select(sent_back.submission_update_id)
            .where(sent_back.order_id == order_id,
                   sent_back.status == states.MILESTONE_SENT_BACK,
                   sent_back.submission_update_id.is_not(None)))


def _work_done(order_id):
    """Percent done of the order ``order_id`` (a column) while its work is under way: the
    higher of the best progress update (not one a sent-back submission reported) and the
    milestones reached."""
    progress = func.coalesce(select(func.max(ProgressUpdate.percent))
                             .where(ProgressUpdate.order_id == order_id,
                                    ProgressUpdate.id.not_in(_sent_back_updates(order_id)))
                             .scalar_subquery(), 0)
    reached = aliased(Milestone)
    milestones = func.coalesce(select(func.sum(reached.share_bp))
                               .where(reached.order_id == order_id,
                                      reached.status.in_(MILESTONE_REACHED))
                               .scalar_subquery(), 0) // 100
    return case((progress >= milestones, progress), else_=milestones)


def done_expr():
    """Percent done in SQL: the higher of the best progress update and milestones reached
    (the same rule as ``Order.progress_percent`` for orders still being worked on)."""
    progress = func.coalesce(select(func.max(ProgressUpdate.percent))
                             .where(ProgressUpdate.order_id == Order.id,
                                    ProgressUpdate.id.not_in(_sent_back_updates(Order.id)))
                             .correlate(Order).scalar_subquery(), 0)
    milestones = func.coalesce(select(func.sum(Milestone.share_bp))
                               .where(Milestone.order_id == Order.id,
                                      Milestone.status.in_(MILESTONE_REACHED))
                               .correlate(Order).scalar_subquery(), 0) // 100
    work = case((progress >= milestones, progress), else_=milestones)
    return case((Order.status.in_(ACCEPT_STATUSES), literal(0)), else_=work)


# Milestone conditions are ``Order.id IN (milestones ...)``: one read of the milestone
# (status, due_date) index, not a sub-plan per order.
def overdue_milestone_orders(now: datetime):
    """SELECT of the ids of orders with a milestone past its due day without a submission
    (whatever the order's status)."""
    today = local_today(now)
    return select(Milestone.order_id).where(Milestone.status.in_(AWAITING_SUBMISSION),
                                            Milestone.due_date < today)


def milestone_overdue(now: datetime):
    """Work under way and a milestone past its due day without a submission."""
    return and_(Order.status.in_(WORK_STATUSES), Order.id.in_(overdue_milestone_orders(now)))


def milestone_at_risk(now: datetime, warning_days: int | None = None):
    """Work under way and a milestone awaiting submission due within the warning window,
    with the percent done below the plan at its due day (cumulative share)."""
    today, horizon = milestone_horizon(now, warning_days)
    upcoming = aliased(Milestone)
    earlier = aliased(Milestone)
    planned = select(func.coalesce(func.sum(earlier.share_bp), 0)).where(
        earlier.order_id == upcoming.order_id, earlier.due_date.is_not(None),
        earlier.due_date <= upcoming.due_date).scalar_subquery()
    orders = select(upcoming.order_id).where(
        upcoming.status.in_(AWAITING_SUBMISSION), upcoming.due_date >= today,
        upcoming.due_date <= horizon, _work_done(upcoming.order_id) * 100 < planned)
    return and_(Order.status.in_(WORK_STATUSES), Order.id.in_(orders))


def _behind_milestones(now: datetime):
    """Work under way and percent done below the milestones whose due day has ended."""
    today = local_today(now)
    planned = func.coalesce(select(func.sum(Milestone.share_bp))
                            .where(Milestone.order_id == Order.id,
                                   Milestone.due_date < today)
                            .correlate(Order).scalar_subquery(), 0)
    return and_(Order.status.in_(WORK_STATUSES), done_expr() * 100 < planned)


# Each branch tests IS NOT NULL first, so an order without a deadline is FALSE (never NULL)
# and "on track" (NOT overdue AND NOT at risk) includes it.
def _deadline_passed(now: datetime):
    return or_(and_(Order.status.in_(ACCEPT_STATUSES), Order.accept_by.is_not(None),
                    Order.accept_by < now),
               and_(Order.status.in_(WORK_STATUSES), Order.due_at.is_not(None),
                    Order.due_at < now))


def _overdue(now: datetime):
    return or_(_deadline_passed(now), milestone_overdue(now))


def _in_window(now: datetime, window: timedelta):
    edge = now + window
    return or_(and_(Order.status.in_(ACCEPT_STATUSES), Order.accept_by.is_not(None),
                    Order.accept_by >= now, Order.accept_by <= edge),
               and_(Order.status.in_(WORK_STATUSES), Order.due_at.is_not(None),
                    Order.due_at >= now, Order.due_at <= edge))


def _at_risk(now: datetime, warning_days: int | None):
    """At risk, for orders that are not overdue."""
    return or_(and_(_in_window(now, warning_window(warning_days)), _behind_plan_bool(now)),
               milestone_at_risk(now, warning_days))


def sla_condition(code: str, now: datetime, warning_days: int | None = None):
    """WHERE clause selecting open orders with SLA status ``code`` at ``now``."""
    overdue = _overdue(now)
    at_risk = and_(~overdue, _at_risk(now, warning_days))
    if code == "overdue":
        return overdue
    if code == "at_risk":
        return at_risk
    if code == "on_track":
        return and_(~overdue, ~_at_risk(now, warning_days))
    raise ValueError(code)


def _behind_plan_bool(now: datetime):
    """The behind-plan test as a plain boolean expression (portable across backends): behind
    the time elapsed, or behind the milestones due so far."""
    due = epoch(deadline_expr())
    started_col = func.coalesce(Order.accepted_at, Order.paid_at)
    started = epoch(started_col)
    done = done_expr()
    return or_(
        and_(started_col.is_(None), done < 100),
        and_(started_col.is_not(None), due <= started, done < 100),
        and_(started_col.is_not(None), due > started,
             done * (due - started) < 100 * (literal(round(now.timestamp())) - started)),
        _behind_milestones(now),
    )


def behind_plan(now: datetime):
    """Progress behind plan at ``now`` (for orders inside the warning window)."""
    return _behind_plan_bool(now)


def sla_case(now: datetime, warning_days: int | None = None):
    """CASE expression giving 0 (overdue), 1 (at risk) or 2 (on track): sorts worst first."""
    return case((_overdue(now), 0),
                (_at_risk(now, warning_days), 1),
                else_=2)


SLA_RANK = {0: "overdue", 1: "at_risk", 2: "on_track"}
