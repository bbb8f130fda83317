"""The audit trail: one row per decision or intervention, written in the action's transaction."""

from sqlalchemy.orm import Session

from marketplace.models import AuditLog


def record(session: Session, actor, action: str, target, reason: str | None = None,
           **details) -> AuditLog:
    """Record that ``actor`` (a User or None for the system) did ``action`` to ``target``."""
    entry = AuditLog(
        actor_id=getattr(actor, "id", None),
        action=action,
        target_type=type(target).__tablename__,
        target_id=target.id,
        reason=reason,
        details=details,
    )
    session.add(entry)
    return entry
