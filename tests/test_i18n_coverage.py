"""Nothing a person reads escapes translation: every GET page of the URL map, rendered for
each role on the demo supermarket in the pseudo-locale (every translated message comes out
as ⟦…⟧), shows no visible text that is neither wrapped nor data.

Data is what the database holds (names, titles, numbers, notes, emails...) and what is
formatted from numbers (amounts, dates, percentages): a text node passes when, after taking
out the wrapped messages and the database strings it contains, no word is left. Rendered
Markdown (``.markdown-body``) is user content and not looked into.
"""

from __future__ import annotations

import re
from collections import defaultdict
from html.parser import HTMLParser

from conftest import post_form
from pseudo_locale import CLOSE, OPEN, PSEUDO_LOCALE
from sqlalchemy import JSON, String, Text, select

from marketplace import reference
from marketplace.database import Base, db

ROLES = {
    "visitor": None,
    "buyer": "buyer@demo.example",
    "provider": "provider@demo.example",
    "staff": "staff@demo.example",
    "admin": "admin@demo.example",
}
DEMO_PASSWORD = "Demo-password-2026"

# The innermost wrapped message: a translated text may hold others ("⟦due ⟦6 days⟧ ago⟧"),
# so they are taken out from the inside until none is left.
WRAPPED = re.compile(re.escape(OPEN) + r"[^" + OPEN + CLOSE + r"]*" + re.escape(CLOSE))
WORD = re.compile(r"[^\W\d_]{2,}", re.U)  # two or more letters (Latin or CJK)
STRIPE_ID = re.compile(r"\b(?:pi|re|ch|pm|cus|evt|seti|src|card)_[A-Za-z0-9]{6,}\b")
MONTHS = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct",
          "Nov", "Dec", "AM", "PM"}
VISIBLE_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt", "data-confirm",
                      "data-busy-text", "data-copied")
SKIP_TAGS = {"script", "style", "template"}
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
             "source", "track", "wbr"}
# Routes that answer files, images, redirects to Stripe or need a secret from an email.
NOT_PAGES = {"static", "healthz", "portal.document_file", "portal.logo",
             "orders.download_file", "quotes.request_file", "accounts.reset_password",
             "orders.checkout_result", "orders.checkout_pay", "orders.authenticate",
             "orders.payment_return", "portal.team_join"}


