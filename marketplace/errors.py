"""Error pages that look like the site and never show a traceback."""

import logging

from flask import render_template
from flask_wtf.csrf import CSRFError

from marketplace.database import db

log = logging.getLogger(__name__)

MESSAGES = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Not allowed", "Your account does not have access to this page."),
    404: ("Page not found", "We could not find that page. It may have been withdrawn or moved."),
    405: ("Not allowed", "That action is not available here."),
    409: ("Conflict", "That action does not fit the current state of this item."),
    413: ("Too large", "The upload is larger than we accept."),
    429: ("Slow down", "Too many requests. Please wait a moment and try again."),
    500: ("Something went wrong", "An unexpected error occurred. It has been logged; please try again."),
}


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
        return render_error(400, "Your form expired or was sent without its security token. "
                                 "Please go back, reload the page and try again.")

    @app.errorhandler(500)
    def _server_error(exc):
        db.session.rollback()
        log.exception("Unhandled error", exc_info=getattr(exc, "original_exception", exc))
        return render_error(500)
