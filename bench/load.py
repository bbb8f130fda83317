"""Load benchmark: the app under gunicorn, driven by wrk, each page against a bare route.

Run by hand, not as a test (it takes about two minutes with the default 10 s per page):

    .venv/bin/python bench/load.py                       # demo data in a temporary SQLite
    .venv/bin/python bench/load.py --duration 5s         # quicker
    .venv/bin/python bench/load.py --gunicorn-threads 2  # gthread workers, 2 threads each
    .venv/bin/python bench/load.py --listings 100000     # a 100k-listing catalogue
    .venv/bin/python bench/load.py --database-url postgresql+psycopg://...  # an empty database

It installs wrk from Debian when it is missing (``apt-get install -y wrk``), migrates and
fills the database (``init-db``, ``load-demo``; with ``--listings`` the published demo
listings are copied until the catalogue has that many; 40 orders for the demo buyer and one
cart line), builds the search index (``reindex``), starts ``gunicorn -c gunicorn.conf.py
wsgi:app`` with 2 workers on 127.0.0.1 and a free port, logs in the demo enterprise buyer
(login form, CSRF token, session cookie) and drives each page with wrk for ``--duration``:

    hello (``/bench/hello``: same app and middleware, no database, no template), home,
    category, product, search with filters, and for the logged-in buyer: my orders, cart.

It prints requests/s, p50 and p99 latency, the count of answers other than 200 (a lost
session would show as redirects) plus socket errors, the ``X-Page-Cache`` answer just before
the run (``hit``: served from the visitors' page cache), and each page's throughput as a ratio
to hello, with the goals of issue 7: product
and category at least 0.25 of hello, search with filters at least 0.10, no errors. Rate
limits are turned off for the run (``RATELIMIT_ENABLED=0``): wrk is one client on one address.
Everything it starts listens on 127.0.0.1 and is stopped at the end; the temporary directory
is removed.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOALS = {"product": 0.25, "category": 0.25, "search+filters": 0.10}
# Flask-Login's "strong" session protection ties a session to the client's address and
# User-Agent, so the login and wrk must present the same one.
USER_AGENT = "bench-load/1.0"
# Count every answer other than 200 (wrk itself only counts 4xx/5xx, and a lost session
# would show as fast 302 redirects to the login page).
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) not_ok = 0 end
function response(status, headers, body) if status ~= 200 then not_ok = not_ok + 1 end end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("not_ok") end
  io.write(string.format("NOT200 %d\\n", total))
end
"""


@dataclass
class Result:
    name: str
    path: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cache: str = ""  # X-Page-Cache of a request just before the run (hit, miss, bypass)


# --------------------------------------------------------------------------- set-up

def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("==> Installing wrk from Debian (apt-get install -y wrk)")
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, "apt-get", "update", "-q"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", "wrk"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return shutil.which("wrk") or sys.exit("wrk did not install")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flask(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "marketplace", *args],
                   check=True, env=env, cwd=ROOT)


def grow_catalogue(session, target: int) -> int:
    """Copy published listings (with their packages) until ``target`` listings exist."""
    from sqlalchemy import func, insert, select

    from catalog.models import Package, Product

    count = session.scalar(select(func.count(Product.id)))
    if count >= target:
        return count
    product_table, package_table = Product.__table__, Package.__table__
    originals = [dict(row) for row in session.execute(
        select(product_table).where(product_table.c.status == "published")
        .order_by(product_table.c.id)).mappings()]
    packages: dict[int, list[dict]] = {}
    for row in session.execute(select(package_table)).mappings():
        packages.setdefault(row["product_id"], []).append(dict(row))
    copy_number = 0
    while count < target:
        copy_number += 1
        batch = originals[: min(len(originals), target - count)]
        rows = []
        for original in batch:
            row = {k: v for k, v in original.items() if k != "id"}
            row["title"] = f"{original['title']} · {copy_number + 1}"[:200]
            row["featured"] = False
            if row.get("published_at") is not None:
                row["published_at"] = row["published_at"] - timedelta(minutes=copy_number)
            rows.append(row)
        for start in range(0, len(rows), 1000):
            chunk, sources = rows[start:start + 1000], batch[start:start + 1000]
            ids = list(session.scalars(insert(Product).returning(
                Product.id, sort_by_parameter_order=True), chunk))
            package_rows = [
                {**{k: v for k, v in package.items() if k not in ("id", "product_id")},
                 "product_id": new_id}
                for new_id, source in zip(ids, sources, strict=True)
                for package in packages.get(source["id"], [])]
            if package_rows:
                session.execute(insert(Package), package_rows)
        session.commit()
        count += len(batch)
        print(f"    {count} listings", end="\r", flush=True)
    print()
    return count


