"""The deterministic demo supermarket: institutions, listings, enterprises and known logins.

``load_demo_data(session, seed)`` fills an empty, migrated database with a believable
marketplace: 150 service institutions of every type (two of them hidden: one awaiting
verification, one suspended), about 400 listings across every sub-category in all three
pricing modes, 3,000 enterprises with their owner accounts, and one login per role.

The same seed always gives the same rows: every choice comes from ``random.Random(seed)`` and
every date from the fixed ``REFERENCE_NOW``. (Only the password hash differs between runs: it
is salted, as every password hash must be.) Rows are planned in plain Python first and then
written with bulk inserts, so the whole load takes a few seconds.

Text and vocabulary live in ``marketplace.demo.content``.
"""

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from catalog.categories import CATEGORY_TREE, seed_categories
from catalog.models import Category, Package, Product, SearchOutbox
from marketplace import credit_code
from marketplace.demo import content
from marketplace.models import Organisation, User
from marketplace.passwords import hash_password
from marketplace.reference import (
    INSTITUTION_TYPE_LABELS,
    INSTITUTION_TYPE_LABELS_ZH,
    INSTITUTION_TYPES,
    REGION_LABELS,
    REGION_LABELS_ZH,
    REGIONS,
)
from orders.money import format_amount, format_compact, format_rate
from providers.credibility import recompute_all

DEFAULT_SEED = 20261123
# Published in the README and printed by the loader: this is a public demo password.
DEMO_PASSWORD = "Demo-password-2026"  # noqa: S105
# "Today" for the demo: every created/published date is computed back from here.
REFERENCE_NOW = datetime(2026, 11, 1, tzinfo=UTC)
ENTERPRISE_COUNT = 3000
CURRENCY = "CNY"

BUYER_EMAIL = "buyer@demo.example"
PROVIDER_EMAIL = "provider@demo.example"
STAFF_EMAIL = "staff@demo.example"
ADMIN_EMAIL = "admin@demo.example"
KNOWN_LOGINS = (
    ("enterprise", BUYER_EMAIL),
    ("provider", PROVIDER_EMAIL),
    ("staff", STAFF_EMAIL),
    ("admin", ADMIN_EMAIL),
)

# How many listings get each status other than "published" (besides the demo provider's
# own draft and pending listing), so every status shows up somewhere.
EXTRA_STATUSES = {"draft": 6, "pending_review": 5, "archived": 4, "suspended": 2}
FEATURED_COUNT = 12
MODES = {"p": "packaged", "q": "quote", "f": "financial"}  # template letters
PACKAGE_NAMES = {1: ["Standard"], 2: ["Basic", "Premium"], 3: ["Basic", "Standard", "Premium"]}
# Share of a category's listings offered by its primary institution type (an IP agency rather
# than an advisory firm for IP strategy, and so on); the rest go to the other fitting types.
PRIMARY_TYPE_SHARE = 0.75


class DemoDataError(RuntimeError):
    """The demo data cannot be loaded into this database; the message says why."""


@dataclass
class _Institution:
    index: int
    type: str
    region: str
    name_en: str
    name_zh: str
    brand_en: str
    brand_zh: str
    domain: str
    row: dict
    owner: dict
    listed: bool = True
    load: int = 0


@dataclass
class _Listing:
    row: dict
    institution: _Institution
    top: str
    first_in_category: bool
    packages: list[dict] = field(default_factory=list)
    status: str = "published"


@dataclass
class _Plan:
    institutions: list[_Institution]
    listings: list[_Listing]
    enterprises: list[dict]
    enterprise_owners: list[dict]
    staff: list[dict]
    demo_provider: _Institution
    hidden: dict[str, _Institution]


# --------------------------------------------------------------------------- public entry point
def load_demo_data(session: Session, seed: int = DEFAULT_SEED,
                   echo: Callable[[str], object] | None = None, *,
                   enterprises: int = ENTERPRISE_COUNT) -> str:
    """Load the demo supermarket (flushed, not committed) and return a printable summary.

    Refuses with ``DemoDataError`` when listings already exist or a demo login is taken, so it
    never duplicates. ``enterprises`` lets tests load a smaller buyer base; everything else is
    always loaded at full size.
    """
    say = echo or (lambda _message: None)
    started = time.perf_counter()
    seed_categories(session)
    if session.scalar(select(Product.id).limit(1)) is not None:
        raise DemoDataError(
            "The database already has listings; the demo data is only loaded into an empty "
            "catalogue (use `load-demo --if-empty` to skip quietly).")
    known = [email for _role, email in KNOWN_LOGINS]
    taken = session.scalars(select(User.email).where(User.email.in_(known))).all()
    if taken:
        raise DemoDataError(f"Demo accounts already exist: {', '.join(sorted(taken))}.")
    categories = {c.slug: c.id for c in session.scalars(select(Category))}
    missing = [slug for _s, _n, _z, children in CATEGORY_TREE for slug, *_ in children
               if slug not in categories]
    if missing:
        raise DemoDataError(f"Categories missing from the database: {', '.join(missing)}.")
    used_codes = set(session.scalars(
        select(Organisation.credit_code).where(Organisation.credit_code.is_not(None))))
    used_emails = set(session.scalars(select(User.email)))

    rng = random.Random(seed)
    plan = build_plan(rng, used_codes=used_codes, used_emails=used_emails,
                      enterprise_count=enterprises)
    say(f"Planned {len(plan.institutions)} institutions, {len(plan.listings)} listings and "
        f"{len(plan.enterprises)} enterprises (seed {seed}).")

    # Hashing is deliberately slow (scrypt): hash once and share it among the demo accounts.
    password_hash = hash_password(DEMO_PASSWORD)
    _write(session, plan, categories, password_hash, say)

    # Credibility badges from the start; every listing is already queued for the index.
    say(str(recompute_all(session, REFERENCE_NOW, queue_listings=False)))
    elapsed = time.perf_counter() - started
    return _summary(plan, seed, elapsed)


