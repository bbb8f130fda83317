"""Security hardening in one place: response headers (CSP and friends), rate limits, and the
friendly answers to "too many requests" (429) and "too large" (413).

Headers are a small ``after_request`` hook rather than Flask-Talisman: Talisman's last
release is from 2023, it redirects to HTTPS by default (our TLS ends at the proxy), and what
we need is a fixed policy plus one condition (Stripe.js only with real Stripe keys).

Content-Security-Policy (every response, HTML or not):

- ``script-src 'self'``: no inline scripts, no ``on*=`` attributes, no ``javascript:`` URLs,
  no ``eval`` (htmx runs with ``allowEval: false``, see the ``htmx-config`` meta tag in
  base.html). ``https://js.stripe.com`` is added only when real Stripe keys are configured
  (checkout then loads Stripe.js Elements, which also needs Stripe's frames and API).
- ``style-src 'self'``: no ``<style>`` blocks or ``style=`` attributes either. Templates use
  classes from static/css; scripts change styles through the CSSOM (``element.style.x``),
  which CSP allows; htmx's own indicator ``<style>`` is turned off
  (``includeIndicatorStyles: false``) and its rules live in site.css.
- ``img-src 'self' data:``: Bootstrap draws its icons (select arrows, close buttons, the
  navbar toggler) as ``data:`` SVGs in its stylesheet.
- ``object-src 'none'``, ``base-uri 'self'``, ``form-action 'self'``,
  ``frame-ancestors 'none'`` (with ``X-Frame-Options: DENY`` for old browsers).
"""

from __future__ import annotations

import logging
import math
import time

from flask import current_app, jsonify, render_template, request
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from marketplace.extensions import limiter
from marketplace.serving import loggable_path
from orders.stripe_gateway import test_card_entry_allowed

log = logging.getLogger(__name__)

HSTS_MAX_AGE = 365 * 24 * 3600
STRIPE_PLACEHOLDER_KEY = "sk_test_localstripe"

# Endpoint -> (config key of its limit, HTTP methods it applies to). A GET of a form is free;
# sending it counts. Limits are per client address (see docs/security.md).
RATE_LIMITED_ENDPOINTS = {
    "accounts.login": ("RATELIMIT_LOGIN", ["POST"]),
    # Changing the password checks the current one: a stolen session must not make it a
    # password-guessing oracle, so it draws on the login budget.
    "accounts.change_password": ("RATELIMIT_LOGIN", ["POST"]),
    "accounts.signup_enterprise": ("RATELIMIT_SIGNUP", ["POST"]),
    "accounts.signup_provider": ("RATELIMIT_SIGNUP", ["POST"]),
    "accounts.forgot_password": ("RATELIMIT_PASSWORD_RESET", ["POST"]),
    "accounts.reset_password": ("RATELIMIT_PASSWORD_RESET", ["POST"]),
    "search.search_page": ("RATELIMIT_SEARCH", ["GET"]),
}
# Endpoints that share one budget: signing up as an enterprise or as an institution; logging
# in and changing the password (both check a password).
SHARED_SCOPES = {"RATELIMIT_SIGNUP": "signup", "RATELIMIT_PASSWORD_RESET": "password-reset",
                 "RATELIMIT_LOGIN": "login"}


def real_stripe_configured(config) -> bool:
    """Whether checkout uses Stripe.js Elements (real keys), so the CSP must allow Stripe."""
    key = (config.get("STRIPE_SECRET_KEY") or "").strip()
    if not key or key == STRIPE_PLACEHOLDER_KEY:
        return False
    return not test_card_entry_allowed(config)


def content_security_policy(config) -> str:
    stripe = real_stripe_configured(config)
    script = "'self' https://js.stripe.com" if stripe else "'self'"
    frames = "https://js.stripe.com https://hooks.stripe.com" if stripe else "'none'"
    connect = "'self' https://api.stripe.com" if stripe else "'self'"
    directives = [
        ("default-src", "'self'"),
        ("script-src", script),
        ("style-src", "'self'"),
        ("img-src", "'self' data:"),
        ("font-src", "'self'"),
        ("connect-src", connect),
        ("frame-src", frames),
        ("object-src", "'none'"),
        ("base-uri", "'self'"),
        ("form-action", "'self'"),
        ("frame-ancestors", "'none'"),
    ]
    return "; ".join(f"{name} {value}" for name, value in directives)