def buyer_orders(session, buyer_email: str, count: int) -> None:
    """Orders of the demo buyer in every state, so "my orders" is a real page."""
    from sqlalchemy import select

    from catalog.models import Product
    from marketplace.models import User
    from orders.models import Order, OrderLine

    buyer = session.scalar(select(User).where(User.email == buyer_email))
    products = list(session.scalars(select(Product).where(
        Product.status == "published", Product.pricing_mode == "packaged")
        .order_by(Product.id).limit(count)))
    statuses = ["pending_payment", "paid", "accepted", "in_progress", "delivered", "completed",
                "declined", "cancelled"]
    for n, product in enumerate(products):
        package = product.packages[0]
        order = Order(number=f"BENCH-{n:06d}", buyer_org_id=buyer.organisation_id,
                      buyer_user_id=buyer.id, provider_org_id=product.provider_id,
                      product_id=product.id, category_id=product.category_id,
                      title=product.title, currency=product.currency, subtotal=package.price,
                      commission_bp=500, status=statuses[n % len(statuses)])
        order.lines.append(OrderLine(product_id=product.id, package_id=package.id,
                                     product_title=product.title, package_name=package.name,
                                     unit_price=package.price, quantity=1,
                                     delivery_days=package.delivery_days))
        session.add(order)
    session.commit()


def pick_pages(session) -> dict[str, str]:
    from sqlalchemy import func, select

    from catalog.models import Category, Product

    top = session.execute(
        select(Category.slug, func.count(Product.id))
        .join(Product, Product.category_id == Category.id)
        .where(Product.status == "published", Category.parent_id.is_not(None))
        .group_by(Category.slug).order_by(func.count(Product.id).desc()).limit(1)).first()
    product_id = session.scalar(
        select(Product.id).where(Product.status == "published", Product.pricing_mode == "packaged")
        .order_by(Product.id).limit(1))
    return {
        "hello": "/bench/hello",
        "home": "/",
        "category": f"/c/{top[0]}",
        "product": f"/products/{product_id}",
        "search+filters": "/search?q=patent&region=suzhou&price_max=100000&sort=price_asc",
        "my orders (buyer)": "/orders",
        "cart (buyer)": "/cart",
    }


# --------------------------------------------------------------------------- running

def wait_healthy(base: str, process: subprocess.Popen, log_path: Path,
                 timeout: float = 60.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            # The log lives in the work dir, which is removed on exit: show its end now.
            tail = log_path.read_text(errors="replace").splitlines()[-40:]
            print("\n".join(tail), file=sys.stderr)
            sys.exit("gunicorn exited while starting; the end of its log is above")
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    sys.exit("gunicorn did not become healthy in time")


def log_in(base: str, email: str, password: str, package_id: int) -> str:
    """Log in through the form like a browser and put one line in the cart; the cookie."""
    import requests

    browser = requests.Session()
    browser.headers["User-Agent"] = USER_AGENT
    page = browser.get(f"{base}/login", timeout=10).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'<meta name="csrf-token" content="([^"]+)"', page)
    response = browser.post(f"{base}/login", data={
        "csrf_token": token.group(1), "email": email, "password": password},
        allow_redirects=False, timeout=10)
    if response.status_code != 302:
        sys.exit(f"login failed with status {response.status_code}")
    home = browser.get(f"{base}/", timeout=10).text
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', home).group(1)
    added = browser.post(f"{base}/cart/add", data={
        "csrf_token": csrf, "package_id": str(package_id), "quantity": "1"},
        allow_redirects=False, timeout=10)
    if added.status_code != 302:
        sys.exit(f"adding to the cart failed with status {added.status_code}")
    return "; ".join(f"{c.name}={c.value}" for c in browser.cookies)


def parse_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(wrk: str, name: str, base: str, path: str, cookie: str | None,
            duration: str, connections: int, threads: int, script: Path) -> Result:
    import requests

    headers = {"User-Agent": USER_AGENT, **({"Cookie": cookie} if cookie else {})}
    check = requests.get(base + path, headers=headers, allow_redirects=False, timeout=30)
    if check.status_code != 200:
        sys.exit(f"{name}: {path} answered {check.status_code} before the run")
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}", "--latency",
               "--timeout", "10s", "-s", str(script), "-H", f"User-Agent: {USER_AGENT}"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    output = subprocess.run([*command, base + path], capture_output=True, text=True,
                            check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = parse_ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))
    p99 = parse_ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))
    requests_done = int(re.search(r"(\d+) requests in", output).group(1))
    errors = int(re.search(r"NOT200 (\d+)", output).group(1))
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                          output):
        errors += sum(int(x) for x in match.groups())
    return Result(name, path, rps, p50, p99, errors, requests_done,
                  check.headers.get("X-Page-Cache", ""))


