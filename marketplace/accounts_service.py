"""Account rules: sign-up, staff creation, authentication. Plain functions taking a session.

Nothing here reads the request: views parse forms, call these functions and commit; the same
functions serve the CLI and the tests.
"""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace import credit_code as credit_codes
from marketplace import reference
from marketplace.database import utcnow
from marketplace.models import Organisation, User
from marketplace.passwords import hash_password, password_problems, verify_password

GENERIC_LOGIN_ERROR = "Email or password is incorrect."
INACTIVE_ACCOUNT_ERROR = (
    "This account has been deactivated. Please contact platform staff if you think this is a mistake."
)


class AccountError(ValueError):
    """A rule was broken; the message is safe to show to the user.

    ``field`` names the form field the message belongs to (None for the form as a whole).
    """

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def email_taken(session: Session, email: str) -> bool:
    return session.scalar(select(func.count()).select_from(User).where(
        User.email == normalise_email(email))) > 0


def credit_code_taken(session: Session, code: str) -> bool:
    return session.scalar(select(func.count()).select_from(Organisation).where(
        Organisation.credit_code == credit_codes.normalise(code))) > 0


def email_taken_message(email: str) -> str:
    return (f"An account with {normalise_email(email)} already exists. "
            "Log in instead, or use another email address.")


CREDIT_CODE_TAKEN_MESSAGE = (
    "An organisation with this unified social credit code is already registered. "
    "Ask its account owner to invite you, or contact platform staff."
)


def _check_new_account(session: Session, email: str, password: str) -> str:
    email = normalise_email(email)
    if email_taken(session, email):
        raise AccountError(email_taken_message(email), field="email")
    problems = password_problems(password, email)
    if problems:
        raise AccountError(" ".join(problems), field="password")
    return email


def _check_choice(value: str | None, rows, field: str, what: str) -> str:
    if value not in {code for code, _en, _zh in rows}:
        raise AccountError(f"Choose a {what} from the list.", field=field)
    return value


@dataclass(frozen=True)
class EnterpriseSignup:
    company_name: str
    credit_code: str
    region: str
    industry: str
    size: str
    contact_name: str
    contact_phone: str
    email: str
    password: str


@dataclass(frozen=True)
class ProviderSignup:
    institution_name: str
    institution_type: str
    contact_name: str
    contact_phone: str
    email: str
    password: str


def register_enterprise(session: Session, data: EnterpriseSignup) -> User:
    """Create an unverified enterprise and its owner account (flushed, not committed); the
    owner is signed in straight away, so the sign-up counts as their first login.

    A duplicate email or credit code raises AccountError here; a concurrent sign-up that wins
    the race surfaces as IntegrityError on flush/commit, which the caller rolls back.
    """
    try:
        code = credit_codes.validate(data.credit_code)
    except credit_codes.CreditCodeError as exc:
        raise AccountError(str(exc), field="credit_code") from exc
    if credit_code_taken(session, code):
        raise AccountError(CREDIT_CODE_TAKEN_MESSAGE, field="credit_code")
    email = _check_new_account(session, data.email, data.password)
    _check_choice(data.region, reference.REGIONS, "region", "region")
    _check_choice(data.industry, reference.INDUSTRIES, "industry", "industry")
    _check_choice(data.size, reference.COMPANY_SIZES, "size", "company size")
    organisation = Organisation(
        kind="enterprise", name=data.company_name.strip(), credit_code=code,
        region=data.region, industry=data.industry, size=data.size,
        contact_name=data.contact_name.strip(), contact_phone=data.contact_phone.strip(),
        contact_email=email, verification_status="unverified",
    )
    user = User(email=email, full_name=data.contact_name.strip(),
                phone=data.contact_phone.strip(), password_hash=hash_password(data.password),
                role="enterprise", organisation=organisation, is_org_owner=True,
                last_login_at=utcnow())
    session.add_all([organisation, user])
    session.flush()
    return user


def register_provider(session: Session, data: ProviderSignup) -> User:
    """Create an unverified service institution and its owner account (flushed, not committed).

    The institution supplies its credit code and documents later, in its application.
    """
    email = _check_new_account(session, data.email, data.password)
    _check_choice(data.institution_type, reference.INSTITUTION_TYPES, "institution_type",
                  "institution type")
    organisation = Organisation(
        kind="provider", name=data.institution_name.strip(),
        institution_type=data.institution_type, contact_name=data.contact_name.strip(),
        contact_phone=data.contact_phone.strip(), contact_email=email,
        verification_status="unverified",
    )
    user = User(email=email, full_name=data.contact_name.strip(),
                phone=data.contact_phone.strip(), password_hash=hash_password(data.password),
                role="provider", organisation=organisation, is_org_owner=True,
                last_login_at=utcnow())
    session.add_all([organisation, user])
    session.flush()
    return user


def explain_conflict(session: Session, *, email: str, credit_code: str | None = None) -> AccountError:
    """After a unique-constraint failure (and rollback), say which value was taken."""
    if credit_code and credit_code_taken(session, credit_code):
        return AccountError(CREDIT_CODE_TAKEN_MESSAGE, field="credit_code")
    if email_taken(session, email):
        return AccountError(email_taken_message(email), field="email")
    return AccountError("Someone registered the same details a moment ago. Please check and try again.")


_dummy_hash: str | None = None


def _spend_hashing_time(password: str) -> None:
    """Verify against a throwaway hash so unknown emails take as long as wrong passwords."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password("not-a-real-password-0")
    verify_password(_dummy_hash, password)


def authenticate(session: Session, email: str, password: str) -> User:
    """The user with these credentials, or AccountError with a message that never says
    whether the email exists. Deactivated accounts are refused (only told so once the
    password is right). Records the login time (flushed, not committed)."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        _spend_hashing_time(password or "")
        raise AccountError(GENERIC_LOGIN_ERROR)
    if not verify_password(user.password_hash, password or ""):
        raise AccountError(GENERIC_LOGIN_ERROR)
    if not user.active:
        raise AccountError(INACTIVE_ACCOUNT_ERROR)
    user.last_login_at = utcnow()
    session.flush()
    return user


def change_password(session: Session, user: User, *, current: str, new: str) -> User:
    """Replace the password and bump the session version, which signs out every other
    session of this user (their login cookies carry the old version)."""
    if not verify_password(user.password_hash, current or ""):
        raise AccountError("Your current password is not correct.", field="current_password")
    if new == current:
        raise AccountError("Choose a password different from the current one.", field="new_password")
    problems = password_problems(new, user.email)
    if problems:
        raise AccountError(" ".join(problems), field="new_password")
    user.password_hash = hash_password(new)
    user.session_version = (user.session_version or 1) + 1
    session.flush()
    return user


def create_staff_user(session: Session, *, email: str, full_name: str, password: str,
                      admin: bool = False) -> User:
    """Platform staff and admins exist only through this function (the create-staff command)."""
    email = normalise_email(email)
    if not email or "@" not in email:
        raise AccountError("Give a valid email address.", field="email")
    if not (full_name or "").strip():
        raise AccountError("Give the person's name.", field="full_name")
    if email_taken(session, email):
        raise AccountError(f"An account with {email} already exists.", field="email")
    problems = password_problems(password, email)
    if problems:
        raise AccountError(" ".join(problems), field="password")
    user = User(email=email, full_name=full_name.strip(), password_hash=hash_password(password),
                role="admin" if admin else "staff")
    session.add(user)
    session.flush()
    return user