# --------------------------------------------------------------------------- planning
def build_plan(rng: random.Random, *, used_codes: set[str] | None = None,
               used_emails: set[str] | None = None,
               enterprise_count: int = ENTERPRISE_COUNT) -> _Plan:
    """Every row of the demo as plain dictionaries, decided by ``rng`` alone."""
    used_codes = set() if used_codes is None else used_codes
    used_emails = set() if used_emails is None else used_emails
    institutions = _plan_institutions(rng, used_codes, used_emails)
    demo_provider = institutions[_first_index(institutions, "ip_agency")]
    hidden = _hide_two(rng, institutions)
    listings = _plan_listings(rng, institutions, demo_provider)
    _assign_statuses(rng, listings, demo_provider)
    enterprises, owners = _plan_enterprises(rng, enterprise_count, used_codes, used_emails)
    staff = [
        _user_row(STAFF_EMAIL, "王芳 Wang Fang", "0512-6588 2001", "staff", None,
                  REFERENCE_NOW - timedelta(days=900), REFERENCE_NOW - timedelta(days=1)),
        _user_row(ADMIN_EMAIL, "赵磊 Zhao Lei", "0512-6588 2000", "admin", None,
                  REFERENCE_NOW - timedelta(days=930), REFERENCE_NOW - timedelta(days=2)),
    ]
    return _Plan(institutions, listings, enterprises, owners, staff, demo_provider, hidden)


def _first_index(institutions: list[_Institution], type_code: str) -> int:
    return next(i.index for i in institutions if i.type == type_code)


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _moment(rng: random.Random, days_lo: int, days_hi: int) -> datetime:
    """A time between ``days_hi`` and ``days_lo`` days before the reference date."""
    return REFERENCE_NOW - timedelta(days=rng.randint(days_lo, days_hi),
                                     seconds=rng.randint(0, 86_399))


def _unique_code(rng: random.Random, division: str, used: set[str]) -> str:
    while True:
        code = credit_code.generate(rng, division)
        if code not in used:
            used.add(code)
            return code


def _brand(rng: random.Random, syllables, used: set[str] | None = None) -> tuple[str, str]:
    """Two syllables make a brand: ("Yuan", 元) + ("He", 和) -> ("Yuanhe", "元和")."""
    while True:
        (first_en, first_zh), (second_en, second_zh) = rng.sample(syllables, 2)
        second = second_en.lower()
        # Pinyin marks a syllable that starts with a vowel: Xin'an, not Xinan.
        brand_en = first_en + ("'" if second[0] in "aeo" else "") + second
        brand_zh = first_zh + second_zh
        if used is None or brand_zh not in used:
            if used is not None:
                used.add(brand_zh)
            return brand_en, brand_zh


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _person(rng: random.Random) -> tuple[str, str]:
    """(display name, email local part), e.g. ("张伟 Zhang Wei", "wei.zhang")."""
    surname_en, surname_zh = rng.choice(content.SURNAMES)
    given_en, given_zh = rng.choice(content.GIVEN_NAMES)
    return f"{surname_zh}{given_zh} {surname_en} {given_en}", f"{given_en}.{surname_en}".lower()


def _landline(rng: random.Random, region: str) -> str:
    area = content.PLACES[region][3]
    return f"{area}-{rng.randint(5000, 6999)} {rng.randint(0, 9999):04d}"


def _mobile(rng: random.Random) -> str:
    return f"1{rng.choice('3589')}{rng.randint(0, 9)}-{rng.randint(0, 9999):04d}-{rng.randint(0, 9999):04d}"


def _unique_email(local: str, domain: str, used: set[str]) -> str:
    email, n = f"{local}@{domain}", 1
    while email in used:
        n += 1
        email = f"{local}{n}@{domain}"
    used.add(email)
    return email


def _user_row(email, full_name, phone, role, org_index, created_at, last_login_at) -> dict:
    return {
        "email": email, "full_name": full_name, "phone": phone, "role": role,
        "_org": org_index, "is_org_owner": org_index is not None, "active": True,
        "session_version": 1, "created_at": created_at, "last_login_at": last_login_at,
    }


def _ordered_regions(codes: set[str]) -> list[str]:
    return [code for code, _en, _zh in REGIONS if code in codes]


def _regions_served(rng: random.Random, type_code: str, home: str) -> list[str]:
    served = {home}
    if home.startswith("suzhou") or home in ("kunshan", "changshu", "zhangjiagang", "taicang"):
        served.add("suzhou")
    nearby = [code for code in content.PLACES if code != home]
    served.update(rng.sample(nearby, rng.randint(1, 3)))
    if rng.random() < 0.55:
        served.add("jiangsu")
    if type_code in ("ip_agency", "venture_capital", "testing_lab", "tech_transfer",
                     "advisory", "insurance") and rng.random() < 0.3:
        served.add("national")
    return _ordered_regions(served)


