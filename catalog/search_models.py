"""Tables of search synonyms and search analytics (issue 18).

Analytics rows hold no personal data: per UTC day, folded query text and interface locale,
only counters (searches, searches that found nothing, clicks) and the last result count; no
user, session, address or time of day.
"""

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.database import Base, utcnow

QUERY_MAX = 200  # catalog.search_query.MAX_QUERY_CHARS


class SearchSynonym(Base):
    """One group of phrases that mean the same for search (query expansion)."""

    __tablename__ = "search_synonym"

    id: Mapped[int] = mapped_column(primary_key=True)
    phrases: Mapped[list] = mapped_column(default=list)  # folded, at least two
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16), default="staff")  # shipped | staff
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class SearchQueryStat(Base):
    """How often a query was searched on a day, how often it found nothing, clicks."""

    __tablename__ = "search_query_stat"
    __table_args__ = (UniqueConstraint("day", "query", "locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    query: Mapped[str] = mapped_column(String(QUERY_MAX))
    locale: Mapped[str] = mapped_column(String(16), default="")
    searches: Mapped[int] = mapped_column(Integer, default=0)
    zero_results: Mapped[int] = mapped_column(Integer, default=0)
    last_results: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)


class SearchClickStat(Base):
    """Clicks from a query's results to one listing on a day."""

    __tablename__ = "search_click_stat"
    __table_args__ = (UniqueConstraint("day", "query", "locale", "product_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, index=True)
    query: Mapped[str] = mapped_column(String(QUERY_MAX))
    locale: Mapped[str] = mapped_column(String(16), default="")
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"),
                                            index=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
