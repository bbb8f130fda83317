"""Error pages that look like the site and never show a traceback.

While the database is unreachable (restarting, failing over) every page answers 503 with
the site's own page, rendered without touching the database: the visitor is shown as not
logged in (loading the user is a query), and if even that fails a fixed page is sent. The
next request after the database is back gets a fresh connection (``pool_pre_ping``).
"""

import logging

from flask import g, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from marketplace.database import db

log = logging.getLogger(__name__)

MESSAGES = {
    400: (_l("Bad request"), _l("The request could not be understood.")),
    403: (_l("Not allowed"), _l("Your account does not have access to this page.")),
    404: (_l("Page not found"),
          _l("We could not find that page. It may have been withdrawn or moved.")),
    405: (_l("Not allowed"), _l("That action is not available here.")),
    409: (_l("Conflict"), _l("That action does not fit the current state of this item.")),
    413: (_l("Too large"), _l("The upload is larger than we accept.")),
    429: (_l("Slow down"), _l("Too many requests. Please wait a moment and try again.")),
    500: (_l("Something went wrong"),
          _l("An unexpected error occurred. It has been logged; please try again.")),
    503: (_l("Back in a moment"),
          _l("The site cannot reach its database just now. Nothing you sent was lost or "
             "half-done; please try again in a few seconds.")),
}

# Sent when even the site's own error page cannot be rendered.
BARE_503 = ("<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Back in a moment"
            "</title><h1>Back in a moment</h1><p>The Innovation Service Supermarket cannot "
            "reach its database just now. Please try again in a few seconds.</p></html>")


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` means "the database cannot be reached" (not a bug in a query)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def render_unavailable():
    """The 503 page, without a single query."""
    from flask_login import AnonymousUserMixin


    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - a dead connection may refuse even this
        db.session.remove()
    g._login_user = AnonymousUserMixin()  # the navbar must not load the user
    g.database_unavailable = True  # nor the category menu
    try:
        body, status = render_error(503)
    except Exception:  # noqa: BLE001
        log.exception("the 503 page itself failed; sending the bare one")
        body, status = BARE_503, 503
    return body, status, {"Retry-After": "5", "Cache-Control": "no-store"}


def render_error(status: int, detail: str | None = None):
    title, message = MESSAGES.get(status, MESSAGES[500])
    return render_template("errors/error.html", status=status, title=title,
                           message=detail or message), status


def register(app):
    for status in MESSAGES:
        if status == 500:
            continue
        app.register_error_handler(status, lambda exc, status=status: render_error(
            status, getattr(exc, "description", None) if status in (400, 409) else None))

    @app.errorhandler(CSRFError)
    def _csrf_error(exc):
        return render_error(400, _("Your form expired or was sent without its security token. "
                                   "Please go back, reload the page and try again."))

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_unreachable(exc):
        log.warning("database unreachable: %s", type(getattr(exc, "orig", exc)).__name__)
        return render_unavailable()

    @app.errorhandler(500)
    def _server_error(exc):

        original = getattr(exc, "original_exception", exc)
        if database_unavailable(original):
            log.warning("database unreachable: %s", type(original).__name__)
            return render_unavailable()
        log.exception("Unhandled error", exc_info=original)
        try:
            db.session.rollback()
            return render_error(500)
        except Exception as again:  # noqa: BLE001 - e.g. the database went away meanwhile
            if database_unavailable(again):
                return render_unavailable()
            raise
