"""Count the SQL statements a request (or any block) sends, for query-budget tests.

    with count_queries() as counted:
        client.get("/")
    assert counted.count <= 8, counted.report()

It listens to SQLAlchemy's ``before_cursor_execute`` on the app's engine, so it counts every
statement the application sends, whichever session sent it. The ``queries`` fixture gives a
fresh counter factory to a test.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import pytest
from sqlalchemy import event

from marketplace.database import db


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)

    def report(self) -> str:
        lines = [f"{self.count} statements:"]
        lines += [f"  {n + 1:3}. {' '.join(sql.split())[:160]}"
                  for n, sql in enumerate(self.statements)]
        return "\n".join(lines)


@contextlib.contextmanager
def count_queries(engine=None):
    engine = engine or db.engine
    counted = Counted()

    def _count(_conn, _cursor, statement, _parameters, _context, _executemany):
        counted.statements.append(statement)

    event.listen(engine, "before_cursor_execute", _count)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", _count)


@pytest.fixture
def queries():
    """``with queries() as counted: ...`` inside a test."""
    return count_queries
