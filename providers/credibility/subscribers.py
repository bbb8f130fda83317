"""What moves a credibility input, marked for a recompute after commit (marketplace/events.py:
an after-commit subscriber only writes the ``credibility_dirty`` row in the transaction;
``drain_dirty`` does the work in the refresh-credibility job)."""

from sqlalchemy.orm import Session

from marketplace import events
from marketplace.events import OrderTransitioned, OrganisationStandingChanged
from marketplace.models import Organisation
from providers.credibility.store import mark_dirty, refresh_organisation

# Transitions that change an input of the credibility score of buyer or provider: paying
# (the buyer's on-time payment, the provider's paid orders), accepting (the provider's
# response time and accepted orders) and every ending. The score's badge is stored, its
# breakdown computed live, so missing one here would show two different scores until the
# next nightly recompute.
CREDIBILITY_TRANSITIONS = frozenset({"pay", "accept", "complete", "resolve", "cancel",
                                     "decline", "dispute"})


@events.after_commit(OrderTransitioned)
def mark_parties(session: Session, event: OrderTransitioned) -> None:
    if event.name not in CREDIBILITY_TRANSITIONS:
        return
    from orders.models import Order

    order = session.get(Order, event.order_id)
    mark_dirty(session, [order.buyer_org_id, order.provider_org_id], event.at)


@events.subscribe(OrganisationStandingChanged)
def refresh_standing(session: Session, event: OrganisationStandingChanged) -> None:
    """Verification and suspension show on the badge at once: staff just acted on it and
    look at the result (one organisation, cheap enough for the request)."""
    refresh_organisation(session, session.get(Organisation, event.organisation_id))
