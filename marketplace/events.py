"""Domain events: a tiny in-process publish/subscribe, so a service announces what happened
and the interested parties react, instead of the service calling each of them by hand.

    events.publish(session, OrderTransitioned(order_id=..., name="accept", ...))

Two kinds of subscriber, both called inside ``publish``, in the publisher's transaction:

- ``@subscribe(EventType)``: consequences that must commit or roll back with the change
  (notifications, the ledger, counters). They run in registration order.
- ``@after_commit(EventType)``: slow consequences (the credibility recompute). The handler
  must NOT do the work: it only records it durably in the same transaction (a queue row,
  e.g. ``credibility_dirty``), and a job performs it after commit (``flask --app marketplace
  refresh-credibility``, run by the jobs loop or cron). So the user's request never pays for
  it, a rolled-back change leaves no work behind and a crash loses none.

Where subscribers register: at import of their module, with the decorators above. The
subscriber modules are listed ONCE, in ``SUBSCRIBER_MODULES`` below, and the app factory
imports them (``load_subscribers()``); a package adds a line there, not a call in the
publisher. Registering is idempotent (a handler registered twice runs once).

Events carry ids and plain values, never ORM objects: a handler loads what it needs from
the session it is given (the identity map makes that free for objects already loaded).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

# Modules whose import registers subscribers (see the module docstring).
SUBSCRIBER_MODULES = (
    "orders.notices",  # notifications of order transitions (in the transaction)
    "providers.credibility.subscribers",  # marks both parties for a recompute (after commit)
)

Handler = Callable[[Session, object], None]
_in_transaction: dict[type, list[Handler]] = {}
_after_commit: dict[type, list[Handler]] = {}


@dataclass(frozen=True)
class OrderTransitioned:
    """An order changed status through orders.workflow.transition (one per transition)."""

    order_id: int
    name: str  # the transition: "pay", "accept", "complete", ...
    from_status: str
    to_status: str
    actor_role: str  # buyer / provider / staff / system
    at: datetime
    actor_id: int | None = None
    note: str = ""


@dataclass(frozen=True)
class OrganisationStandingChanged:
    """An organisation's verification or suspension changed (providers.onboarding): both are
    inputs of its credibility score."""

    organisation_id: int
    change: str  # "submitted", "approved", "rejected", "more_info", "suspended", "reinstated"


def _add(table: dict[type, list[Handler]], event_type: type, handler: Handler) -> None:
    handlers = table.setdefault(event_type, [])
    key = (handler.__module__, handler.__qualname__)
    # Idempotent, also across a module re-import (tests reloading a module).
    handlers[:] = [h for h in handlers if (h.__module__, h.__qualname__) != key]
    handlers.append(handler)


def subscribe(event_type: type) -> Callable[[Handler], Handler]:
    """Register an in-transaction handler ``handler(session, event)``."""
    def register(handler: Handler) -> Handler:
        _add(_in_transaction, event_type, handler)
        return handler
    return register


def after_commit(event_type: type) -> Callable[[Handler], Handler]:
    """Register a handler that records work for after the commit (see the module docstring)."""
    def register(handler: Handler) -> Handler:
        _add(_after_commit, event_type, handler)
        return handler
    return register


def load_subscribers() -> None:
    """Import every subscriber module (the app factory calls this once)."""
    for name in SUBSCRIBER_MODULES:
        importlib.import_module(name)


def publish(session: Session, event: object) -> None:
    """Run the in-transaction handlers, then let the after-commit ones record their work.
    An exception propagates: the publisher's transaction must then roll back."""
    for handler in list(_in_transaction.get(type(event), ())):
        handler(session, event)
    for handler in list(_after_commit.get(type(event), ())):
        handler(session, event)
