"""Errors raised by the provider services.

``PermissionDenied`` (from the one permissions module) means "not yours": views answer 403.
``RuleError`` means "not now / not like this": views show the message on the form it concerns
(``field`` names the field) or answer 409 for a bare action button.
"""

from marketplace.permissions import PermissionDenied

__all__ = ["PermissionDenied", "RuleError"]


class RuleError(ValueError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