def served_over_https(config) -> bool:
    return config.get("PREFERRED_URL_SCHEME") == "https"


def security_headers(config) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(config),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(self)",
    }
    if served_over_https(config):
        headers["Strict-Transport-Security"] = f"max-age={HSTS_MAX_AGE}; includeSubDomains"
    return headers


def wants_json() -> bool:
    """htmx requests and API clients get JSON errors; browsers get a page."""
    if request.headers.get("HX-Request") == "true":
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > \
        request.accept_mimetypes["text/html"]


def _retry_after_seconds(exc: RateLimitExceeded) -> int | None:
    """Seconds until the breached window resets (the limiter's own clock)."""
    current = limiter.current_limit
    if current is not None and current.breached:
        return max(1, math.ceil(current.window[0] - time.time()))
    try:
        return int(exc.limit.limit.get_expiry())
    except AttributeError:
        return None


def _too_many_requests(exc: RateLimitExceeded):
    seconds = _retry_after_seconds(exc)
    wait = _human_wait(seconds)
    message = (f"Too many attempts from your network. Please wait {wait} and try again."
               if wait else "Too many requests. Please wait a moment and try again.")
    log.warning("rate limit hit: %s %s from %s (%s)", request.method, loggable_path(),
                get_remote_address(), exc.description)
    if wants_json():
        response = jsonify(error="too_many_requests", message=message, retry_after=seconds)
        response.status_code = 429
    else:
        response = current_app.make_response((render_template(
            "errors/error.html", status=429, title="Slow down", message=message,
            icon="bi-hourglass-split"), 429))
    if seconds:
        response.headers["Retry-After"] = str(seconds)
    return response


def _human_wait(seconds: int | None) -> str | None:
    if not seconds:
        return None
    if seconds < 90:
        return f"{seconds} seconds"
    if seconds < 5400:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds / 3600)} hours"


def _human_size(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def _too_large(exc: RequestEntityTooLarge):
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    message = "The upload is larger than we accept."
    if limit:
        message = (f"The upload is larger than we accept: at most {_human_size(limit)} in one "
                   "go. Please send smaller files, or fewer at a time.")
    if wants_json():
        response = jsonify(error="too_large", message=message, limit=limit)
        response.status_code = 413
        return response
    return render_template("errors/error.html", status=413, title="Too large",
                           message=message, icon="bi-file-earmark-x"), 413


def _rate_limits_on() -> bool:
    setting = current_app.config.get("RATELIMIT_ON")
    if setting is None:
        return not current_app.testing
    return bool(setting)


def _apply_route_limits(app) -> None:
    for endpoint, (config_key, methods) in RATE_LIMITED_ENDPOINTS.items():
        view = app.view_functions.get(endpoint)
        if view is None:
            continue
        value = app.config[config_key]
        scope = SHARED_SCOPES.get(config_key)
        if scope:
            decorator = limiter.shared_limit(value, scope=scope, methods=methods)
        else:
            decorator = limiter.limit(value, methods=methods)
        app.view_functions[endpoint] = decorator(view)


def trust_proxies(app) -> None:
    """Behind nginx or a load balancer every request comes from the proxy: with
    TRUSTED_PROXIES=N take the client address (and scheme) from the X-Forwarded-For/-Proto
    headers the N nearest proxies add, or one visitor's rate limit would be everyone's."""
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)


def init_app(app) -> None:
    """Call after every blueprint is registered (limits wrap the registered views)."""
    # Flask-Limiter is always initialised; RATELIMIT_ON decides per request (off in tests
    # unless a test turns it on, since every test client shares 127.0.0.1).
    trust_proxies(app)
    app.config["RATELIMIT_ENABLED"] = True
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)
    limiter.request_filter(lambda: not _rate_limits_on())
    _apply_route_limits(app)
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
    app.register_error_handler(RequestEntityTooLarge, _too_large)

    @app.after_request
    def _security_headers(response):
        for name, value in security_headers(app.config).items():
            response.headers.setdefault(name, value)
        return response
