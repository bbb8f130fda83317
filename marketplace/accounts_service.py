"""Account rules: sign-up, staff creation, authentication. Plain functions taking a session."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.models import User
from marketplace.passwords import hash_password, password_problems


class AccountError(ValueError):
    """A rule was broken; the message is safe to show to the user."""


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def email_taken(session: Session, email: str) -> bool:
    return session.scalar(select(func.count()).select_from(User).where(
        User.email == normalise_email(email))) > 0


def create_staff_user(session: Session, *, email: str, full_name: str, password: str,
                      admin: bool = False) -> User:
    email = normalise_email(email)
    if email_taken(session, email):
        raise AccountError(f"An account with {email} already exists.")
    problems = password_problems(password, email)
    if problems:
        raise AccountError(" ".join(problems))
    user = User(email=email, full_name=full_name.strip(), password_hash=hash_password(password),
                role="admin" if admin else "staff")
    session.add(user)
    session.flush()
    return user
