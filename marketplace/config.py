"""Configuration read from the environment (12-factor); defaults suit a laptop demo."""

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_DIR", ROOT / "instance"))
# An order message, progress update or delivery carries up to this many files at once
# (orders/files.py MAX_FILES); the request size limit is derived from it.
UPLOAD_FILES_PER_REQUEST = 5
UPLOAD_MARGIN_BYTES = 1024 * 1024
# Where people reach the site (`flask run`'s address by default); links in emails start here.
DEFAULT_SITE_URL = "http://127.0.0.1:5000"


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def load_config() -> dict:
    """Collect settings from environment variables into a Flask config mapping."""
    secret_key = os.environ.get("SECRET_KEY")
    if not secret_key:
        # Without a configured key every process restart logs users out; fine for a
        # demo, and it keeps real secrets out of the repository.
        secret_key = secrets.token_hex(32)
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'supermarket.sqlite'}"
    https = _bool("HTTPS", False)
    return {
        "SECRET_KEY": secret_key,
        "DATABASE_URL": database_url,
        "CURRENCY": os.environ.get("CURRENCY", "CNY"),
        # Language and time (marketplace/i18n.py): Chinese first, times shown and days and
        # months counted in the platform's zone; stored times stay UTC.
        "DEFAULT_LOCALE": os.environ.get("DEFAULT_LOCALE", "zh_Hans_CN"),
        "PLATFORM_TIMEZONE": os.environ.get("PLATFORM_TIMEZONE", "Asia/Shanghai"),
        "TRANSLATIONS_DIR": os.environ.get("TRANSLATIONS_DIR", str(ROOT / "translations")),
        "STRIPE_SECRET_KEY": os.environ.get("STRIPE_SECRET_KEY", "sk_test_localstripe"),
        "STRIPE_PUBLISHABLE_KEY": os.environ.get("STRIPE_PUBLISHABLE_KEY", "pk_test_localstripe"),
        "STRIPE_API_BASE": os.environ.get("STRIPE_API_BASE", ""),
        "STRIPE_WEBHOOK_SECRET": os.environ.get("STRIPE_WEBHOOK_SECRET", ""),
        # Seconds before a Stripe request is given up (well under GUNICORN_TIMEOUT).
        "STRIPE_TIMEOUT": float(os.environ.get("STRIPE_TIMEOUT") or 10),
        # Buying (orders/): the platform's bank account shown for corporate transfers, the
        # default commission, and the order timers run by `run-order-timers`.
        "BANK_ACCOUNT_NAME": os.environ.get("BANK_ACCOUNT_NAME",
                                            "Innovation Service Supermarket Operations Co., Ltd."),
        "BANK_NAME": os.environ.get("BANK_NAME", "Bank of Suzhou, Industrial Park Sub-branch"),
        "BANK_ACCOUNT_NUMBER": os.environ.get("BANK_ACCOUNT_NUMBER", "7066 0188 0000 1234 567"),
        "COMMISSION_DEFAULT_BP": _int("COMMISSION_DEFAULT_BP", 500),
        "PAYMENT_WINDOW_DAYS": _int("PAYMENT_WINDOW_DAYS", 3),
        "ACCEPT_WITHIN_HOURS": _int("ACCEPT_WITHIN_HOURS", 72),
        "AUTO_COMPLETE_DAYS": _int("AUTO_COMPLETE_DAYS", 7),
        # A submitted milestone the buyer leaves unanswered this many days is approved by the
        # timer (its share released from escrow); the buyer is told 3 days before.
        "MILESTONE_AUTO_APPROVE_DAYS": _int("MILESTONE_AUTO_APPROVE_DAYS", 14),
        "QUOTE_REQUEST_DAYS": _int("QUOTE_REQUEST_DAYS", 14),
        "QUOTE_VALID_DAYS": _int("QUOTE_VALID_DAYS", 14),
        # Contracts and 发票 (orders/contracts.py, orders/invoices.py): package orders from this
        # price (minor units; ¥50,000) carry a technology contract; a requested 发票 not
        # issued within INVOICE_OVERDUE_DAYS shows on the staff paperwork page.
        "CONTRACT_THRESHOLD": _int("CONTRACT_THRESHOLD", 5_000_000),
        "INVOICE_OVERDUE_DAYS": _int("INVOICE_OVERDUE_DAYS", 7),
        # Needs (demand/): institutions invited when a need opens; an open need with proposals
        # but no award expires NEED_AWARD_DAYS after its proposal deadline.
        "NEED_INVITES": _int("NEED_INVITES", 8),
        "NEED_AWARD_DAYS": _int("NEED_AWARD_DAYS", 30),
        # Credibility (providers/credibility.py): organisations scoring below this are listed
        # as low-credibility alerts in the monitors' console.
        "CREDIBILITY_ALERT_BELOW": _int("CREDIBILITY_ALERT_BELOW", 55),
        # Monitors' console (orders/sla.py): an open order due within this many days whose
        # progress is behind plan is "at risk".
        "SLA_WARNING_DAYS": _int("SLA_WARNING_DAYS", 3),
        # Ratings (catalog/reviews.py): reviews stay blind until both sides are in or this
        # many days have passed since the order completed.
        "REVIEW_BLIND_DAYS": _int("REVIEW_BLIND_DAYS", 14),
        "SEARCH_INDEX_DIR": os.environ.get("SEARCH_INDEX_DIR", str(INSTANCE_DIR / "search-index")),
        # Drain the search outbox in a background thread after requests. Unset: on, except
        # in tests (app.testing); production may turn it off and run `drain-outbox --loop`.
        "SEARCH_DRAIN_IN_PROCESS": (_bool("SEARCH_DRAIN_IN_PROCESS", True)
                                    if os.environ.get("SEARCH_DRAIN_IN_PROCESS") else None),
        # The cluster's search replicas (catalog/search/replicas.py): this host's replica name
        # (default: host name and index path) and how long applied outbox rows are kept.
        "SEARCH_REPLICA_NAME": os.environ.get("SEARCH_REPLICA_NAME") or None,
        "SEARCH_OUTBOX_RETENTION_SECONDS": (float(os.environ["SEARCH_OUTBOX_RETENTION_SECONDS"])
                                            if os.environ.get("SEARCH_OUTBOX_RETENTION_SECONDS")
                                            else None),
        # Search-index segments (catalog/search/index.py merge_segments): `drain-outbox`
        # merges the small segments its commits leave once there are more than this many
        # (0: only `search-merge` merges), and also rewrites the big one when more than this
        # share of its listings are old versions of edited or removed ones.
        "SEARCH_MERGE_SEGMENTS": _int("SEARCH_MERGE_SEGMENTS", 8),
        "SEARCH_MERGE_DELETED_SHARE": float(os.environ.get("SEARCH_MERGE_DELETED_SHARE")
                                            or 0.1),
        "UPLOAD_DIR": os.environ.get("UPLOAD_DIR", str(INSTANCE_DIR / "uploads")),
        # Email (marketplace/mail.py): how `send-mail` delivers the outbox table. `outbox`
        # sends nothing (development, tests), `console` prints to stdout (local
        # development), `smtp` sends through the SMTP_* server. Checked at start-up.
        "MAIL_BACKEND": (os.environ.get("MAIL_BACKEND") or "outbox").strip().lower(),
        "MAIL_FROM": (os.environ.get("MAIL_FROM")
                      or "Innovation Service Supermarket <no-reply@localhost>"),
        "SMTP_HOST": os.environ.get("SMTP_HOST") or "localhost",
        "SMTP_PORT": _int("SMTP_PORT", 25),
        "SMTP_STARTTLS": _bool("SMTP_STARTTLS", False),
        "SMTP_USERNAME": os.environ.get("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD", ""),
        "SMTP_TIMEOUT": _int("SMTP_TIMEOUT", 10),
        # The site's public address (scheme, host, port): emails carry absolute links on it,
        # never on the Host header of the request that caused them.
        "SITE_URL": os.environ.get("SITE_URL") or DEFAULT_SITE_URL,
        "PAGE_SIZE": _int("PAGE_SIZE", 24),
        # Largest request body (Flask's MAX_CONTENT_LENGTH, refused with a 413 page before the
        # body is read): by default the biggest upload form, five order files of
        # MAX_DOCUMENT_BYTES each, plus 1 MiB for the other fields and multipart framing.
        "MAX_CONTENT_LENGTH": _int("MAX_UPLOAD_BYTES", (
            max(UPLOAD_FILES_PER_REQUEST * _int("MAX_DOCUMENT_BYTES", 5 * 1024 * 1024),
                _int("MAX_LOGO_BYTES", 2 * 1024 * 1024)) + UPLOAD_MARGIN_BYTES)),
        # Per-file caps of institution uploads (qualification documents, logos).
        "MAX_DOCUMENT_BYTES": _int("MAX_DOCUMENT_BYTES", 5 * 1024 * 1024),
        "MAX_LOGO_BYTES": _int("MAX_LOGO_BYTES", 2 * 1024 * 1024),
        # Serving (marketplace/serving.py): one JSON log line per request, and the bare
        # /bench/hello route that bench/load.py compares every page with.
        "REQUEST_LOG": _bool("REQUEST_LOG", True),
        "BENCH_HELLO_ROUTE": _bool("BENCH_HELLO_ROUTE", False),
        # Whole-page cache for visitors who are not logged in (catalog/page_cache.py): the
        # most memory its rendered pages may take in each worker process; 0 turns it off.
        "PAGE_CACHE_MAX_BYTES": _int("PAGE_CACHE_MAX_BYTES", 32 * 1024 * 1024),
        # Listing views (shown only to the institution) are counted in each worker and
        # written in one batch at most this often, in seconds (catalog/services.py
        # record_view): a product page served from the cache then costs no write and commit.
        # 0 writes every view at once. A stopped worker loses at most this many seconds.
        "VIEW_COUNT_INTERVAL": _int("VIEW_COUNT_INTERVAL", 10),
        # Search analytics (catalog/search/console.py) likewise: each worker's counts of
        # searches written together at most this often (0: every search at once).
        "SEARCH_ANALYTICS_INTERVAL": _int("SEARCH_ANALYTICS_INTERVAL", 10),
        # Response compression (Flask-Compress; marketplace/serving.py): the fast levels.
        # Brotli quality 1 costs about 0.2 ms for a 60 kB page against 0.8 ms at the library's
        # default 4, for 14 % more bytes (gzip 1 against 6: 0.3 against 1 ms, 18 % more); on
        # a 2-core host the CPU is the scarcer (issue 17, docs/performance.md).
        "COMPRESS_BR_LEVEL": _int("COMPRESS_BR_LEVEL", 1),
        "COMPRESS_LEVEL": _int("COMPRESS_LEVEL", 1),
        "SESSION_COOKIE_SECURE": https,
        "REMEMBER_COOKIE_SECURE": https,
        "SESSION_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # Security (marketplace/security.py, accounts_service.py): rate limits per client
        # address (Flask-Limiter syntax; memory store unless RATELIMIT_STORAGE_URI names e.g.
        # redis://), account lockout after failed logins, password-reset link lifetime.
        # RATELIMIT_ON unset: on, except in tests (app.testing).
        "RATELIMIT_ON": (_bool("RATELIMIT_ENABLED", True)
                         if os.environ.get("RATELIMIT_ENABLED") else None),
        # A cluster's hosts share counters in Redis: RATELIMIT_STORAGE_URI, else REDIS_URL.
        "RATELIMIT_STORAGE_URI": (os.environ.get("RATELIMIT_STORAGE_URI")
                                  or os.environ.get("REDIS_URL") or "memory://"),
        "RATELIMIT_LOGIN": os.environ.get("RATELIMIT_LOGIN") or "10 per minute; 60 per hour",
        "RATELIMIT_SIGNUP": os.environ.get("RATELIMIT_SIGNUP") or "5 per minute; 20 per hour",
        "RATELIMIT_PASSWORD_RESET": (os.environ.get("RATELIMIT_PASSWORD_RESET")
                                     or "5 per minute; 20 per hour"),
        "RATELIMIT_SEARCH": os.environ.get("RATELIMIT_SEARCH") or "120 per minute",
        # Reverse proxies in front of the app whose X-Forwarded-For/-Proto to believe: the
        # client address (rate limits, logs) is the one the nearest trusted proxy saw.
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        "LOGIN_LOCKOUT_THRESHOLD": _int("LOGIN_LOCKOUT_THRESHOLD", 5),
        "LOGIN_LOCKOUT_SECONDS": _int("LOGIN_LOCKOUT_SECONDS", 60),
        "LOGIN_LOCKOUT_MAX_SECONDS": _int("LOGIN_LOCKOUT_MAX_SECONDS", 3600),
        "PASSWORD_RESET_MAX_AGE": _int("PASSWORD_RESET_MAX_AGE", 3600),
        # Operations (marketplace/jobs.py, backup.py): job lock files (SQLite) and backups.
        "JOB_LOCK_DIR": os.environ.get("JOB_LOCK_DIR", str(INSTANCE_DIR / "locks")),
        "BACKUP_DIR": os.environ.get("BACKUP_DIR", str(INSTANCE_DIR / "backups")),
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PREFERRED_URL_SCHEME": "https" if https else "http",
        "WTF_CSRF_TIME_LIMIT": None,
    }
