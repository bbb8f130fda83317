"""Guarded state changes: move a row from one of the expected states to a new one with a
single conditional UPDATE, so two people deciding at the same moment cannot both win."""

from sqlalchemy import update
from sqlalchemy.orm import Session

from providers.errors import RuleError


def advance(session: Session, obj, column: str, from_states: tuple[str, ...], message: str,
            **values) -> None:
    """Set ``values`` on ``obj`` if its ``column`` is still one of ``from_states``.

    Raises RuleError(message) when the row has moved on (or was never in those states).
    """
    model = type(obj)
    session.flush()
    result = session.execute(
        update(model)
        .where(model.id == obj.id, getattr(model, column).in_(from_states))
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )
    if result.rowcount != 1:
        session.refresh(obj)
        raise RuleError(message)
    session.refresh(obj)
