"""Who hears about an order transition: an in-transaction subscriber of
``OrderTransitioned`` (marketplace/events.py), so a notice commits or rolls back with the
transition that caused it."""

from sqlalchemy.orm import Session

from marketplace import events, permissions
from marketplace.events import OrderTransitioned
from marketplace.notifications import notify, notify_organisation
from orders import states
from orders.models import Order
from orders.workflow import TRANSITIONS, order_link

# Who hears about each transition (besides the actor's own organisation). Nobody hears
# about "settle" order by order: the institution gets one notice per paid statement
# (orders.settlement.mark_paid), not one per order in it.
NOTIFY = {
    "pay": ("buyer", "provider"), "accept": ("buyer",), "decline": ("buyer",),
    "start": ("buyer",), "deliver": ("buyer",), "request_revision": ("provider",),
    "complete": ("buyer", "provider"), "dispute": ("provider", "staff"),
    "resolve": ("buyer", "provider"), "cancel": ("buyer", "provider"),
    "lapse": ("buyer", "provider", "staff"),
}
_WHO = {"buyer": "The buyer", "provider": "The institution", "staff": "Platform staff",
        "system": "The platform"}


@events.subscribe(OrderTransitioned)
def notify_parties(session: Session, event: OrderTransitioned) -> None:
    parties = [p for p in NOTIFY.get(event.name, ()) if p != event.actor_role]
    if not parties:
        return
    order = session.get(Order, event.order_id)
    transition_ = TRANSITIONS[event.name]
    title = f"Order {order.number}: {states.label(event.to_status).lower()}"
    body = f"{_WHO[event.actor_role]} {transition_.summary}: {order.title}."
    if event.note:
        body += f"\n\nNote: {event.note}"
    for party in parties:
        if party == "staff":
            staff = session.scalars(permissions.staff_users()).all()
            for user in staff:
                notify(session, user, f"order_{event.name}", title, body,
                       order_link(order, "staff"))
            continue
        organisation = order.buyer if party == "buyer" else order.provider
        notify_organisation(session, organisation, f"order_{event.name}", title, body,
                            order_link(order, party))
