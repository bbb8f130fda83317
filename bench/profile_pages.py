"""Where a page's time goes: CPU per request of the load benchmark's rows, in one process.

Run by hand, not as a test:

    .venv/bin/python bench/profile_pages.py --data /tmp/prof10k --listings 10000
    .venv/bin/python bench/profile_pages.py --data /tmp/prof10k --rows "search, first seen" \
        --profile 25

The first run fills ``--data`` (SQLite, uploads, search index) the way bench/load.py does
(demo data, the catalogue grown to ``--listings``, 40 orders for the demo buyer, a cart
line); later runs reuse it. Each row of bench/load.py's realistic mix then runs in this
process through the WSGI app (no HTTP, no gunicorn), each path once after a warm-up on
paths it never measures, and prints the CPU time per request (``time.process_time``), which
is steadier than requests/s on a shared machine. ``--profile N`` prints the N functions with
the most own time and the N with the most cumulative time of each row. The visitors' page
cache is in front of the visitor rows as in production, so a "first seen" row measures
misses; run bench/load.py for throughput against hello.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def prepare(data: Path, listings: int) -> None:
    """Fill ``data`` once: migrate, demo data, grown catalogue, buyer orders, index."""
    marker = data / "ready"
    if marker.exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SEARCH_DRAIN_IN_PROCESS": "0"}
    run = [sys.executable, "-m", "flask", "--app", "marketplace"]
    subprocess.run([*run, "init-db"], check=True, env=env, cwd=ROOT)
    subprocess.run([*run, "load-demo", "--if-empty"], check=True, env=env, cwd=ROOT)
    from load import buyer_orders, grow_catalogue

    from marketplace import create_app
    from marketplace.database import db
    from marketplace.demo.catalogue import BUYER_EMAIL

    app = create_app({"SEARCH_DRAIN_IN_PROCESS": False})
    with app.app_context():
        if listings:
            grow_catalogue(db.session, listings)
        buyer_orders(db.session, BUYER_EMAIL, 40)
    db.engine.dispose()
    subprocess.run([*run, "reindex"], check=True, env=env, cwd=ROOT)
    marker.write_text("ok\n")


def log_in(client, email: str, password: str, package_id: int | None = None) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    answer = client.post("/login", data={"csrf_token": token, "email": email,
                                         "password": password})
    if answer.status_code != 302:
        sys.exit(f"login failed with status {answer.status_code}")
    if package_id is not None:
        home = client.get("/").get_data(as_text=True)
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', home).group(1)
        client.post("/cart/add", data={"csrf_token": csrf, "package_id": str(package_id),
                                       "quantity": "1"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="directory for the database and index (filled on first use)")
    parser.add_argument("--listings", type=int, default=10000)
    parser.add_argument("--count", type=int, default=150, help="measured paths per row")
    parser.add_argument("--rows", default=None,
                        help="row names separated by semicolons (default: all)")
    parser.add_argument("--profile", type=int, default=0,
                        help="print this many functions of each row's profile")
    args = parser.parse_args()

    data = args.data.resolve()
    os.environ.update({
        "INSTANCE_DIR": str(data), "DATABASE_URL": f"sqlite:///{data / 'bench.sqlite'}",
        "UPLOAD_DIR": str(data / "uploads"), "SEARCH_INDEX_DIR": str(data / "search-index"),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_hex(32),
        "BENCH_HELLO_ROUTE": "1", "HTTPS": "0", "RATELIMIT_ENABLED": "0",
        "SEARCH_DRAIN_IN_PROCESS": "0",
    })
    prepare(data, args.listings)

    from load import pick_rows
    from sqlalchemy import func, select

    from catalog.models import Package, Product
    from marketplace import create_app
    from marketplace.database import db
    from marketplace.demo.catalogue import BUYER_EMAIL, DEMO_PASSWORD, PROVIDER_EMAIL

    app = create_app()
    with app.app_context():
        rows = pick_rows(db.session, args.count * 3)
        listings = db.session.scalar(select(func.count(Product.id)))
        package_id = db.session.scalar(select(Package.id).where(
            Package.product_id == int(rows[3].paths[0].rsplit("/", 1)[1])).limit(1))
        db.session.remove()
    clients = {None: app.test_client(), "buyer": app.test_client(),
               "provider": app.test_client()}
    for client in clients.values():
        client.environ_base["HTTP_USER_AGENT"] = "bench-profile/1.0"
    log_in(clients["buyer"], BUYER_EMAIL, DEMO_PASSWORD, package_id)
    log_in(clients["provider"], PROVIDER_EMAIL, DEMO_PASSWORD)
    for client in clients.values():  # compressed answers, as browsers ask for them
        client.environ_base["HTTP_ACCEPT_ENCODING"] = "br, gzip"
    wanted = set(args.rows.split(";")) if args.rows else None

    print(f"{listings} listings, {args.count} paths per row, load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'row':<30}{'CPU ms p50':>11}{'mean':>8}{'p95':>8}  cache (hit/miss/bypass)")
    for row in rows:
        if wanted and row.name not in wanted:
            continue
        client = clients[row.who]
        for path in (row.warm or row.paths)[:20]:
            client.get(path)
        paths = row.paths[: args.count] if row.distinct else row.paths * args.count
        profiler = cProfile.Profile() if args.profile else None
        times, cache = [], {"hit": 0, "miss": 0, "bypass": 0}
        for path in paths:
            started = time.process_time()
            if profiler:
                profiler.enable()
            answer = client.get(path)
            if profiler:
                profiler.disable()
            times.append((time.process_time() - started) * 1000)
            if answer.status_code != 200:
                sys.exit(f"{path}: status {answer.status_code}")
            state = answer.headers.get("X-Page-Cache")
            if state in cache:
                cache[state] += 1
        times.sort()
        print(f"{row.name:<30}{statistics.median(times):>11.1f}{statistics.fmean(times):>8.1f}"
              f"{times[int(len(times) * 0.95) - 1]:>8.1f}  "
              f"{cache['hit']}/{cache['miss']}/{cache['bypass']}")
        if profiler:
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(args.profile)
            stats.sort_stats("cumulative").print_stats(args.profile)


if __name__ == "__main__":
    main()