def _plan_institutions(rng: random.Random, used_codes: set[str],
                       used_emails: set[str]) -> list[_Institution]:
    used_names: set[str] = set()
    used_brands = {content.DEMO_PROVIDER["brand_zh"]}
    used_domains: set[str] = set()
    institutions: list[_Institution] = []
    for type_code, _en, _zh in INSTITUTION_TYPES:
        for n in range(content.INSTITUTION_COUNTS[type_code]):
            if type_code == "ip_agency" and n == 0:
                demo = content.DEMO_PROVIDER
                region = demo["region"]
                name_en, name_zh = demo["name_en"], demo["name_zh"]
                brand_en, brand_zh, domain = demo["brand_en"], demo["brand_zh"], demo["domain"]
            else:
                region, name_en, name_zh, brand_en, brand_zh, domain = _institution_name(
                    rng, type_code, used_names, used_brands, used_domains)
            used_names.add(name_en)
            used_domains.add(domain)
            institutions.append(_institution(
                rng, len(institutions), type_code, region, name_en, name_zh, brand_en, brand_zh,
                domain, used_codes, used_emails, demo_owner=(type_code == "ip_agency" and n == 0)))
    return institutions


def _institution_name(rng, type_code, used_names, used_brands, used_domains):
    while True:
        region = _weighted(rng, content.HOME_REGION_WEIGHTS)
        if type_code in ("bank", "insurance"):
            # Branches of (fictional) banks and insurers carry the district's name.
            parents = content.BANK_PARENTS if type_code == "bank" else content.INSURERS
            parent_en, parent_zh, parent_slug, brand_en, brand_zh = rng.choice(parents)
            place_en, place_zh = content.PLACES[region][:2]
            pattern_en, pattern_zh = (content.BANK_NAME if type_code == "bank"
                                      else content.INSURER_NAME)
            name_en = pattern_en.format(parent=parent_en, place=place_en)
            name_zh = pattern_zh.format(parent_zh=parent_zh, place_zh=place_zh)
            domain = f"{parent_slug}-{_slug(place_en)}"
        else:
            place_en, place_zh = content.PLACES[content.NAME_PLACE.get(region, region)][:2]
            pattern_en, pattern_zh, suffix = rng.choice(content.INSTITUTION_NAME_PATTERNS[type_code])
            brand_en, brand_zh = _brand(rng, content.INSTITUTION_SYLLABLES, used_brands)
            name_en = pattern_en.format(place=place_en, brand=brand_en)
            name_zh = pattern_zh.format(place=place_zh, brand=brand_zh)
            domain = f"{_slug(brand_en)}-{suffix}"
        if name_en not in used_names and domain not in used_domains:
            return region, name_en, name_zh, brand_en, brand_zh, domain


def _institution(rng, index, type_code, region, name_en, name_zh, brand_en, brand_zh, domain,
                 used_codes, used_emails, *, demo_owner: bool) -> _Institution:
    place_en, place_zh, division, _area = content.PLACES[region]
    founded = rng.randint(*content.FOUNDED[type_code])
    joined = _moment(rng, 600, 1400)
    verified_at = joined + timedelta(days=rng.randint(3, 30), seconds=rng.randint(0, 86_399))
    contact_name, local = _person(rng)
    row = {
        "kind": "provider",
        "name": f"{name_en} {name_zh}",
        "credit_code": _unique_code(rng, division, used_codes),
        "region": region, "industry": None, "size": None,
        "institution_type": type_code,
        "regions_served": _regions_served(rng, type_code, region),
        "description": "",
        "website": f"https://www.{domain}.example.com",
        "contact_name": contact_name,
        "contact_phone": _landline(rng, region),
        "contact_email": f"service@{domain}.example.com",
        "founded_year": founded,
        "verification_status": "verified", "verified_at": verified_at,
        "suspended": False, "suspended_reason": None,
        "created_at": joined,
    }
    row["description"] = _institution_description(rng, type_code, name_en, name_zh, place_en,
                                                   place_zh, founded, row["regions_served"])
    email = (PROVIDER_EMAIL if demo_owner
             else _unique_email(local, f"{domain}.example.com", used_emails))
    owner = _user_row(email, contact_name, _mobile(rng), "provider", index, joined,
                      _moment(rng, 0, 30))
    return _Institution(index, type_code, region, name_en, name_zh, brand_en, brand_zh, domain,
                        row, owner)


