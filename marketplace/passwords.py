"""Password rules and hashing (werkzeug's salted scrypt)."""

from flask_babel import gettext as _
from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 10
MAX_LENGTH = 128
COMMON_PASSWORDS = {
    "password123", "1234567890", "qwertyuiop", "password1234", "iloveyou12",
    "administrator", "abc1234567", "letmein1234", "welcome123", "passw0rd123",
    "qwerty12345", "1q2w3e4r5t", "a1b2c3d4e5", "zaq12wsxcde", "11111111111",
}


def password_problems(password: str, email: str = "") -> list[str]:
    """Everything wrong with a proposed password, as sentences for the form."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(_("Use at least %(num)d characters.", num=MIN_LENGTH))
    if len(password) > MAX_LENGTH:
        problems.append(_("Use at most %(num)d characters.", num=MAX_LENGTH))
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        problems.append(_("Use both letters and digits."))
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(password)) < 4:
        problems.append(_("This password is too easy to guess."))
    local_part = email.split("@")[0].lower() if email else ""
    if local_part and len(local_part) >= 4 and local_part in lowered:
        problems.append(_("Do not include your email address in the password."))
    return problems


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    return check_password_hash(password_hash, password)
