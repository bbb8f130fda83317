"""Site-wide pages: the home page and shared template context."""

from flask import Blueprint, render_template

from catalog.categories import top_level_categories
from marketplace.database import db

bp = Blueprint("main", __name__)


@bp.app_context_processor
def _navigation():
    # Two small queries per page; the category menu changes only when admins edit the tree.
    return {"nav_categories": top_level_categories(db.session)}


@bp.get("/")
def home():
    return render_template("main/home.html")
