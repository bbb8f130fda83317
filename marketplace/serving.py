"""Serving concerns shared by every page: health check, request logs, request ids,
fingerprinted static URLs with long cache lifetimes, and response compression.

``register(app)`` wires them into the application factory. None of it knows about the
marketplace's business; it only decorates requests and responses.

- ``/healthz`` checks the database (``SELECT 1``) and the search index (it exists and opens,
  with its document count) and answers 200 ``{"status": "ok", ...}`` or 503 naming the part
  that failed, for a load balancer or an uptime check.
- Every request gets an id: the ``X-Request-ID`` header when a proxy sent a sane one,
  otherwise a fresh one; it is echoed in the response's ``X-Request-ID`` header and is in
  the request's log line.
- One JSON line per request on the ``marketplace.requests`` logger: time, method, path,
  status, duration in ms, user id (when the page loaded the user), request id, remote address.
  The path is ``loggable_path()``: a URL variable that is a credential (a password-reset
  token, a team invitation code: any rule variable named in ``SECRET_URL_VARIABLES``) is
  logged as its name (``/password/reset/<token>``), also on a 404/405 near such a route and
  in the error and rate-limit logs. Query strings are never logged.
- ``url_for('static', filename=...)`` gets ``?v=<content hash>``. A request whose ``v`` is the
  file's current hash is cached for a year (``immutable``): a changed file gets a new URL.
  Other static requests (no or an old hash, e.g. fonts referenced from inside a CSS file) get
  a short lifetime and revalidate by ETag.
- Flask-Compress gzips (or Brotli-compresses) HTML, CSS, JS, JSON and SVG responses for
  clients that accept it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
import time
import types
import uuid
from datetime import UTC, datetime

from flask import Flask, g, jsonify, request
from sqlalchemy import text
from werkzeug.security import safe_join

from marketplace.database import db
from marketplace.extensions import compress

REQUEST_LOGGER = "marketplace.requests"
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT_LIVED = "public, max-age=3600"

log = logging.getLogger(REQUEST_LOGGER)

# URL rule variables that are credentials: whoever reads the log must not be able to use them.
SECRET_URL_VARIABLES = frozenset({"token", "code", "secret", "key", "signature"})
_VARIABLE = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


# --------------------------------------------------------------------------- static digests

class StaticDigests:
    """Content hashes of static files, recomputed only when a file's size or mtime changes."""

    def __init__(self, folder: str):
        self.folder = folder
        self._cache: dict[str, tuple[int, int, str]] = {}

    def digest(self, filename: str) -> str | None:
        path = safe_join(self.folder, filename)
        if path is None:
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        cached = self._cache.get(filename)
        if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
            return cached[2]
        with open(path, "rb") as handle:
            value = hashlib.sha256(handle.read()).hexdigest()[:16]
        self._cache[filename] = (stat.st_mtime_ns, stat.st_size, value)
        return value


# --------------------------------------------------------------------------- health

def health(app: Flask) -> tuple[dict, bool]:
    """The state of the database and the search index; (report, healthy)."""
    from whoosh import index as whoosh_index

    from catalog.search.schema import INDEX_NAME

    report: dict = {"database": "ok", "search_index": "ok"}
    healthy = True
    try:
        db.session.execute(text("SELECT 1")).scalar_one()
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        db.session.rollback()
        report["database"] = f"failed: {type(exc).__name__}"
        healthy = False
    index_dir = app.config["SEARCH_INDEX_DIR"]
    try:
        if not whoosh_index.exists_in(index_dir, indexname=INDEX_NAME):
            raise FileNotFoundError("no index in the configured directory")
        # Opened directly, not through the cached handle: no jieba dictionary load (seconds)
        # on a worker's first health check, and a deleted or replaced index is noticed.
        with whoosh_index.open_dir(index_dir, indexname=INDEX_NAME).reader() as reader:
            report["documents"] = reader.doc_count()
    except Exception as exc:  # noqa: BLE001
        report["search_index"] = f"failed: {type(exc).__name__}: {exc}"[:200]
        healthy = False
    report["status"] = "ok" if healthy else "unavailable"
    return report, healthy


# --------------------------------------------------------------------------- request logs

def _request_log_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def _user_id() -> int | None:
    """The id of the user this request loaded (never triggers a load just for the log)."""
    user = g.get("_login_user")
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "id", None)


# --------------------------------------------------------------------------- secrets in paths