class VisibleText(HTMLParser):
    """Collects the texts a person sees: text nodes and a few attributes, outside scripts
    and rendered Markdown."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool]] = []
        self.texts: list[str] = []

    def _skipping(self) -> bool:
        return any(skip for _tag, skip in self.stack)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        skip = (tag in SKIP_TAGS or "markdown-body" in (attributes.get("class") or "").split())
        if not self._skipping() and not skip:
            for name in VISIBLE_ATTRIBUTES:
                if attributes.get(name):
                    self.texts.append(attributes[name])
            if tag == "input" and attributes.get("type") in ("submit", "button"):
                self.texts.append(attributes.get("value") or "")
        if tag not in VOID_TAGS:
            self.stack.append((tag, skip))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID_TAGS and self.stack:
            self.stack.pop()

    def handle_endtag(self, tag):
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index][0] == tag:
                del self.stack[index:]
                break

    def handle_data(self, data):
        if not self._skipping() and data.strip():
            self.texts.append(data)


class DataStrings:
    """Every string the database holds, indexed by its first word for quick look-ups."""

    def __init__(self, values):
        self.by_word: dict[str, list[str]] = defaultdict(list)
        # Multi-line values (a package's deliverables, one per line) are shown line by line.
        values = [part for v in values if v for part in (v, *v.splitlines())]
        for value in {v.strip() for v in values if v and v.strip()}:
            words = WORD.findall(value)
            if words:
                self.by_word[words[0]].append(value)
        for strings in self.by_word.values():
            strings.sort(key=len, reverse=True)

    def leftover(self, text: str) -> list[str]:
        """The words of ``text`` that are neither wrapped nor part of a database string."""
        # Stripe's object ids (the reconciliation page lists intents the gateway holds,
        # which need not be in this database) are data too.
        rest = STRIPE_ID.sub(" ", text)
        while WRAPPED.search(rest):
            rest = WRAPPED.sub(" ", rest)
        # Longest first over all candidates, so a short value ("high-tech enterprises") does
        # not cut a longer one that contains it (a listing title) before it is matched.
        candidates = {value for word in set(WORD.findall(rest))
                      for value in self.by_word.get(word, ())}
        for value in sorted(candidates, key=len, reverse=True):
            if value in rest:
                rest = rest.replace(value, " ")
        return [w for w in WORD.findall(rest) if w not in MONTHS]


def database_strings(session) -> list[str]:
    values: list[str] = []
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, (String, Text, JSON))]
        if not columns:
            continue
        for row in session.execute(select(*columns)):
            for value in row:
                if isinstance(value, str):
                    values.append(value)
                elif isinstance(value, list):
                    values.extend(v for v in value if isinstance(v, str))
                elif isinstance(value, dict):
                    values.extend(v for v in value.values() if isinstance(v, str))
    # The language switch names each language in itself (中文, English) on purpose.
    from marketplace.i18n import LANGUAGES

    values.extend(LANGUAGES.values())
    # Reference tables carry both languages as content (regions, institution types...).
    for name in dir(reference):
        table = getattr(reference, name)
        if isinstance(table, (list, tuple)):
            for item in table:
                if isinstance(item, tuple):
                    values.extend(v for v in item if isinstance(v, str))
    return values


def load_demo(app):
    from marketplace.demo.activity import load_demo_activity
    from marketplace.demo.catalogue import load_demo_data

    with app.app_context():
        load_demo_data(db.session, enterprises=120)
        db.session.commit()
        load_demo_activity(db.session, orders=60)
        db.session.commit()


def argument_values(session, role: str, email: str | None) -> dict[str, object]:
    """One value per URL argument, chosen so the role may see the page."""
    from catalog.models import Category, Product
    from marketplace.models import Organisation, User
    from orders.models import (
        Order,
        QuoteRequest,
        SettlementBatch,
        VoucherProgramme,
    )
    from orders.models import SettlementStatement as Statement

    user = session.scalar(select(User).where(User.email == email)) if email else None
    org_id = user.organisation_id if user else None
    values: dict[str, object] = {}
    values["slug"] = session.scalar(select(Category.slug).where(Category.parent_id.is_(None)))
    public = (select(Product.id).join(Organisation, Product.provider_id == Organisation.id)
              .where(Product.status == "published",
                     Organisation.verification_status == "verified"))
    if role == "provider":
        values["product_id"] = session.scalar(
            select(Product.id).where(Product.provider_id == org_id).order_by(Product.id))
        values["org_id"] = org_id
    else:
        values["product_id"] = session.scalar(public.order_by(Product.id))
        values["org_id"] = session.scalar(
            select(Product.provider_id).where(Product.id == values["product_id"]))
    orders = select(Order.id).order_by(Order.id)
    requests = select(QuoteRequest.id).order_by(QuoteRequest.id)
    statements = select(Statement.id).order_by(Statement.id)
    if role == "buyer":
        orders = orders.where(Order.buyer_org_id == org_id)
        requests = requests.where(QuoteRequest.buyer_org_id == org_id)
    elif role == "provider":
        orders = orders.where(Order.provider_org_id == org_id)
        requests = requests.where(QuoteRequest.provider_org_id == org_id)
        statements = statements.where(Statement.provider_org_id == org_id)
    values["order_id"] = session.scalar(orders)
    values["request_id"] = session.scalar(requests)
    values["statement_id"] = session.scalar(statements)
    values["batch_id"] = session.scalar(select(SettlementBatch.id).order_by(SettlementBatch.id))
    values["programme_id"] = session.scalar(
        select(VoucherProgramme.id).order_by(VoucherProgramme.id))
    return values


def get_routes(app):
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and rule.endpoint not in NOT_PAGES:
            yield rule


def test_every_page_translates_every_text_for_every_role(app):
    # Judge what the templates say now, not what earlier tests left in this process's caches
    # (rendered cards and pages of other data).
    from catalog import fragments

    fragments.cards.clear()
    fragments.hits.clear()
    app.extensions.pop("page_cache", None)
    load_demo(app)
    with app.app_context():
        data = DataStrings(database_strings(db.session))
    problems: dict[str, set[str]] = defaultdict(set)
    checked = 0
    for role, email in ROLES.items():
        client = app.test_client()
        client.set_cookie("lang", PSEUDO_LOCALE)
        if email:
            response = post_form(client, "/login", {"email": email, "password": DEMO_PASSWORD})
            assert response.status_code == 302, f"{role} could not log in"
        with app.app_context():
            values = argument_values(db.session, role, email)
        for rule in get_routes(app):
            if any(values.get(arg) is None for arg in rule.arguments):
                continue
            with app.test_request_context():
                from flask import url_for

                url = url_for(rule.endpoint, **{a: values[a] for a in rule.arguments})
            response = client.get(url, follow_redirects=True)
            if response.status_code >= 500:
                problems[f"{role} {url}"].add(f"HTTP {response.status_code}")
                continue
            if response.status_code != 200 or response.mimetype != "text/html":
                continue
            checked += 1
            parser = VisibleText()
            parser.feed(response.get_data(as_text=True))
            for text in parser.texts:
                left = data.leftover(text)
                if left:
                    shown = " ".join(text.split())[:100]
                    problems[f"{role} {rule.endpoint}"].add(f"{shown} [{' '.join(left[:4])}]")
    report = "\n".join(f"{page}: {sorted(texts)[:12]}" for page, texts in sorted(problems.items()))
    assert checked > 100, f"only {checked} pages rendered"
    assert not problems, f"{len(problems)} pages show untranslated text:\n{report}"
