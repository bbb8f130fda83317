"""Innovation Service Supermarket: the application factory."""

import logging

from flask import Flask
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from marketplace.config import INSTANCE_DIR, ROOT, load_config
from marketplace.database import db

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "accounts.login"
login_manager.login_message = "Please log in to continue."
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"


@login_manager.user_loader
def _load_user(user_id: str):
    from marketplace.models import User

    try:
        raw_id, raw_version = user_id.split(":", 1)
        user = db.session.get(User, int(raw_id))
        version = int(raw_version)
    except (ValueError, TypeError):
        return None
    if user is None or user.session_version != version or not user.active:
        return None
    return user


def create_app(overrides: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(INSTANCE_DIR),
    )
    app.config.update(load_config())
    if overrides:
        app.config.update(overrides)
    from marketplace.mail import check_settings

    check_settings(app.config)  # an unknown MAIL_BACKEND or a bad SITE_URL stops start-up
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    # Import every model module so relationships resolve and metadata is complete.
    import catalog.models  # noqa: F401
    import demand.models  # noqa: F401
    import orders.models  # noqa: F401
    import providers.models  # noqa: F401

    db.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)

    from catalog import views as catalog_views
    from marketplace import accounts, errors, staff, templating, views
    from providers import views as provider_views

    app.register_blueprint(views.bp)
    app.register_blueprint(accounts.bp)
    app.register_blueprint(catalog_views.bp)
    app.register_blueprint(provider_views.bp)
    app.register_blueprint(staff.bp)
    from marketplace import notification_views, review
    from providers import portal

    app.register_blueprint(portal.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(notification_views.bp)
    from catalog import search_views

    search_views.register(app)  # search, favourites, comparison; reindex/drain-outbox
    from catalog import review_views

    app.register_blueprint(review_views.bp)  # ratings: reviews, replies, staff moderation
    from orders.views import register as register_orders

    register_orders(app)  # cart, checkout, orders, quotes, vouchers, Stripe webhook
    from orders import settlement_views

    settlement_views.register(app)  # settlement batches, statements, exports, reconciliation
    from marketplace import console

    app.register_blueprint(console.bp)  # monitors' console: progress, interventions, audit log
    from providers import credibility_views

    app.register_blueprint(credibility_views.bp)  # credibility: explanation, console page
    from demand import views as demand_views

    demand_views.register(app)  # needs (需求), demand board, proposals, award
    errors.register(app)
    from marketplace import serving

    serving.register(app)  # /healthz, request ids and logs, static fingerprints, gzip
    templating.register(app)

    from marketplace import security

    security.init_app(app)  # CSP and security headers, rate limits, 413/429 answers
    from marketplace.cli import register_cli

    register_cli(app)
    return app
