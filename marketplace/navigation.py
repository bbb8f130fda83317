"""Where a form may send the user back to after it is done ("next" and "back" fields)."""

from urllib.parse import urlsplit


def is_safe_next(target: str | None) -> bool:
    """Only relative paths on this site: "/orders?page=2" yes; "//evil.com", "http://..",
    "/\\evil.com" and "javascript:" no."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc
