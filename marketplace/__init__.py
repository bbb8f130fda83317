"""Innovation Service Supermarket: the application factory.

``create_app`` reads top-down: configuration, extensions, blueprints, app-wide hooks,
commands. Extension objects live in ``marketplace.extensions``; each package lists its
commands in its own ``cli.py``.
"""

import logging

from flask import Flask

from marketplace.config import INSTANCE_DIR, ROOT, load_config


def create_app(overrides: dict | None = None) -> Flask:
    # Imported here, not at module level: every domain module imports marketplace.database,
    # which runs this package's __init__ first; the views import those domain modules.
    import catalog.cli
    import demand.cli
    import marketplace.cli
    import marketplace.demo.cli
    import orders.cli
    import providers.cli
    from catalog import review_views
    from catalog import views as catalog_views
    from catalog.search import console as search_console
    from catalog.search import views as search_views
    from demand import views as demand_views
    from marketplace import (
        accounts,
        console,
        errors,
        events,
        i18n,
        notification_views,
        review,
        security,
        serving,
        staff,
        templating,
        views,
    )
    from marketplace.extensions import csrf, db, login_manager
    from marketplace.mail import check_settings
    from orders import admin_views, paperwork_views, quote_views, settlement_views
    from orders import views as order_views
    from providers import credibility_views, portal
    from providers import views as provider_views

    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(INSTANCE_DIR),
    )
    app.config.update(load_config())
    if overrides:
        app.config.update(overrides)
    check_settings(app.config)  # an unknown MAIL_BACKEND or a bad SITE_URL stops start-up
    from marketplace import hardening

    hardening.register_converters(app)  # <int:id> beyond the integer range: 404
    hardening.register(app)  # control characters refused in every form
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    db.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    i18n.init_app(app)  # Flask-Babel: language, Beijing time, money formats

    for blueprint in (
        views.bp,                  # home, about
        accounts.bp,               # sign-up, login, password
        catalog_views.bp,          # categories, listings
        provider_views.bp,         # public institution profiles
        staff.bp,                  # staff: verification, moderation, users
        portal.bp,                 # institutions' portal: listings, team
        review.bp,                 # staff review queue
        notification_views.bp,
        search_views.bp,           # search, favourites, comparison
        search_console.bp,         # staff: search synonyms and analytics
        search_console.public_bp,  # search hits' click-through (analytics)
        review_views.bp,           # ratings: reviews, replies, staff moderation
        settlement_views.bp,       # settlement batches, statements, exports, reconciliation
        console.bp,                # monitors' console: progress, interventions, audit log
        credibility_views.bp,      # credibility: explanation, console page
        order_views.bp,            # cart, checkout, orders (buyer, institution, staff), webhook
        quote_views.bp,            # quote requests, quotes, financial applications
        admin_views.bp,            # staff: orders, voucher programmes, commission rates
        paperwork_views.bp,        # contracts (合同) and 发票: signing, invoices, registration
        demand_views.bp,           # needs (需求), demand board, proposals, award, funnel
    ):
        app.register_blueprint(blueprint)

    errors.register(app)
    serving.register(app)  # /healthz, request ids and logs, static fingerprints, gzip
    templating.register(app)
    app.jinja_env.globals["order_paperwork"] = paperwork_views.order_paperwork  # order page
    security.init_app(app)  # CSP and security headers, rate limits, 413/429 answers
    events.load_subscribers()  # who reacts to domain events (marketplace/events.py)

    for group in (marketplace.cli.cli, catalog.cli.cli, providers.cli.cli, orders.cli.cli,
                  marketplace.demo.cli.cli, demand.cli.cli):
        for command in group.commands.values():
            app.cli.add_command(command)
    return app
