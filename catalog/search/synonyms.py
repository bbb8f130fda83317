"""Search synonyms and abbreviations of the field (issue 18): the one home of their rules.

A synonym *group* is a list of phrases that mean the same ("高企", "高新技术企业",
"high-tech enterprise"). The project ships a dictionary (catalog/search/synonyms.txt)
that migration 0017 seeds into the ``search_synonym`` table; staff edit the table in the
console, and searches read it as query expansion (catalog.search.expand), so a new synonym
works at once, without a reindex or a redeploy.

Searches read the table through ``synonym_map``: one small aggregate query per search decides
whether the process's cached copy is still current (row count, newest id and edit time), so
an edit made in another process is seen by the next search everywhere.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from catalog.search.text import fold
from catalog.search_models import QUERY_MAX, SearchSynonym
from marketplace import audit

SHIPPED_FILE = Path(__file__).resolve().parent / "synonyms.txt"
MAX_PHRASES = 20
MAX_PHRASE_CHARS = 60
_SPLIT = re.compile(r"[|\n\r,，、;；/]+")


class SynonymError(ValueError):
    """A synonym group that cannot be saved; the message says why (shown to staff)."""


def parse_phrases(text: str) -> list[str]:
    """Phrases from a form field or a shipped line: split on | , ， 、 ; / and new lines,
    folded (simplified, half-width, lower case), duplicates dropped, order kept."""
    phrases = []
    for part in _SPLIT.split(text or ""):
        phrase = fold(part)
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    return phrases


def shipped_groups(path: Path = SHIPPED_FILE) -> list[list[str]]:
    groups = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            phrases = list(dict.fromkeys(filter(None, map(fold, line.split("|")))))
            if len(phrases) >= 2:
                groups.append(phrases)
    return groups


def _validate(phrases: list[str]) -> list[str]:
    if len(phrases) < 2:
        raise SynonymError(_("A synonym group needs at least two phrases."))
    if len(phrases) > MAX_PHRASES:
        raise SynonymError(_("At most %(count)d phrases in one group.", count=MAX_PHRASES))
    long = [p for p in phrases if len(p) > MAX_PHRASE_CHARS]
    if long:
        raise SynonymError(_("Phrases are at most %(count)d characters: “%(phrase)s”.",
                             count=MAX_PHRASE_CHARS, phrase=long[0]))
    return phrases


# --------------------------------------------------------------------------- changes

def create_group(session: Session, actor, phrases_text: str, note: str | None = None,
                 source: str = "staff") -> SearchSynonym:
    from catalog import page_cache

    phrases = _validate(parse_phrases(phrases_text))
    group = SearchSynonym(phrases=phrases, note=(note or "").strip()[:500] or None,
                          source=source, updated_by_id=getattr(actor, "id", None))
    session.add(group)
    session.flush()
    audit.record(session, actor, "search_synonym.create", group, phrases=phrases)
    page_cache.bump(session)  # cached search pages were computed without it
    return group


def update_group(session: Session, actor, group_id: int, phrases_text: str,
                 note: str | None = None) -> SearchSynonym:
    from catalog import page_cache

    group = session.get(SearchSynonym, group_id)
    if group is None:
        raise SynonymError(_("That synonym group no longer exists."))
    phrases = _validate(parse_phrases(phrases_text))
    before = list(group.phrases)
    group.phrases = phrases
    group.note = (note or "").strip()[:500] or None
    group.updated_by_id = getattr(actor, "id", None)
    session.flush()
    audit.record(session, actor, "search_synonym.update", group, before=before, after=phrases)
    page_cache.bump(session)
    return group


def delete_group(session: Session, actor, group_id: int) -> None:
    from catalog import page_cache

    group = session.get(SearchSynonym, group_id)
    if group is None:
        raise SynonymError(_("That synonym group no longer exists."))
    audit.record(session, actor, "search_synonym.delete", group, phrases=list(group.phrases))
    session.delete(group)
    session.flush()
    page_cache.bump(session)


def add_query_as_synonym(session: Session, actor, query: str, meaning: str) -> SearchSynonym:
    """The analytics page's one step: a query that found nothing becomes a synonym of
    ``meaning``. Joins the group that already holds ``meaning`` (or the query), else starts a
    new group of the two."""
    from catalog import page_cache

    phrase = fold(query)[:QUERY_MAX]
    target = fold(meaning)
    if not phrase or not target:
        raise SynonymError(_("Say what the query means: a word or phrase the catalogue uses."))
    if phrase == target:
        raise SynonymError(_("The query and its meaning are the same phrase."))
    for group in session.scalars(select(SearchSynonym).order_by(SearchSynonym.id)):
        if target in group.phrases or phrase in group.phrases:
            if phrase in group.phrases and target in group.phrases:
                return group
            before = list(group.phrases)
            group.phrases = _validate(before + [p for p in (phrase, target) if p not in before])
            group.updated_by_id = getattr(actor, "id", None)
            session.flush()
            audit.record(session, actor, "search_synonym.update", group, before=before,
                         after=list(group.phrases), from_query=phrase)
            page_cache.bump(session)
            return group
    return create_group(session, actor, f"{phrase}|{target}",
                        note=_("Added from a search that found nothing"))


def seed_shipped(session: Session) -> int:
    """Add the shipped groups the table lacks (matched by their first phrase); returns how
    many were added. Migration 0017 seeds a new database; this restores them elsewhere."""
    have = {tuple(phrases)[0] for phrases in session.scalars(select(SearchSynonym.phrases))
            if phrases}
    added = 0
    for phrases in shipped_groups():
        if phrases[0] not in have:
            session.add(SearchSynonym(phrases=phrases, source="shipped"))
            added += 1
    session.flush()
    return added


# --------------------------------------------------------------------------- reading

_cache_lock = threading.Lock()
_cache: dict = {}


def _build_map(groups) -> dict[str, tuple[str, ...]]:
    """phrase -> every phrase it stands for (itself first); a phrase in two groups gets both."""
    found: dict[str, list[str]] = {}
    for phrases in groups:
        for phrase in phrases:
            merged = found.setdefault(phrase, [phrase])
            merged.extend(p for p in phrases if p not in merged)
    return {phrase: tuple(group) for phrase, group in found.items()}


def synonym_map(session: Session) -> dict[str, tuple[str, ...]]:
    """The current synonym table as query expansion wants it (cached per process, checked
    against the table with one aggregate query)."""
    bind = session.get_bind()
    fingerprint = tuple(session.execute(select(
        func.count(SearchSynonym.id), func.max(SearchSynonym.id),
        func.max(SearchSynonym.updated_at))).one())
    key = str(bind.url)
    cached = _cache.get(key)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    mapping = _build_map(session.scalars(select(SearchSynonym.phrases)))
    with _cache_lock:
        _cache[key] = (fingerprint, mapping)
    return mapping


def list_groups(session: Session, needle: str | None = None) -> list[SearchSynonym]:
    groups = list(session.scalars(select(SearchSynonym).order_by(SearchSynonym.id)))
    needle = fold(needle or "")
    if needle:
        groups = [g for g in groups if any(needle in p for p in g.phrases)]
    return groups
