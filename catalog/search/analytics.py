"""Search analytics for staff (issue 18): what people search, what finds nothing, what gets
no click. The one home of these rules.

What is kept, per UTC day, query and interface locale: counters only (searches, searches
that found nothing, clicks, and the last result count), plus clicks per listing. Nothing
about who searched: no user, session, address or time of day. Queries are folded as search
folds them (simplified, half-width, lower case) and anything that looks like an email
address or a phone or ID number is masked before it is stored, since people paste such
things into search boxes.

Only first result pages of a typed query count as a search (paging and htmx facet
refinements of the same search do not); clicks come through ``/search/go/<listing>``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from catalog.search.text import fold
from catalog.search_models import QUERY_MAX, SearchClickStat, SearchQueryStat

DEFAULT_DAYS = 30
MAX_DAYS = 366
REPORT_ROWS = 50
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_LONG_NUMBER = re.compile(r"\d[\d\s-]{5,}\d")


def clean_query(raw: str) -> str:
    """The query as stored: folded, personal-looking parts masked, at most QUERY_MAX."""
    text = fold(raw)
    text = _EMAIL.sub("[email]", text)
    text = _LONG_NUMBER.sub("[number]", text)
    return text[:QUERY_MAX].strip()


def today() -> date:
    return datetime.now(UTC).date()


def _bump(session: Session, model, keys: dict, counters: dict, latest: dict | None = None
          ) -> None:
    """Add ``counters`` to the row of ``keys`` and set ``latest``, creating the row first if
    needed (two writers racing to create it: the loser's insert fails on the unique key, in
    a savepoint, and it updates instead)."""
    latest = latest or {}
    condition = [getattr(model, name) == value for name, value in keys.items()]
    values = {name: getattr(model, name) + amount for name, amount in counters.items()}
    values.update(latest)
    statement = update(model).where(*condition).values(**values)
    if session.execute(statement).rowcount:
        return
    try:
        with session.begin_nested():
            session.add(model(**keys, **counters, **latest))
    except IntegrityError:
        session.execute(statement)


def record_search(session: Session, query: str, results: int, locale: str,
                  day: date | None = None, searches: int = 1,
                  zero_results: int | None = None) -> bool:
    """Count ``searches`` searches of ``query`` (default one), ``zero_results`` of them
    without results (default: all of them when ``results`` is 0); ``results`` is the latest
    count."""
    text = clean_query(query)
    if not text:
        return False
    keys = {"day": day or today(), "query": text, "locale": (locale or "")[:16]}
    zero = int(results == 0) * searches if zero_results is None else zero_results
    _bump(session, SearchQueryStat, keys, {"searches": searches, "zero_results": zero},
          {"last_results": int(results)})
    session.flush()
    return True


def record_click(session: Session, query: str, product_id: int, locale: str,
                 day: date | None = None) -> bool:
    text = clean_query(query)
    if not text:
        return False
    keys = {"day": day or today(), "query": text, "locale": (locale or "")[:16]}
    _bump(session, SearchQueryStat, keys, {"clicks": 1})
    _bump(session, SearchClickStat, {**keys, "product_id": product_id}, {"clicks": 1})
    session.flush()
    return True


# --------------------------------------------------------------------------- reports

@dataclass
class Period:
    start: date
    end: date  # inclusive
    errors: dict

    @classmethod
    def from_args(cls, args) -> Period:
        errors = {}
        end = _parse_day(args.get("to"), "to", errors) or today()
        start = _parse_day(args.get("from"), "from", errors) or end - timedelta(
            days=DEFAULT_DAYS - 1)
        if start > end:
            errors["from"] = _("The period starts after it ends.")
            start = end
        if (end - start).days >= MAX_DAYS:
            errors["from"] = _("At most %(days)d days at a time.", days=MAX_DAYS)
            start = end - timedelta(days=MAX_DAYS - 1)
        return cls(start=start, end=end, errors=errors)

    def args(self) -> dict:
        return {"from": self.start.isoformat(), "to": self.end.isoformat()}


def _parse_day(raw, name: str, errors: dict) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(str(raw)[:10])
    except ValueError:
        errors[name] = _("Use a date like 2026-12-01.")
        return None


@dataclass
class QueryRow:
    query: str
    searches: int
    zero_results: int
    clicks: int
    last_results: int
    locales: str


REPORTS = {
    "top": _l("Top queries"),
    "zero": _l("Queries that found nothing"),
    "noclick": _l("Queries with results but no click"),
}


def report(session: Session, kind: str, period: Period, limit: int | None = REPORT_ROWS
           ) -> list[QueryRow]:
    """One of REPORTS over ``period``: queries with their totals, busiest first."""
    searches = func.sum(SearchQueryStat.searches)
    zero = func.sum(SearchQueryStat.zero_results)
    clicks = func.sum(SearchQueryStat.clicks)
    stmt = (select(SearchQueryStat.query, searches, zero, clicks,
                   func.max(SearchQueryStat.last_results),
                   func.count(func.distinct(SearchQueryStat.locale)))
            .where(SearchQueryStat.day >= period.start, SearchQueryStat.day <= period.end)
            .group_by(SearchQueryStat.query))
    if kind == "zero":
        stmt = stmt.having(zero > 0).order_by(zero.desc(), searches.desc(),
                                              SearchQueryStat.query)
    elif kind == "noclick":
        stmt = stmt.having(clicks == 0, searches > zero).order_by(
            (searches - zero).desc(), SearchQueryStat.query)
    else:
        stmt = stmt.having(searches > 0).order_by(searches.desc(), SearchQueryStat.query)
    if limit:
        stmt = stmt.limit(limit)
    rows = session.execute(stmt).all()
    locales = _locales(session, period, [row[0] for row in rows])
    return [QueryRow(query=q, searches=int(s or 0), zero_results=int(z or 0),
                     clicks=int(c or 0), last_results=int(last or 0),
                     locales=", ".join(locales.get(q, [])))
            for q, s, z, c, last, _n in rows]


def _locales(session: Session, period: Period, queries: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if not queries:
        return found
    for query, locale in session.execute(
            select(SearchQueryStat.query, SearchQueryStat.locale).distinct()
            .where(SearchQueryStat.day >= period.start, SearchQueryStat.day <= period.end,
                   SearchQueryStat.query.in_(queries))
            .order_by(SearchQueryStat.query, SearchQueryStat.locale)):
        found.setdefault(query, []).append(locale or "?")
    return found


def totals(session: Session, period: Period) -> dict:
    row = session.execute(
        select(func.coalesce(func.sum(SearchQueryStat.searches), 0),
               func.coalesce(func.sum(SearchQueryStat.zero_results), 0),
               func.coalesce(func.sum(SearchQueryStat.clicks), 0),
               func.count(func.distinct(SearchQueryStat.query)))
        .where(SearchQueryStat.day >= period.start, SearchQueryStat.day <= period.end)).one()
    searches, zero, clicks, distinct = (int(v or 0) for v in row)
    return {"searches": searches, "zero": zero, "clicks": clicks, "distinct": distinct,
            "zero_share": zero / searches if searches else 0.0}


# --------------------------------------------------------------------------- CSV

CSV_COLUMNS = ["query", "searches", "searches_with_no_result", "clicks", "last_result_count",
               "locales", "period_start", "period_end"]


def safe_cell(value) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @ (or a tab or carriage
    return) gets a leading apostrophe (CSV formula injection)."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def report_csv(rows: list[QueryRow], period: Period) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([safe_cell(v) for v in (
            row.query, row.searches, row.zero_results, row.clicks, row.last_results,
            row.locales, period.start.isoformat(), period.end.isoformat())])
    return "\ufeff" + buffer.getvalue()  # BOM: spreadsheets read the Chinese as UTF-8
