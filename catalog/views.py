"""Public catalogue pages: categories and product detail."""

from flask import Blueprint

bp = Blueprint("catalog", __name__)


@bp.get("/c/<slug>")
def category(slug):
    return slug