def _institution_description(rng, type_code, name_en, name_zh, place_en, place_zh, founded,
                             served) -> str:
    intro_en, intro_zh, strengths = content.INSTITUTION_PROFILES[type_code]
    (f1_en, f1_zh), (f2_en, f2_zh) = rng.sample(content.FIELDS, 2)
    values = {
        "name_en": name_en, "name_zh": name_zh, "place_en": place_en, "place_zh": place_zh,
        "staff": rng.randint(8, 120), "clients": rng.randint(12, 240) * 10, "year": founded,
        "f1_en": f1_en, "f2_en": f2_en, "f1_zh": f1_zh, "f2_zh": f2_zh,
    }
    parts = [intro_en.format(**values), intro_zh.format(**values)]
    picked = rng.sample(strengths, rng.randint(3, 4))
    parts.append("**Why clients choose us · 我们的优势**\n\n"
                 + "\n".join(f"- {en} · {zh}" for en, zh in picked))
    if rng.random() < 0.6:
        parts.append("Service area · 服务区域: "
                     + ", ".join(REGION_LABELS[code] for code in served) + " · "
                     + "、".join(REGION_LABELS_ZH[code] for code in served))
    return "\n\n".join(parts)


def _hide_two(rng: random.Random, institutions: list[_Institution]) -> dict[str, _Institution]:
    """One advisory firm awaiting (re-)verification and one suspended lab: both unlisted."""
    pending = rng.choice([i for i in institutions if i.type == "advisory"])
    pending.row.update(verification_status="pending", verified_at=None)
    suspended = rng.choice([i for i in institutions if i.type == "testing_lab"])
    suspended.row.update(suspended=True, suspended_reason=content.SUSPENSION_REASON)
    pending.listed = suspended.listed = False
    return {"pending": pending, "suspended": suspended}


# --------------------------------------------------------------------------- listings
def _plan_listings(rng: random.Random, institutions: list[_Institution],
                   demo_provider: _Institution) -> list[_Listing]:
    used_titles: set[str] = set()
    listings: list[_Listing] = []
    for top, _name, _zh, children in CATEGORY_TREE:
        for slug, *_labels in children:
            sub = content.SUBCATEGORIES[slug]
            for k in range(sub.count):
                if top == "ip" and k == 0 or slug == "patent-application" and k in (1, 2):
                    # The provider@ login's agency gets a listing in every IP sub-category.
                    institution = demo_provider
                else:
                    institution = _pick_institution(rng, institutions, sub, first=(k == 0))
                institution.load += 1
                listings.append(_plan_listing(rng, top, slug, sub, institution, used_titles,
                                              first=(k == 0)))
    return listings


def _pick_institution(rng, institutions, sub, *, first: bool) -> _Institution:
    """The least busy institution of a fitting type. Mostly the primary type; until every
    institution of that type has a listing, always it. The first listing of a category goes
    to a listed institution, so every category has something to show."""
    primary = [i for i in institutions if i.type == sub.types[0]]
    if first:
        pool = [i for i in primary if i.listed]
    elif (len(sub.types) == 1 or any(i.load == 0 for i in primary)
          or rng.random() < PRIMARY_TYPE_SHARE):
        pool = primary
    else:
        other = rng.choice(sub.types[1:])
        pool = [i for i in institutions if i.type == other]
    lowest = min(i.load for i in pool)
    return rng.choice([i for i in pool if i.load == lowest])


def _wan(yuan: int) -> str:
    """Chinese amount in units of 10,000: 5_000_000 -> "500万元"."""
    return f"{yuan // 10_000}万元" if yuan % 10_000 == 0 else f"{yuan:,}元"


def _financial_terms(rng: random.Random, spec: dict) -> dict:
    amount_min = rng.choice(spec["amin"])
    amount_max = rng.choice([a for a in spec["amax"] if a > amount_min])
    rate_lo, rate_hi, spread_lo, spread_hi = spec["rate"]
    rate_min = rng.randint(rate_lo, rate_hi) // 5 * 5
    rate_max = rate_min + rng.randint(spread_lo, spread_hi) // 5 * 5
    term_min = rng.choice(spec["tmin"])
    term_max = rng.choice([t for t in spec["tmax"] if t >= term_min])
    return {
        "amount_min": amount_min * 100, "amount_max": amount_max * 100,
        "rate_min_bp": rate_min, "rate_max_bp": rate_max,
        "term_min_months": term_min, "term_max_months": term_max,
        "service_fee": rng.choice(spec["fee"]) * 100,
        "_labels": (spec["amount_label"], spec["rate_label"]),
    }


def _nice(yuan: float) -> int:
    """Round a price the way a price list would: ¥3,800, ¥12,500, ¥45,000."""
    step = 50 if yuan < 1_000 else 100 if yuan < 10_000 else 500 if yuan < 50_000 else 1_000
    return max(step, int(round(yuan / step)) * step)


def _package_prices(rng: random.Random, lo: int, hi: int, count: int) -> list[int]:
    bands = {1: [(0.0, 1.0)], 2: [(0.0, 0.4), (0.5, 1.0)], 3: [(0.0, 0.3), (0.35, 0.65), (0.7, 1.0)]}
    prices = [_nice(lo + (hi - lo) * rng.uniform(a, b)) for a, b in bands[count]]
    for i in range(1, len(prices)):
        if prices[i] <= prices[i - 1]:
            prices[i] = _nice(prices[i - 1] * 1.3)
    return [yuan * 100 for yuan in prices]  # fen