def print_table(results: list[Result], listings: int, duration: str, workers: int,
                threads: int = 1) -> None:
    hello = results[0].rps
    print(f"\n{listings} listings, gunicorn {workers} workers x {threads} threads, "
          f"wrk {duration} per page\n")
    print("| page | requests/s | p50 ms | p99 ms | errors | ratio to hello | page cache | goal |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for result in results:
        ratio = result.rps / hello if hello else 0
        goal = GOALS.get(result.name)
        verdict = "" if goal is None else (f"≥ {goal:.2f} " + ("met" if ratio >= goal else "MISSED"))
        print(f"| {result.name} | {result.rps:.0f} | {result.p50_ms:.1f} | {result.p99_ms:.1f} "
              f"| {result.errors} | {ratio:.2f} | {result.cache} | {verdict} |")
    errors = sum(result.errors for result in results)
    print(f"\nerror responses: {errors} ({'goal met' if errors == 0 else 'goal MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", default="10s", help="wrk run per page (default 10s)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--gunicorn-threads", type=int,
                        default=int(os.environ.get("GUNICORN_THREADS") or 1),
                        help="threads per gunicorn worker (GUNICORN_THREADS; default 1)")
    parser.add_argument("--listings", type=int, default=0,
                        help="grow the catalogue to this many listings (e.g. 100000)")
    parser.add_argument("--database-url", default=None,
                        help="an empty database to use instead of a temporary SQLite file")
    parser.add_argument("--pages", default=None,
                        help="comma-separated page names to run (hello always runs)")
    args = parser.parse_args()

    wrk = ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "INSTANCE_DIR": str(work),
        "DATABASE_URL": args.database_url or f"sqlite:///{work / 'bench.sqlite'}",
        "SEARCH_INDEX_DIR": str(work / "search-index"),
        "UPLOAD_DIR": str(work / "uploads"),
        "SECRET_KEY": secrets.token_hex(32),
        "BENCH_HELLO_ROUTE": "1",
        "HTTPS": "0",  # plain HTTP on loopback
        "RATELIMIT_ENABLED": "0",
        "SEARCH_DRAIN_IN_PROCESS": "0",
        "WEB_CONCURRENCY": str(args.workers),
        "GUNICORN_THREADS": str(args.gunicorn_threads),
        "BIND": f"127.0.0.1:{port}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    os.environ.update({k: env[k] for k in ("INSTANCE_DIR", "DATABASE_URL", "SEARCH_INDEX_DIR",
                                           "UPLOAD_DIR", "SECRET_KEY")})
    server = None
    try:
        print("==> Migrating and loading the demo data")
        flask(env, "init-db")
        flask(env, "load-demo", "--if-empty")
        from marketplace import create_app
        from marketplace.database import db
        from marketplace.demo.catalogue import BUYER_EMAIL, DEMO_PASSWORD

        app = create_app({"SEARCH_DRAIN_IN_PROCESS": False})
        with app.app_context():
            if args.listings:
                print(f"==> Growing the catalogue to {args.listings} listings")
                grow_catalogue(db.session, args.listings)
            from sqlalchemy import func, select

            from catalog.models import Product
            from orders.models import Order

            if not db.session.scalar(select(func.count(Order.id))):
                buyer_orders(db.session, BUYER_EMAIL, 40)
            listings = db.session.scalar(select(func.count(Product.id)))
            pages = pick_pages(db.session)
            from catalog.models import Package

            package_id = db.session.scalar(select(Package.id).where(
                Package.product_id == int(pages["product"].rsplit("/", 1)[1])).limit(1))
        db.engine.dispose()
        print("==> Building the search index")
        flask(env, "reindex")
        print(f"==> Starting gunicorn ({args.workers} workers x {args.gunicorn_threads} "
              f"threads) on {base}")
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=open(work / "gunicorn.log", "w"))  # noqa: SIM115 - closed with the process
        wait_healthy(base, server, work / "gunicorn.log")
        cookie = log_in(base, BUYER_EMAIL, DEMO_PASSWORD, package_id)
        script = work / "count.lua"
        script.write_text(WRK_SCRIPT)
        wanted = set(args.pages.split(",")) if args.pages else None
        results = []
        for name, path in pages.items():
            if wanted and name != "hello" and name not in wanted:
                continue
            # Warm each worker (jieba, templates, index readers) before measuring.
            run_wrk(wrk, name, base, path, cookie if "buyer" in name else None, "2s",
                    args.connections, args.threads, script)
            result = run_wrk(wrk, name, base, path, cookie if "buyer" in name else None,
                             args.duration, args.connections, args.threads, script)
            print(f"    {name:<20} {result.rps:8.0f} req/s  p50 {result.p50_ms:7.1f} ms  "
                  f"p99 {result.p99_ms:7.1f} ms  errors {result.errors}")
            results.append(result)
        print_table(results, listings, args.duration, args.workers, args.gunicorn_threads)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
