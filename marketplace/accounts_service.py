"""Account rules: sign-up, staff creation, authentication with lockout, password reset.
Plain functions taking a session.

Nothing here reads the request: views parse forms, call these functions and commit; the same
functions serve the CLI and the tests.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace import audit, reference
from marketplace import credit_code as credit_codes
from marketplace.database import utcnow
from marketplace.models import LoginThrottle, Organisation, User
from marketplace.notifications import queue_email
from marketplace.paging import paginate
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


# ------------------------------------------------------------------ login and lockout

@dataclass(frozen=True)
class LockoutPolicy:
    """THRESHOLD failed logins in a row lock the email address for BASE seconds; each further
    lockout doubles the time, up to MAX. A successful login (or password reset) forgets it
    all; so does a day without failures."""

    threshold: int = 5
    base_seconds: int = 60
    max_seconds: int = 3600
    forget_after: timedelta = timedelta(days=1)

    @classmethod
    def from_config(cls, config) -> "LockoutPolicy":
        return cls(threshold=int(config.get("LOGIN_LOCKOUT_THRESHOLD", 5)),
                   base_seconds=int(config.get("LOGIN_LOCKOUT_SECONDS", 60)),
                   max_seconds=int(config.get("LOGIN_LOCKOUT_MAX_SECONDS", 3600)))

    def lock_seconds(self, previous_lockouts: int) -> int:
        return min(self.base_seconds * 2 ** min(previous_lockouts, 30), self.max_seconds)


class AccountLocked(AccountError):
    """Too many failed logins for this email address (known or not: the same for both)."""

    def __init__(self, until: datetime, now: datetime):
        self.until = until
        self.seconds = max(1, int((until - now).total_seconds() + 0.999))
        super().__init__(
            f"Too many failed attempts for this email address. Please wait {human_wait(self.seconds)} "
            "and try again, or reset your password with the link below.")


def human_wait(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    hours = round(minutes / 60)
    return "1 hour" if hours == 1 else f"{hours} hours"


def _throttle(session: Session, email: str) -> LoginThrottle | None:
    return session.scalar(select(LoginThrottle).where(LoginThrottle.email == email))


def record_failed_login(session: Session, email: str, now: datetime,
                        policy: LockoutPolicy) -> LoginThrottle:
    """Count one failed login for ``email``; lock it when the threshold is reached (flushed).

    Increments are done in SQL so concurrent failures all count."""
    throttle = _throttle(session, email)
    if throttle is None:
        try:
            with session.begin_nested():
                throttle = LoginThrottle(email=email, failures=0, lockouts=0)
                session.add(throttle)
        except IntegrityError:  # another request created it a moment ago
            throttle = _throttle(session, email)
    elif (throttle.last_failure_at is not None
          and now - throttle.last_failure_at > policy.forget_after
          and not (throttle.locked_until is not None and throttle.locked_until > now)):
        throttle.failures, throttle.lockouts, throttle.locked_until = 0, 0, None
        session.flush()
    session.execute(update(LoginThrottle).where(LoginThrottle.id == throttle.id).values(
        failures=LoginThrottle.failures + 1, last_failure_at=now))
    session.refresh(throttle)
    if throttle.failures >= policy.threshold:
        until = now + timedelta(seconds=policy.lock_seconds(throttle.lockouts))
        locked = session.execute(update(LoginThrottle).where(
            LoginThrottle.id == throttle.id, LoginThrottle.failures >= policy.threshold).values(
            failures=0, lockouts=LoginThrottle.lockouts + 1, locked_until=until))
        session.refresh(throttle)
        if locked.rowcount:
            raise AccountLocked(throttle.locked_until, now)
    return throttle


def clear_failed_logins(session: Session, email: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.email == normalise_email(email)))


def authenticate(session: Session, email: str, password: str, *, now: datetime | None = None,
                 policy: LockoutPolicy | None = None) -> User:
    """The user with these credentials, or AccountError with a message that never says
    whether the email exists. Deactivated accounts are refused (only told so once the
    password is right). Records the login time (flushed, not committed).

    A wrong password (or unknown email) is counted against the address typed, and the
    caller must COMMIT after an AccountError so the count sticks. While the address is
    locked, AccountLocked is raised without checking the password at all, for real and
    unknown addresses alike."""
    now = now or utcnow()
    policy = policy or LockoutPolicy()
    email = normalise_email(email)
    throttle = _throttle(session, email)
    if throttle is not None and throttle.locked_until is not None and throttle.locked_until > now:
        raise AccountLocked(throttle.locked_until, now)
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        _spend_hashing_time(password or "")
    if user is None or not verify_password(user.password_hash, password or ""):
        if email:
            record_failed_login(session, email, now, policy)
        raise AccountError(GENERIC_LOGIN_ERROR)
    if not user.active:
        raise AccountError(INACTIVE_ACCOUNT_ERROR)
    if throttle is not None:
        session.delete(throttle)
    user.last_login_at = now
    session.flush()
    return user


def lockout_page(session: Session, now: datetime, page: int = 1, page_size: int = 50):
    """Addresses locked now or with failed logins since the last success, latest failure
    first, one page (catalog.services.Page) of dicts with the account each belongs to (None
    for an unknown address). For staff."""
    stmt = (select(LoginThrottle, User).outerjoin(User, User.email == LoginThrottle.email)
            .where(or_(LoginThrottle.locked_until > now, LoginThrottle.failures > 0))
            .order_by(LoginThrottle.last_failure_at.desc(), LoginThrottle.id.desc()))
    result = paginate(session, stmt, page, page_size, scalars=False)
    result.items = [{"throttle": throttle, "user": user,
                     "locked": throttle.locked_until is not None and throttle.locked_until > now}
                    for throttle, user in result.items]
    return result


def clear_lockout(session: Session, actor: User, throttle_id: int, reason: str) -> LoginThrottle:
    """Staff lift a lockout (e.g. after the owner called in); audited, flushed."""
    throttle = session.get(LoginThrottle, throttle_id)
    if throttle is None:
        raise AccountError("That lockout has already been cleared.")
    reason = (reason or "").strip()
    if not reason:
        raise AccountError("Say why the lockout is lifted (it goes into the audit log).",
                           field="reason")
    audit.record(session, actor, "login_lockout.cleared", throttle, reason, email=throttle.email,
                 failures=throttle.failures, lockouts=throttle.lockouts,
                 locked_until=throttle.locked_until.isoformat() if throttle.locked_until else None)
    session.delete(throttle)
    session.flush()
    return throttle


# ------------------------------------------------------------------ password reset

RESET_SALT = "password-reset"
RESET_INVALID = ("This password-reset link is not valid or has already been used. "
                 "Ask for a new one below.")
RESET_EXPIRED = "This password-reset link has expired. Ask for a new one below."


def _password_fingerprint(user: User) -> str:
    """Changes whenever the password does (or other sessions are signed out): binding the
    token to it makes every token single-use without storing anything."""
    material = f"{user.id}:{user.password_hash}:{user.session_version}".encode()
    return hashlib.sha256(material).hexdigest()[:32]


def _reset_serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=RESET_SALT)


def password_reset_token(user: User, secret_key: str) -> str:
    return _reset_serializer(secret_key).dumps({"u": user.id, "p": _password_fingerprint(user)})


def user_for_reset_token(session: Session, token: str, secret_key: str, max_age: int) -> User:
    """The user a reset token was made for, or AccountError (tampered, expired, used)."""
    try:
        data = _reset_serializer(secret_key).loads(token or "", max_age=max_age)
    except SignatureExpired as exc:
        raise AccountError(RESET_EXPIRED) from exc
    except BadSignature as exc:
        raise AccountError(RESET_INVALID) from exc
    user = session.get(User, data.get("u")) if isinstance(data, dict) else None
    if user is None or not user.active or data.get("p") != _password_fingerprint(user):
        raise AccountError(RESET_INVALID)
    return user


def request_password_reset(session: Session, email: str, secret_key: str,
                           link_for: Callable[[str], str], max_age: int) -> bool:
    """Email a reset link to the account with this address, if there is an active one.

    Returns whether an email was queued; callers must not tell the visitor (the page always
    says "if an account exists...")."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None or not user.active:
        return False
    link = link_for(password_reset_token(user, secret_key))
    minutes = max(1, max_age // 60)
    queue_email(session, user.email, "Reset your password · 重置密码", (
        f"Hello {user.full_name},\n\n"
        "Someone (we hope you) asked to reset the password of your Innovation Service "
        "Supermarket account. Choose a new password here:\n\n"
        f"{link}\n\n"
        f"The link works once, for {minutes} minutes. If you did not ask for it, ignore this "
        "email: your password stays as it is."))
    session.flush()
    return True


def reset_password(session: Session, token: str, new: str, secret_key: str,
                   max_age: int) -> User:
    """Set a new password from a reset link: single use (the token is bound to the old
    password), signs out every session (session_version), forgets failed logins."""
    user = user_for_reset_token(session, token, secret_key, max_age)
    problems = password_problems(new or "", user.email)
    if problems:
        raise AccountError(" ".join(problems), field="new_password")
    user.password_hash = hash_password(new)
    user.session_version = (user.session_version or 1) + 1
    clear_failed_logins(session, user.email)
    queue_email(session, user.email, "Your password was changed · 密码已修改", (
        f"Hello {user.full_name},\n\nThe password of your Innovation Service Supermarket "
        "account was just changed with a reset link, and every other session was signed out. "
        "If this was not you, contact platform staff at once."))
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