def _package_days(rng: random.Random, first: int, lo: int, hi: int, count: int) -> list[int]:
    days = [first]
    step = max(1, (hi - lo) // 5)
    for _ in range(count - 1):
        days.append(days[-1] + rng.randint(step, 2 * step))
    return days


def _titles(template, focus, institution, terms) -> tuple[str, str]:
    amount_max = terms["amount_max"] if terms else 0  # fen
    values_en = {"f": focus[0] if focus else "", "brand": institution.brand_en,
                 "amt": format_compact(amount_max, CURRENCY) if terms else ""}
    values_zh = {"f": focus[1] if focus else "", "brand": institution.brand_zh,
                 "amt": _wan(amount_max // 100) if terms else ""}
    return template.en.format(**values_en), template.zh.format(**values_zh)


def _plan_listing(rng: random.Random, top: str, slug: str, sub, institution: _Institution,
                  used_titles: set[str], *, first: bool) -> _Listing:
    lang = "zh" if rng.random() < 0.5 else "en"
    templates = [t for t in sub.templates if t.only is None or institution.type in t.only]
    templates = templates or list(sub.templates)
    rng.shuffle(templates)
    chosen = None
    for template in templates:
        focuses = list(sub.focus) if "{f}" in template.en else [None]
        rng.shuffle(focuses)
        for focus in focuses:
            mode = MODES[rng.choice(template.modes)]
            terms = (_financial_terms(rng, template.terms or sub.terms)
                     if mode == "financial" else None)
            title_en, title_zh = _titles(template, focus, institution, terms)
            # One listing per service: the English core must be new, whatever the language.
            if title_en not in used_titles:
                title = title_zh if lang == "zh" else title_en
                chosen = (template, focus, mode, terms, title_en, title_zh, title)
                break
        if chosen:
            break
    if chosen is None:
        # Every combination is taken: name the institution to tell the listings apart.
        template, focus = templates[0], (rng.choice(sub.focus) if "{f}" in templates[0].en else None)
        mode = MODES[template.modes[0]]
        terms = _financial_terms(rng, template.terms or sub.terms) if mode == "financial" else None
        title_en, title_zh = _titles(template, focus, institution, terms)
        title_en += f" by {institution.brand_en}"
        title_zh += f"（{institution.brand_zh}）"
        title = title_zh if lang == "zh" else title_en
        chosen = (template, focus, mode, terms, title_en, title_zh, title)
    template, focus, mode, terms, title_en, title_zh, title = chosen
    used_titles.add(title_en)

    # Prose speaks of an industry; instruments and product families are for titles only.
    prose_focus = focus if focus in content.FIELDS else rng.choice(content.FIELDS)
    days = rng.randint(*sub.days)
    values_en = {"f": prose_focus[0], "days": days, "clients": rng.randint(8, 90) * 10}
    values_zh = {**values_en, "f": prose_focus[1]}
    pitches = [(en.format(**values_en), zh.format(**values_zh)) for en, zh in sub.pitches]

    row = {
        "category_id": None, "provider_id": None,
        # Both languages: the listing's own as the title, the other as the second-language
        # title (pages show the viewer's language first).
        "title": title, "title_alt": title_en if lang == "zh" else title_zh,
        "pricing_mode": mode, "currency": CURRENCY,
        "price_from": None, "quote_brief": None,
        "amount_min": None, "amount_max": None, "rate_min_bp": None, "rate_max_bp": None,
        "term_min_months": None, "term_max_months": None, "service_fee": None,
        "delivery_days": days,
    }
    listing = _Listing(row=row, institution=institution, top=top, first_in_category=first)
    row["_slug"] = slug
    # The first three deliverables are the core of the service (every package has them, in
    # order); the extras that bigger packages add come in a listing-specific order.
    core, extras = list(sub.deliverables[:3]), list(sub.deliverables[3:])
    highlights = core + rng.sample(extras, len(extras))
    if mode == "packaged":
        lo, hi = template.price or sub.price
        count = rng.choices((1, 2, 3), weights=(2, 3, 5))[0]
        prices = _package_prices(rng, lo, hi, count)
        package_days = _package_days(rng, days, *sub.days, count)
        sizes = {1: [rng.randint(3, 5)], 2: [rng.randint(2, 3), 5],
                 3: [rng.randint(2, 3), 4, 6]}[count]
        language = 0 if lang == "en" else 1
        for position, (name, price, pdays, size) in enumerate(
                zip(PACKAGE_NAMES[count], prices, package_days, sizes, strict=True)):
            listing.packages.append({
                "position": position, "name": name, "price": price, "delivery_days": pdays,
                "deliverables": "\n".join(item[language] for item in highlights[:size]),
            })
        row["price_from"] = min(prices)
        row["delivery_days"] = package_days[0]
        included = highlights[:sizes[-1]]
    elif mode == "quote":
        brief = sub.quote_brief or ("Describe what you need, your timeline and your budget.",
                                    "请描述您的需求、时间要求和预算。")
        row["quote_brief"] = brief[0] if lang == "en" else f"{brief[1]}\n\n{brief[0]}"
        included = highlights[:rng.randint(4, 5)]
    else:
        row.update({key: value for key, value in terms.items() if not key.startswith("_")})
        row["price_from"] = terms["service_fee"]
        included = highlights[:rng.randint(4, 5)]

    tags = rng.sample(sub.tags, rng.randint(2, 4))
    if focus:
        tags.append(focus[1] if lang == "zh" else focus[0])
    row["tags"] = list(dict.fromkeys(tags))
    served = institution.row["regions_served"]
    if len(served) > 2 and rng.random() < 0.4:
        keep = set(rng.sample(served, rng.randint(1, len(served) - 1))) | {institution.region}
        row["regions"] = _ordered_regions(keep)
    else:
        row["regions"] = list(served)
    row["summary"] = _summary_text(lang, sub, pitches, included, title_en)
    row["summary_alt"] = _summary_text("en" if lang == "zh" else "zh", sub, pitches, included,
                                       title_en)
    row["description"] = _description(lang, sub, pitches, included, mode, terms, row,
                                      institution, top=top)
    return listing


def _summary_text(lang: str, sub, pitches, included, title_en: str) -> str:
    """A card's summary: one of the sub-category's pitches, two of this listing's own
    deliverables and who it is for, so neighbouring cards do not read alike, in one
    language (the other goes to ``summary_alt``). The choices come from a stream seeded by the title,
    so the demo's main random stream (and everything planned after it) does not move."""
    pick = random.Random(f"summary:{title_en}")
    pitch_en, pitch_zh = pick.choice(pitches)
    (first_en, first_zh), (second_en, second_zh) = pick.sample(included, 2)
    audience_en, audience_zh = pick.choice(sub.audience)
    if lang == "en":
        text = (f"{pitch_en} Includes {_lower_first(first_en)} and {_lower_first(second_en)}; "
                f"for {_lower_first(audience_en)}.")
    else:
        text = f"{pitch_zh}服务包括{first_zh}、{second_zh}，适用于{audience_zh}。"
    return text[:500]


def _lower_first(text: str) -> str:
    """"Marked-up contract" -> "marked-up contract"; "CNAS report" and "GB tests" stay."""
    return text if text[1:2].isupper() else text[0].lower() + text[1:]


def _a(label: str) -> str:
    """"Bank" -> "a bank", "IP agency" -> "an IP agency", "R&D ..." -> "an R&D ..."."""
    if not label[1:2].isupper():
        label = label[0].lower() + label[1:]
    article = "an" if label[0] in "aeiouAEIOU" or label.startswith(("R&D", "IP")) else "a"
    return f"{article} {label}"


def _terms_lines(lang: str, terms: dict, row: dict) -> list[str]:
    (amount_en, amount_zh), (rate_en, rate_zh) = terms["_labels"]
    amin, amax = row["amount_min"], row["amount_max"]
    rates = f"{format_rate(row['rate_min_bp'])} – {format_rate(row['rate_max_bp'])}"
    tmin, tmax = row["term_min_months"], row["term_max_months"]
    fee = row["service_fee"]
    if lang == "en":
        term = f"{tmin} months" if tmin == tmax else f"{tmin} – {tmax} months"
        return [
            f"- **{amount_en}:** {format_compact(amin, CURRENCY)} – {format_compact(amax, CURRENCY)}",
            f"- **{rate_en}:** {rates}",
            f"- **Term:** {term}",
            f"- **Service fee:** {format_amount(fee, CURRENCY) if fee else 'none'}",
        ]
    term = f"{tmin}个月" if tmin == tmax else f"{tmin}–{tmax}个月"
    return [
        f"- **{amount_zh}：** {_wan(amin // 100)} – {_wan(amax // 100)}",
        f"- **{rate_zh}：** {rates}",
        f"- **期限：** {term}",
        f"- **服务费：** {format_amount(fee, CURRENCY) if fee else '无'}",
    ]


def _description(lang, sub, pitches, included, mode, terms, row, institution, *,
                 top: str) -> str:
    steps = content.STEPS[sub.steps or top]
    audience = sub.audience
    if lang == "en":
        parts = [
            "## Overview",
            " ".join(en for en, _zh in pitches),
            f"Provided by **{institution.name_en}** ({institution.name_zh}), "
            f"{_a(INSTITUTION_TYPE_LABELS[institution.type])} based in "
            f"{REGION_LABELS[institution.region]}.",
            "## Highlights" if mode == "financial" else "## What you get",
            "\n".join(f"- {en}" for en, _zh in included),
        ]
        if mode == "financial":
            parts += ["## Key terms", "\n".join(_terms_lines("en", terms, row))]
        parts += [
            "## How it works",
            "\n".join(f"{n}. {en}" for n, (en, _zh) in enumerate(steps, 1)),
            "## Who it is for",
            "\n".join(f"- {en}" for en, _zh in audience),
        ]
        if mode == "quote":
            parts += ["## Requesting a quote", row["quote_brief"]]
        return "\n\n".join(parts)
    parts = [
        "## 服务简介 · Overview",
        "".join(zh for _en, zh in pitches),
        f"> {pitches[0][0]}",
        f"服务机构：**{institution.name_zh}**（{INSTITUTION_TYPE_LABELS_ZH[institution.type]}，"
        f"{REGION_LABELS_ZH[institution.region]}）",
        "## 产品亮点 · Highlights" if mode == "financial" else "## 服务内容 · What you get",
        "\n".join(f"- {zh}" for _en, zh in included),
    ]
    if mode == "financial":
        parts += ["## 主要条款 · Key terms", "\n".join(_terms_lines("zh", terms, row))]
    parts += [
        "## 服务流程 · How it works",
        "\n".join(f"{n}. {zh}（{en}）" for n, (en, zh) in enumerate(steps, 1)),
        "## 适用对象 · Who it is for",
        "\n".join(f"- {zh}" for _en, zh in audience),
    ]
    if mode == "quote":
        parts += ["## 询价须知 · Requesting a quote", row["quote_brief"]]
    return "\n\n".join(parts)


def _assign_statuses(rng: random.Random, listings: list[_Listing],
                     demo_provider: _Institution) -> None:
    """Statuses, dates, featured flags, voucher eligibility and counters."""
    demo_ip = [item for item in listings
               if item.institution is demo_provider and item.row["_slug"] == "patent-application"]
    demo_ip[1].status, demo_ip[2].status = "draft", "pending_review"
    candidates = [item for item in listings
                  if not item.first_in_category and item.institution.listed
                  and item.institution is not demo_provider]
    picked = rng.sample(candidates, sum(EXTRA_STATUSES.values()))
    for status, count in EXTRA_STATUSES.items():
        for item in picked[:count]:
            item.status = status
        picked = picked[count:]

    visible = [item for item in listings
               if item.status == "published" and item.institution.listed]
    featured: list[_Listing] = []
    for top, *_rest in CATEGORY_TREE:
        featured.append(rng.choice([item for item in visible if item.top == top]))
    rest = [item for item in visible if item not in featured]
    featured += rng.sample(rest, FEATURED_COUNT - len(featured))
    featured_ids = {id(item) for item in featured}

    for item in listings:
        row = item.row
        row["status"] = item.status
        row["featured"] = id(item) in featured_ids
        row["voucher_eligible"] = row["pricing_mode"] != "financial" and rng.random() < 0.5
        if item.status in ("draft", "pending_review"):
            created = _moment(rng, 2, 45)
            row["created_at"] = created
            row["updated_at"] = min(REFERENCE_NOW, created + timedelta(
                days=rng.randint(0, 1), seconds=rng.randint(600, 20_000)))
            row["published_at"] = None
            row["view_count"] = row["favourite_count"] = row["sales_count"] = 0
            continue
        published = _moment(rng, 200 if item.status == "archived" else 1, 540)
        row["published_at"] = published
        row["created_at"] = published - timedelta(days=rng.randint(1, 20),
                                                  seconds=rng.randint(0, 86_399))
        if item.status == "published":
            row["updated_at"] = published
        else:  # archived or suspended later on
            row["updated_at"] = published + (REFERENCE_NOW - published) * rng.uniform(0.3, 0.95)
        age = (REFERENCE_NOW - published).days
        views = int(age * rng.uniform(0.8, 5.0)) + rng.randint(10, 80)
        if row["featured"]:
            views = int(views * 1.8)
        share = {"packaged": (0.004, 0.03), "quote": (0.002, 0.012),
                 "financial": (0.003, 0.02)}[row["pricing_mode"]]
        row["view_count"] = views
        row["favourite_count"] = int(views * rng.uniform(0.01, 0.05))
        row["sales_count"] = int(views * rng.uniform(*share))


# --------------------------------------------------------------------------- enterprises
def _plan_enterprises(rng: random.Random, count: int, used_codes: set[str],
                      used_emails: set[str]) -> tuple[list[dict], list[dict]]:
    enterprises: list[dict] = []
    owners: list[dict] = []
    used_names: set[str] = set()
    for index in range(count):
        if index == 0:
            demo = content.DEMO_ENTERPRISE
            region, industry, size = demo["region"], demo["industry"], demo["size"]
            name = demo["name"]
            surname_en, surname_zh, given_en, given_zh = demo["contact"]
            contact = f"{surname_zh}{given_zh} {surname_en} {given_en}"
            email = BUYER_EMAIL
            used_emails.add(email)
            website = "https://www.demo-robotics.example.com"
            founded = 2019
        else:
            region = _weighted(rng, content.HOME_REGION_WEIGHTS)
            industry = _weighted(rng, content.INDUSTRY_WEIGHTS)
            size = _weighted(rng, content.SIZE_WEIGHTS)
            place_en, place_zh = content.PLACES[content.NAME_PLACE.get(region, region)][:2]
            while True:
                field_en, field_zh, field_slug = rng.choice(content.ENTERPRISE_FIELDS[industry])
                brand_en, brand_zh = _brand(rng, content.ENTERPRISE_SYLLABLES)
                suffix_zh = "股份有限公司" if size == "large" and rng.random() < 0.6 else "有限公司"
                name = (f"{place_zh}{brand_zh}{field_zh}{suffix_zh} "
                        f"{place_en} {brand_en} {field_en} Co., Ltd.")
                if name not in used_names:
                    break
            contact, local = _person(rng)
            domain = f"{_slug(brand_en)}-{field_slug}.example.com"
            email = _unique_email(local, domain, used_emails)
            website = f"https://www.{domain}" if rng.random() < 0.4 else None
            founded = (rng.randint(1998, 2018) if size in ("medium", "large")
                       else rng.randint(2008, 2025))
        used_names.add(name)
        joined = _moment(rng, 1, 1000)
        status = _weighted(rng, {"verified": 85, "pending": 10, "unverified": 5})
        verified_at = None
        if status == "verified":
            verified_at = min(REFERENCE_NOW, joined + timedelta(days=rng.randint(0, 5),
                                                                 seconds=rng.randint(600, 80_000)))
        if index == 0:
            status, verified_at = "verified", joined + timedelta(days=1)
        enterprises.append({
            "kind": "enterprise", "name": name,
            "credit_code": _unique_code(rng, content.PLACES[region][2], used_codes),
            "region": region, "industry": industry, "size": size, "institution_type": None,
            "regions_served": [], "description": "", "website": website,
            "contact_name": contact, "contact_phone": _mobile(rng), "contact_email": email,
            "founded_year": founded, "verification_status": status, "verified_at": verified_at,
            "suspended": False, "suspended_reason": None, "created_at": joined,
        })
        last_login = None if rng.random() < 0.3 else _moment(rng, 0, 120)
        if last_login is not None and last_login < joined:
            last_login = joined
        owners.append(_user_row(email, contact, enterprises[-1]["contact_phone"], "enterprise",
                                index, joined, last_login))
    return enterprises, owners


# --------------------------------------------------------------------------- writing
def _insert_ids(session: Session, model, rows: list[dict]) -> list[int]:
    """Bulk INSERT in one statement per batch, returning the new ids in row order."""
    if not rows:
        return []
    statement = insert(model).returning(model.id, sort_by_parameter_order=True)
    return list(session.scalars(statement, rows))


def _clean(row: dict) -> dict:
    return {key: value for key, value in row.items() if not key.startswith("_")}


def _users(rows: list[dict], org_ids: list[int], password_hash: str) -> list[dict]:
    out = []
    for row in rows:
        user = _clean(row)
        user["organisation_id"] = None if row["_org"] is None else org_ids[row["_org"]]
        user["password_hash"] = password_hash
        out.append(user)
    return out


def _write(session: Session, plan: _Plan, categories: dict[str, int], password_hash: str,
           say: Callable[[str], object]) -> None:
    institution_ids = _insert_ids(session, Organisation, [i.row for i in plan.institutions])
    session.execute(insert(User), _users([i.owner for i in plan.institutions],
                                         institution_ids, password_hash))
    say(f"Inserted {len(institution_ids)} service institutions and their owner accounts.")

    product_rows = []
    for item in plan.listings:
        row = _clean(item.row)
        row["provider_id"] = institution_ids[item.institution.index]
        row["category_id"] = categories[item.row["_slug"]]
        product_rows.append(row)
    product_ids = _insert_ids(session, Product, product_rows)
    package_rows = [{**package, "product_id": product_id}
                    for item, product_id in zip(plan.listings, product_ids, strict=True)
                    for package in item.packages]
    if package_rows:
        session.execute(insert(Package), package_rows)
    # Listings reach the search index only through the outbox; queue every one of them.
    session.execute(insert(SearchOutbox), [
        {"product_id": product_id, "reason": "demo data loaded", "created_at": REFERENCE_NOW}
        for product_id in product_ids])
    say(f"Inserted {len(product_ids)} listings with {len(package_rows)} packages.")

    enterprise_ids = _insert_ids(session, Organisation, plan.enterprises)
    session.execute(insert(User), _users(plan.enterprise_owners, enterprise_ids, password_hash)
                    + _users(plan.staff, [], password_hash))
    say(f"Inserted {len(enterprise_ids)} enterprises, their owners and the staff accounts.")
    session.flush()


# --------------------------------------------------------------------------- summary
def _summary(plan: _Plan, seed: int, elapsed: float) -> str:
    listings = plan.listings
    modes = Counter(item.row["pricing_mode"] for item in listings)
    statuses = Counter(item.status for item in listings)
    visible = [item for item in listings if item.status == "published" and item.institution.listed]
    types = Counter(i.type for i in plan.institutions)
    listed = sum(1 for i in plan.institutions if i.listed)
    categories_shown = len({item.row["_slug"] for item in visible})
    status_text = ", ".join(f"{status} {statuses[status]}" for status in
                            ("published", "draft", "pending_review", "archived", "suspended"))
    pending, suspended = plan.hidden["pending"], plan.hidden["suspended"]
    buyer_org = plan.enterprises[0]["name"] if plan.enterprises else "(none)"
    lines = [
        f"Demo supermarket loaded (seed {seed}) in {elapsed:.1f} s.",
        f"  Service institutions: {len(plan.institutions)} across {len(types)} types, "
        f"{listed} listed; hidden: {pending.name_en} (verification pending), "
        f"{suspended.name_en} (suspended).",
        f"  Listings: {len(listings)} (packaged {modes['packaged']}, quote {modes['quote']}, "
        f"financial {modes['financial']}); by status: {status_text}.",
        f"  Publicly visible: {len(visible)} listings in {categories_shown} sub-categories; "
        f"{sum(1 for item in listings if item.row['featured'])} featured, "
        f"{sum(1 for item in listings if item.row['voucher_eligible'])} voucher-eligible.",
        f"  Enterprises: {len(plan.enterprises):,} with one owner account each.",
        f"Logins (password {DEMO_PASSWORD}):",
        f"  enterprise  {BUYER_EMAIL:<22} {buyer_org}",
        f"  provider    {PROVIDER_EMAIL:<22} {plan.demo_provider.row['name']}",
        f"  staff       {STAFF_EMAIL:<22} platform monitor",
        f"  admin       {ADMIN_EMAIL:<22} platform admin",
    ]
    return "\n".join(lines)
