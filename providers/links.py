"""Site paths that services put into notifications and emails.

Services run without a request (CLI, tests), so they cannot call ``url_for``; the portal,
review and notification blueprints register these same paths.
"""

DASHBOARD = "/provider"
APPLICATION = "/provider/institution"
LISTINGS = "/provider/listings"
TEAM = "/team"
VERIFICATION_QUEUE = "/staff/verification"
MODERATION_QUEUE = "/staff/moderation"


def listing_edit(product_id: int) -> str:
    return f"/provider/listings/{product_id}/edit"


def product_page(product_id: int) -> str:
    return f"/products/{product_id}"


def staff_verification(org_id: int) -> str:
    return f"/staff/verification/{org_id}"


def staff_moderation(product_id: int) -> str:
    return f"/staff/moderation/{product_id}"


def join(code: str) -> str:
    return f"/team/join/{code}"
