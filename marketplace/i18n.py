"""Languages, the platform's time zone and locale-aware formats (DESIGN.md §5b).

Chinese (``zh_Hans_CN``) is the default language and English the alternative. Message ids
in the code and templates are English; ``translations/<locale>/LC_MESSAGES/messages.po``
holds the Chinese (``scripts/i18n`` extracts, updates and compiles them; the README's two
commands compile them on every machine, the compiled ``.mo`` files are not committed).

Which language a request gets, first match wins:

1. a logged-in member's saved choice (``user_account.locale``, set by the navbar switch),
2. the ``lang`` cookie (a visitor's choice from the same switch),
3. the browser's ``Accept-Language``,
4. Chinese.

Times are stored in UTC (``UTCDateTime`` columns) and shown in ``PLATFORM_TIMEZONE``
(default ``Asia/Shanghai``). Anything that speaks of "days" or "months" (settlement
periods, dashboards, voucher validity) cuts them at local midnight: ``local_day_bounds``
and ``local_month_bounds`` turn a local calendar date into the UTC instants to query with.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from flask import current_app, g, has_app_context, has_request_context, request
from flask_babel import get_locale, get_translations
from flask_login import current_user

from marketplace.extensions import babel

DEFAULT_LOCALE = "zh_Hans_CN"
# Languages people can choose, in the order the switch shows them, with their own names.
LANGUAGES = {"zh_Hans_CN": "中文", "en": "English"}
LOCALE_COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600

# Date patterns per language: "2026年12月7日 14:05" and "7 Dec 2026, 14:05".
_DATETIME_PATTERNS = {"zh": "y年M月d日 HH:mm", "en": "d MMM y, HH:mm"}
_DATE_PATTERNS = {"zh": "y年M月d日", "en": "d MMM y"}

# --------------------------------------------------------------------------- choosing

def available_locales() -> list[str]:
    """The locales this app serves: the two languages plus test-only ones from config."""
    extra = current_app.config.get("EXTRA_LOCALES") or ()
    return [*LANGUAGES, *extra]


def normalise_locale(value: str | None) -> str | None:
    """Map what a cookie, a form or a browser says ("zh-CN", "zh", "en_GB") to one of ours."""
    if not value:
        return None
    value = value.strip().replace("-", "_")
    known = available_locales()
    if value in known:
        return value
    language = value.split("_", 1)[0].lower()
    if language == "zh":
        return DEFAULT_LOCALE
    if language == "en":
        return "en"
    return None


def select_locale() -> str:
    if not has_request_context():
        return default_locale()
    user = current_user
    if getattr(user, "is_authenticated", False):
        chosen = normalise_locale(getattr(user, "locale", None))
        if chosen:
            return chosen
    chosen = normalise_locale(request.cookies.get(LOCALE_COOKIE))
    if chosen:
        return chosen
    best = request.accept_languages.best_match(["zh", "zh-CN", "zh-Hans", "en"])
    return normalise_locale(best) or default_locale()


def default_locale() -> str:
    """Chinese unless ``DEFAULT_LOCALE`` says otherwise (the English-pinned tests do)."""
    return current_app.config.get("DEFAULT_LOCALE") or DEFAULT_LOCALE


def select_timezone() -> str:
    return current_app.config.get("PLATFORM_TIMEZONE") or DEFAULT_TIMEZONE


def current_locale() -> str:
    """The request's locale as a string ("zh_Hans_CN", "en"); Chinese outside requests."""
    if not has_request_context():
        return DEFAULT_LOCALE
    return _per_request_locale("locale_name", lambda: str(get_locale() or DEFAULT_LOCALE))


def _per_request_locale(name: str, compute):
    """``compute()``, kept for the rest of the request while its locale stays the same.

    Flask-Babel resolves the domain, the locale and its cache on every call (tens of
    microseconds), and a page asks hundreds of times (each ``_()`` in a template). The value
    is kept beside Flask-Babel's own request state and tied to the locale object it holds,
    so ``force_locale`` (mail in the recipient's language) and ``refresh()`` still switch.
    """
    state = g.get("_flask_babel") if has_app_context() else None
    if state is not None:
        kept = state.__dict__.get(name)
        if kept is not None and kept[0] is state.__dict__.get("babel_locale"):
            return kept[1]
    value = compute()  # resolves the locale: Flask-Babel's state exists from here on
    state = g.get("_flask_babel") if has_app_context() else None
    if state is not None and state.__dict__.get("babel_locale") is not None:
        setattr(state, name, (state.babel_locale, value))
    return value