def _secret_patterns(url_map) -> list[tuple[re.Pattern, list[str]]]:
    """For each rule with a secret variable: a regex matching the start of such paths up to
    the last secret (with or without whatever follows), and the names of its groups."""
    patterns = []
    for rule in url_map.iter_rules():
        if not rule.arguments & SECRET_URL_VARIABLES:
            continue
        source = rule.rule
        last_secret = max(found.end() for found in _VARIABLE.finditer(source)
                          if found.group(1) in SECRET_URL_VARIABLES)
        regex, names, position = "", [], 0
        for found in _VARIABLE.finditer(source[:last_secret]):
            regex += re.escape(source[position:found.start()])
            if found.group(1) in SECRET_URL_VARIABLES:
                regex += "([^/]+)"
                names.append(found.group(1))
            else:
                regex += "[^/]+"
            position = found.end()
        patterns.append((re.compile(regex), names))
    return patterns


def redact_path(app: Flask, path: str) -> str:
    """``path`` with every credential a URL rule carries replaced by its variable name."""
    patterns = app.extensions.get("secret_url_patterns")
    if patterns is None:
        patterns = app.extensions["secret_url_patterns"] = _secret_patterns(app.url_map)
    for pattern, names in patterns:
        found = pattern.match(path)
        if found is None:
            continue
        redacted, position = "", 0
        for group, name in enumerate(names, start=1):
            redacted += path[position:found.start(group)] + f"<{name}>"
            position = found.end(group)
        return redacted + path[position:]
    return path


def loggable_path() -> str:
    """The current request's path, safe to write to a log (see ``redact_path``)."""
    from flask import current_app

    return redact_path(current_app, request.path)


def _log_exception(app: Flask, exc_info) -> None:
    """Flask's "Exception on <path> [<method>]" error log line, with the path redacted."""
    app.logger.error(f"Exception on {loggable_path()} [{request.method}]", exc_info=exc_info)


def register(app: Flask) -> None:
    app.config.setdefault("COMPRESS_MIMETYPES", [
        "text/html", "text/css", "text/plain", "text/javascript", "application/javascript",
        "application/json", "image/svg+xml",
    ])
    # zstd is not in Python 3.11's standard library; Brotli first, gzip for everything else.
    app.config.setdefault("COMPRESS_ALGORITHM", ["br", "gzip"])
    app.config.setdefault("COMPRESS_ALGORITHM_STREAMING", ["br", "gzip"])
    compress.init_app(app)
    from catalog import fragments

    fragments.register(app)  # cached product cards

    app.log_exception = types.MethodType(_log_exception, app)  # redacts the path
    if not log.handlers:
        log.addHandler(_request_log_handler())
        log.setLevel(logging.INFO)
        log.propagate = False

    digests = StaticDigests(app.static_folder)
    app.extensions["static_digests"] = digests

    @app.url_defaults
    def _fingerprint_static(endpoint, values):
        if endpoint == "static" and "filename" in values and "v" not in values:
            digest = digests.digest(values["filename"])
            if digest:
                values["v"] = digest

    @app.before_request
    def _start_request():
        g.request_started = time.perf_counter()
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _finish_request(response):
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        if request.endpoint == "static":
            filename = (request.view_args or {}).get("filename", "")
            version = request.args.get("v")
            current = digests.digest(filename) if version else None
            response.headers["Cache-Control"] = (
                IMMUTABLE if version and version == current else SHORT_LIVED)
        if app.config.get("REQUEST_LOG", True):
            started = g.get("request_started")
            duration = (time.perf_counter() - started) * 1000 if started else None
            log.info(json.dumps({
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "method": request.method,
                "path": loggable_path(),
                "status": response.status_code,
                "duration_ms": None if duration is None else round(duration, 2),
                "user_id": _user_id(),
                "request_id": request_id,
                "remote_addr": request.remote_addr,
            }, ensure_ascii=False))
        return response

    @app.get("/healthz")
    def healthz():
        report, healthy = health(app)
        response = jsonify(report)
        response.status_code = 200 if healthy else 503
        response.headers["Cache-Control"] = "no-store"
        return response

    if app.config.get("BENCH_HELLO_ROUTE"):
        @app.get("/bench/hello")
        def bench_hello():
            # The load benchmark's baseline: the same app, middleware and logging, no
            # database and no template. Registered only when BENCH_HELLO_ROUTE is on.
            return "hello", 200, {"Content-Type": "text/plain; charset=utf-8"}
