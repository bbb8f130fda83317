"""Production WSGI entry point: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Web workers only serve requests. Applying the search outbox to the index is the job of one
separate process (``flask --app marketplace drain-outbox --loop``, see
``scripts/serve-production``), so unless ``SEARCH_DRAIN_IN_PROCESS`` is set explicitly the
workers do not drain in-process: many workers never compete for the index writer lock.

``SECRET_KEY`` must be set: without it every worker process would invent its own key, and a
session signed by one worker would be rejected by the next. ``HTTPS`` must be set too, to 1
behind TLS (Secure cookies, HSTS) or explicitly to 0 for plain HTTP on a private network:
forgetting it must not silently send session cookies without ``Secure``.
"""

import os

if not os.environ.get("SECRET_KEY"):
    raise RuntimeError("Set SECRET_KEY (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`): "
                       "every gunicorn worker must sign sessions with the same key.")
if os.environ.get("HTTPS", "").strip() == "":
    raise RuntimeError("Set HTTPS=1 when the site is served over HTTPS (Secure cookies, HSTS), "
                       "or HTTPS=0 to serve plain HTTP on purpose.")
os.environ.setdefault("SEARCH_DRAIN_IN_PROCESS", "0")

from marketplace import create_app  # noqa: E402 - the settings above must come first

app = create_app()


def _warm_up() -> None:
    # Each worker loads the search dictionary (seconds on a busy host) as it starts, not on
    # its first search: after a restart or a worker replacement, searches answer at once.
    from catalog.search.schema import load_jieba

    load_jieba()


if os.environ.get("SEARCH_WARM_UP", "1") != "0":
    import threading

    threading.Thread(target=_warm_up, name="search-warm-up", daemon=True).start()