def request_translations():
    """The gettext catalogue of this request's language (see ``_per_request_locale``)."""
    return _per_request_locale("translations", get_translations)


def html_lang(locale: str | None = None) -> str:
    """The value for ``<html lang>``: BCP 47 ("zh-Hans-CN", "en")."""
    return (locale or current_locale()).replace("_", "-")


def is_chinese(locale: str | None = None) -> bool:
    return (locale or current_locale()).startswith("zh")


# --------------------------------------------------------------------------- time

DEFAULT_TIMEZONE = "Asia/Shanghai"


def platform_zone(app=None) -> ZoneInfo:
    """The platform's zone: ``PLATFORM_TIMEZONE`` of the app (Asia/Shanghai outside one)."""
    if app is None and not has_app_context():
        return ZoneInfo(DEFAULT_TIMEZONE)
    config = (app or current_app).config
    return ZoneInfo(config.get("PLATFORM_TIMEZONE") or DEFAULT_TIMEZONE)


def to_local(moment: datetime, zone: ZoneInfo | None = None) -> datetime:
    """A stored UTC instant as an aware local time in the platform's zone (a naive value
    is taken as UTC)."""
    zone = zone or platform_zone()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone)


def local_today(now: datetime | None = None, zone: ZoneInfo | None = None) -> date:
    """Today's date on the platform's calendar (``now`` default the clock)."""
    moment = now or datetime.now(UTC)
    return to_local(moment, zone).date()


def local_day_bounds(day: date, zone: ZoneInfo | None = None) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a local calendar day."""
    zone = zone or platform_zone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return _utc(start), _utc(end)


def local_month_bounds(year: int, month: int,
                       zone: ZoneInfo | None = None) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a local calendar month."""
    zone = zone or platform_zone()
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return (_utc(datetime.combine(first, time.min, tzinfo=zone)),
            _utc(datetime.combine(following, time.min, tzinfo=zone)))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def format_datetime(moment: datetime | None, locale: str | None = None) -> str:
    """A stored instant for people, in the platform's zone: "2026年12月7日 14:05"."""
    if moment is None:
        return "—"
    locale = locale or current_locale()
    pattern = _DATETIME_PATTERNS["zh" if is_chinese(locale) else "en"]
    return babel_format_datetime(to_local(moment), pattern, locale=_formatting_locale(locale))


def format_date(value: date | datetime | None, locale: str | None = None) -> str:
    """A calendar date ("2026年12月7日", "7 Dec 2026"); an instant is first made local."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = to_local(value).date()
    locale = locale or current_locale()
    pattern = _DATE_PATTERNS["zh" if is_chinese(locale) else "en"]
    return babel_format_date(value, pattern, locale=_formatting_locale(locale))


def _formatting_locale(locale: str) -> Locale:
    try:
        return Locale.parse(locale)
    except (ValueError, TypeError):
        return Locale.parse("en")


# --------------------------------------------------------------------------- content

_CJK = re.compile("[\u3400-\u9fff]")


def has_cjk(text: str | None) -> bool:
    return bool(text) and _CJK.search(text) is not None


def local_text(primary: str | None, alternative: str | None = None,
               locale: str | None = None) -> str:
    """Of a text and its optional second-language version, the one in the viewer's
    language (judged by its script), falling back to the primary text."""
    if not alternative:
        return primary or ""
    if not primary:
        return alternative
    chinese = is_chinese(locale)
    for candidate in (primary, alternative):
        if has_cjk(candidate) == chinese:
            return candidate
    return primary


def local_name(obj, locale: str | None = None) -> str:
    """A record that carries both names (``name`` and ``name_zh``, e.g. categories)."""
    name, name_zh = getattr(obj, "name", None), getattr(obj, "name_zh", None)
    if is_chinese(locale):
        return name_zh or name or ""
    return name or name_zh or ""


# --------------------------------------------------------------------------- wiring

def init_app(app) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")  # stored times are UTC
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES",
                          str(app.config.get("TRANSLATIONS_DIR")))
    babel.init_app(app, locale_selector=select_locale, timezone_selector=select_timezone)
    env = app.jinja_env
    # The templates' _() and ngettext() with the catalogue looked up once per request.
    env.install_gettext_callables(
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    env.filters["datetime"] = format_datetime
    env.filters["date"] = format_date
    env.globals["html_lang"] = html_lang
    env.globals["current_locale"] = current_locale
    env.globals["LANGUAGES"] = LANGUAGES
    env.globals["local_text"] = local_text
    env.filters["local_name"] = local_name
