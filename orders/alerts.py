"""Deviation alerts (issue 13): when work drifts from its milestone plan, buyer, institution
and the platform's monitors are told once per deviation.

A deviation is a milestone past its due day without a submission ("overdue"), or one due
within the SLA warning window with the percent done below the milestone plan at its day
("at_risk"): the same rules as the SLA status (orders/sla.py). The order timers
(orders/timers.py, ``flask --app marketplace run-order-timers``) call this on every run;
the ``milestone_alert`` row with its unique key (milestone, kind, due date) is written in
the same transaction as the notices, so a deviation is announced once however often the job
runs, and two runs racing each other announce it once (the loser's insert fails and its
notices roll back with it). A milestone extended to a new due date (staff, orders/sla.py is
recomputed) that deviates again is a new deviation and alerts again.
"""

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from marketplace import permissions
from marketplace.i18n import format_date
from marketplace.notifications import notify, notify_organisation
from orders import sla
from orders.models import Milestone, MilestoneAlert, Order
from orders.workflow import order_link

KIND_NOTICE = {"overdue": "milestone_overdue", "at_risk": "milestone_at_risk"}


def deviating_orders(session: Session, now: datetime, warning_days: int | None = None
                     ) -> list[int]:
    """Ids of orders with a milestone overdue or at risk at ``now`` (SQL, from the milestone
    (status, due_date) index)."""
    return list(session.scalars(
        select(Order.id).where(or_(sla.milestone_overdue(now),
                                   sla.milestone_at_risk(now, warning_days)))
        .order_by(Order.id)).all())


def alert_order(session: Session, order: Order, now: datetime,
                warning_days: int | None = None) -> list[MilestoneAlert]:
    """Record and announce the deviations of ``order`` not announced yet (flushes; the caller
    commits, and an IntegrityError at the flush means another run announced them)."""
    sent = {tuple(row) for row in session.execute(
        select(MilestoneAlert.milestone_id, MilestoneAlert.kind, MilestoneAlert.due_date)
        .where(MilestoneAlert.order_id == order.id))}
    made = []
    for kind, milestone, planned in sla.milestone_deviations(order, now, warning_days):
        if (milestone.id, kind, milestone.due_date) in sent:
            continue
        alert = MilestoneAlert(order_id=order.id, milestone_id=milestone.id, kind=kind,
                               due_date=milestone.due_date, created_at=now)
        session.add(alert)
        _announce(session, order, milestone, kind, planned)
        made.append(alert)
    session.flush()
    return made


def _announce(session: Session, order: Order, milestone: Milestone, kind: str,
              planned: int) -> None:
    done = order.progress_percent

    # Rendered per recipient, in their language (marketplace.notifications.notify).
    def title() -> str:
        if kind == "overdue":
            return _("Order %(number)s: milestone “%(title)s” is overdue",
                     number=order.number, title=milestone.title)
        return _("Order %(number)s: milestone “%(title)s” is at risk",
                 number=order.number, title=milestone.title)

    def body() -> str:
        if kind == "overdue":
            text = _("The milestone “%(title)s” of “%(order)s” was due on %(date)s and has not "
                     "been submitted.", title=milestone.title, order=order.title,
                     date=format_date(milestone.due_date))
        else:
            text = _("The milestone “%(title)s” of “%(order)s” is due on %(date)s: the work is "
                     "%(done)d%% done, %(planned)d%% is planned by then.",
                     title=milestone.title, order=order.title,
                     date=format_date(milestone.due_date), done=done, planned=planned // 100)
        return text + "\n\n" + _("The institution should submit the milestone or agree a new "
                                 "date with the buyer; platform staff can extend it.")

    notice = KIND_NOTICE[kind]
    notify_organisation(session, order.buyer, notice, title, body, order_link(order, "buyer"))
    notify_organisation(session, order.provider, notice, title, body,
                        order_link(order, "provider"))
    for user in session.scalars(permissions.staff_users()).all():
        notify(session, user, notice, title, body, order_link(order, "staff"))
