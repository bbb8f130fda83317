"""Gunicorn settings for ``gunicorn -c gunicorn.conf.py wsgi:app``, read from the environment.

WEB_CONCURRENCY   worker processes (default: 2 x CPU cores + 1)
GUNICORN_THREADS  threads per worker; more than 1 uses the gthread worker (default 1)
                  (2 measured better for catalogue pages served from the visitors' page cache:
                  docs/performance.md)
BIND              address to listen on (default 127.0.0.1:8000; put a proxy in front)
GUNICORN_TIMEOUT  seconds before a silent worker is killed and replaced (default 30)
GUNICORN_MAX_REQUESTS  recycle a worker after this many requests, 0 = never (default 0)
FORWARDED_ALLOW_IPS    proxies whose X-Forwarded-* headers are trusted (default 127.0.0.1)
SEARCH_WARM_UP    0 = do not load the search dictionaries before forking (default 1)
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = _int("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1)
threads = _int("GUNICORN_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = 30
keepalive = 5
max_requests = _int("GUNICORN_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The app writes one JSON line per request itself (marketplace/serving.py), with the user
# and request id gunicorn cannot know; gunicorn's own access log would only repeat it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Each worker builds its own app: no database connection or index handle crosses a fork.
preload_app = False


# The search dictionaries (jieba's word list and its prefix dictionary, pypinyin's tables,
# OpenCC's conversion tables: about 90 MiB and two seconds) are loaded once here, in the
# master, before it forks the workers: every worker shares those pages copy-on-write instead
# of building its own copy on its first search (issue 17; docs/performance.md). They are
# plain data, no connection or thread crosses the fork; ``gc.freeze()`` keeps the collector
# from writing to (and so copying) their object headers in each worker. Nothing of the
# application itself is imported here: each worker still builds its own app.
def _preload_search_dictionaries() -> None:
    import gc
    import logging
    import tempfile

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.dt.tmp_dir = tempfile.gettempdir()
    jieba.initialize()  # the app's load_jieba() finds it initialised
    # OpenCC's converter and pypinyin's tables, through the module that keeps them (stdlib
    # and Whoosh imports only; no application state).
    from catalog.search.text import _syllables, to_simplified

    to_simplified("專")
    _syllables("专利")
    gc.collect()
    gc.freeze()


if os.environ.get("SEARCH_WARM_UP", "1") != "0":
    _preload_search_dictionaries()
