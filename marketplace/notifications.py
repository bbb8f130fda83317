"""Notifications: an in-app notice per user plus an email in the outbox table.

Emails are only queued here (same transaction as the decision that caused them); the
`send-mail` command delivers queued emails when MAIL_BACKEND=smtp. With the default
MAIL_BACKEND=outbox they stay in the table, where development and tests read them.
"""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.models import EmailMessage, Notification, Organisation, User


def notify(session: Session, user: User, kind: str, title: str, body: str = "",
           link: str | None = None, email: bool = True) -> Notification:
    notice = Notification(user_id=user.id, kind=kind, title=title, body=body, link=link)
    session.add(notice)
    if email and user.active:
        text = body + (f"\n\n{link}" if link else "")
        session.add(EmailMessage(to_address=user.email, subject=title, body=text))
    return notice


def staff_note(note: str | None) -> str:
    """A staff member's note as a paragraph to append to a notification body ("" if none).

    Bodies are plain text: the notification page escapes them (and keeps line breaks) and
    the email is text/plain, so the note is added as written, never marked safe."""
    note = (note or "").strip()
    return f"\n\nNote from platform staff: {note}" if note else ""


def notify_organisation(session: Session, organisation: Organisation, kind: str, title: str,
                        body: str = "", link: str | None = None) -> int:
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
