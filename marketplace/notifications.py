"""Notifications: an in-app notice per user plus an email in the outbox table.

Emails are only queued here, as ``EmailMessage`` rows in the same transaction as the
decision that caused them, with absolute links on SITE_URL (``absolute_url``). The
``flask send-mail`` command (``marketplace/mail.py``) delivers them through MAIL_BACKEND:
``smtp`` sends them, ``console`` prints them, and with the default ``outbox`` they stay in
the table, where tests read them and developers see them with ``flask outbox``.
"""

from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.config import DEFAULT_SITE_URL
from marketplace.i18n import DEFAULT_LOCALE
from marketplace.models import EmailMessage, Notification, Organisation, User


def site_url() -> str:
    """SITE_URL without a trailing slash: where people reach the site from a mail client."""
    try:
        from flask import current_app

        url = current_app.config.get("SITE_URL") or DEFAULT_SITE_URL
    except RuntimeError:  # outside an application context
        url = DEFAULT_SITE_URL
    return url.rstrip("/")


def absolute_url(link: str) -> str:
    """A site path ("/provider/institution", "/orders/7#rating") as a link a mail client can
    open: SITE_URL in front. In-app notices keep the path (the notification centre only
    follows links within the site); emails always carry this form. Absolute http(s) links
    are returned unchanged."""
    if link.startswith(("http://", "https://")):
        return link
    return site_url() + "/" + link.lstrip("/")


def recipient_locale(user: User) -> str:
    """The language a notice or email to ``user`` is written in: their saved choice, else
    the platform's default language."""
    if getattr(user, "locale", None):
        return user.locale
    try:
        from flask import current_app

        return current_app.config.get("DEFAULT_LOCALE") or DEFAULT_LOCALE
    except RuntimeError:  # outside an application context
        return DEFAULT_LOCALE


def _text(text) -> str:
    """A title or body given as a string, a lazy string or a callable returning one."""
    if callable(text):
        text = text()
    return str(text or "")


def notify(session: Session, user: User, kind: str, title, body="",
           link: str | None = None, email: bool = True) -> Notification:
    """A notice (and email) to ``user`` in the recipient's language: ``title`` and ``body``
    may be lazy strings (``lazy_gettext``) or callables; they are rendered under the
    recipient's locale, so the buyer reads Chinese while the actor's page is English."""
    with force_locale(recipient_locale(user)):
        title = _text(title)
        body = _text(body)
    notice = Notification(user_id=user.id, kind=kind, title=title, body=body, link=link)
    session.add(notice)
    if email and user.active:
        text = body + (f"\n\n{absolute_url(link)}" if link else "")
        session.add(EmailMessage(to_address=user.email, subject=title, body=text))
    return notice


def staff_note(note: str | None) -> str:
    """A staff member's note as a paragraph to append to a notification body ("" if none).

    Bodies are plain text: the notification page escapes them (and keeps line breaks) and
    the email is text/plain, so the note is added as written, never marked safe."""
    note = (note or "").strip()
    return "\n\n" + _("Note from platform staff: %(note)s", note=note) if note else ""


def notify_organisation(session: Session, organisation: Organisation, kind: str, title,
                        body="", link: str | None = None) -> int:
    """Notify every active member of an organisation; returns how many were notified."""
    members = session.scalars(
        select(User).where(User.organisation_id == organisation.id, User.active.is_(True))
    ).all()
    for member in members:
        notify(session, member, kind, title, body, link)
    return len(members)


def unread_count(session: Session, user: User) -> int:
    return session.scalar(
        select(func.count()).select_from(Notification).where(
            Notification.user_id == user.id, Notification.read_at.is_(None))
    )


def queue_email(session: Session, to_address: str, subject: str, body: str) -> EmailMessage:
    """An email to an address that may not have an account yet (e.g. a team invitation)."""
    message = EmailMessage(to_address=to_address, subject=subject, body=body)
    session.add(message)
    return message
