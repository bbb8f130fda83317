"""Load benchmark: the app under gunicorn, driven by wrk, each page against a bare route.

Run by hand, not as a test (about five minutes with the default 10 s per row, plus the set-up):

    .venv/bin/python bench/load.py                       # demo data in a temporary SQLite
    .venv/bin/python bench/load.py --duration 5s         # quicker
    .venv/bin/python bench/load.py --gunicorn-threads 2  # gthread workers, 2 threads each
    .venv/bin/python bench/load.py --listings 10000      # a 10k-listing catalogue
    .venv/bin/python bench/load.py --compare-root /tmp/base   # before/after in the same run
    .venv/bin/python bench/load.py --database-url postgresql+psycopg://...  # an empty database

It installs wrk from Debian when it is missing (``apt-get install -y wrk``), migrates and
fills the database (``init-db``, ``load-demo``; with ``--listings`` the published demo
listings are copied until the catalogue has that many; 40 orders for the demo buyer and one
cart line), builds the search index (``reindex``), starts ``gunicorn -c gunicorn.conf.py
wsgi:app`` with 2 workers on 127.0.0.1 and a free port, logs in the demo enterprise buyer and
the demo provider (login form, CSRF token, session cookie) and drives each row with wrk for
``--duration``, every request with ``Accept-Encoding: br, gzip``:

- fixed URLs, served from the visitors' page cache after their first request: hello
  (``/bench/hello``: same app and middleware, no database, no template), home, category,
  product, search with filters;
- the realistic mix (issue 17), each row walking a list of distinct paths that no other row
  and no warm-up uses: searches drawn from the catalogue's words (Chinese, English, mixed,
  with filters, sorts and pages), product pages, category pages with filter and sort
  combinations; the logged-in buyer's product pages and searches;
- members' pages: the buyer's orders and cart, the provider's dashboard.

It prints requests/s, p50 and p99 latency, the count of answers other than 200 (a lost
session would show as redirects) plus socket errors, the ``X-Page-Cache`` answers of the
measured requests (hit/miss/bypass), the CPU time of the gunicorn workers per request (user +
system from /proc: steadier than requests/s on a shared machine), each row's throughput as a
ratio to hello with the goals of issue 17 (cached pages at least 0.30 of hello, an uncached
product page 0.15, a first-seen search with filters 0.10, the buyer's product and search pages
0.10), and the memory of each gunicorn process at the end. With ``--compare-root DIR`` a second
gunicorn serves the checkout in DIR (e.g. ``git archive <commit> | tar -x -C DIR``, with the
compiled .mo files copied in) on the same data, and every row runs against both, one after
the other. Rate limits are turned off for the run (``RATELIMIT_ENABLED=0``): wrk is one
client on one address. Everything it starts listens on 127.0.0.1 and is stopped at the end;
the temporary directory is removed.
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

# Goals of issue 17 (ratios to hello in the same run); every fixed-URL visitor page is a
# cached one and keeps at least 0.30.
GOALS = {
    "home": 0.30, "category": 0.30, "product": 0.30, "search+filters": 0.30,
    "product, first seen": 0.15, "search, first seen": 0.10,
    "product (buyer)": 0.10, "search (buyer)": 0.10,
}
ACCEPT_ENCODING = "br, gzip"
# Flask-Login's "strong" session protection ties a session to the client's address and
# User-Agent, so the login and wrk must present the same one.
USER_AGENT = "bench-load/1.0"
# Count every answer other than 200 (wrk itself only counts 4xx/5xx, and a lost session
# would show as fast 302 redirects to the login page).
WRK_SCRIPT = """
-- Each wrk thread walks its share of a list of paths (args: file, number of threads), or
-- repeats the URL when no file is given; counts answers other than 200 and X-Page-Cache.
local threads = {}
local started = 0
function setup(thread)
  thread:set("id", started)
  started = started + 1
  table.insert(threads, thread)
end
function init(args)
  not_ok, hit, miss, bypass, none = 0, 0, 0, 0, 0
  paths = {}
  if args[1] then for line in io.lines(args[1]) do table.insert(paths, line) end end
  stride = tonumber(args[2]) or 1
  position = id
end
function request()
  if #paths == 0 then return wrk.request() end
  local path = paths[(position % #paths) + 1]
  position = position + stride
  return wrk.format(nil, path)
end
function response(status, headers, body)
  if status ~= 200 then not_ok = not_ok + 1 end
  local cache = headers["X-Page-Cache"] or headers["x-page-cache"]
  if cache == "hit" then hit = hit + 1
  elseif cache == "miss" then miss = miss + 1
  elseif cache == "bypass" then bypass = bypass + 1
  else none = none + 1 end
end
function done(summary, latency, requests)
  local totals = {0, 0, 0, 0, 0}
  for _, thread in ipairs(threads) do
    totals[1] = totals[1] + thread:get("not_ok")
    totals[2] = totals[2] + thread:get("hit")
    totals[3] = totals[3] + thread:get("miss")
    totals[4] = totals[4] + thread:get("bypass")
    totals[5] = totals[5] + thread:get("none")
  end
  io.write(string.format("NOT200 %d\\n", totals[1]))
  io.write(string.format("CACHE %d %d %d %d\\n", totals[2], totals[3], totals[4], totals[5]))
end
"""


@dataclass
class Row:
    """One line of the table: a fixed URL, or a list of distinct paths walked in order."""
    name: str
    paths: list[str]
    who: str | None = None  # "buyer" or "provider": sent with that member's cookie
    warm: list[str] | None = None  # paths to warm the workers with (never measured ones)

    @property
    def distinct(self) -> bool:
        return len(self.paths) > 1


@dataclass
class Result:
    name: str
    path: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cache: str = ""  # hit/miss/bypass counts of the measured requests
    cpu_ms: float = 0.0  # CPU time of the gunicorn workers per request


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


def vocabulary(session) -> tuple[list[str], list[str]]:
    """Chinese words (jieba) and English words of the published listings' titles and tags."""
    import jieba
    from sqlalchemy import select

    from catalog.models import Product

    chinese, english = set(), set()
    rows = session.execute(select(Product.title, Product.title_alt, Product.tags).where(
        Product.status == "published").limit(3000))
    for title, title_alt, tags in rows:
        for text in (title, title_alt or "", *(tags or ())):
            for word in jieba.lcut(text):
                word = word.strip()
                if re.fullmatch(r"[\u4e00-\u9fff]{2,6}", word):
                    chinese.add(word)
                elif re.fullmatch(r"[A-Za-z]{4,14}", word):
                    english.add(word.lower())
    return sorted(chinese), sorted(english)


def pick_rows(session, count: int, seed: int = 17) -> list[Row]:
    """Fixed URLs (served from the visitors' page cache after the first request) and the
    realistic mix: distinct searches, product and category pages, members' pages."""
    import random
    from urllib.parse import urlencode

    from sqlalchemy import func, select

    from catalog.models import Category, Product
    from catalog.search.query import SORTS as SEARCH_SORTS
    from catalog.services import SORTS as CATEGORY_SORTS
    from catalog.services import visible_products_condition
    from marketplace.reference import REGIONS

    rng = random.Random(seed)
    top = session.execute(
        select(Category.slug, func.count(Product.id))
        .join(Product, Product.category_id == Category.id)
        .where(Product.status == "published", Category.parent_id.is_not(None))
        .group_by(Category.slug).order_by(func.count(Product.id).desc()).limit(1)).first()
    product_id = session.scalar(
        select(Product.id).where(Product.status == "published", Product.pricing_mode == "packaged")
        .order_by(Product.id).limit(1))
    product_ids = list(session.scalars(select(Product.id).where(
        visible_products_condition(), Product.id != product_id).order_by(Product.id)))
    rng.shuffle(product_ids)
    slugs = list(session.scalars(select(Category.slug)))
    regions = [code for code, _en, _zh in REGIONS]
    chinese, english = vocabulary(session)

    def query() -> str:
        kind = rng.random()
        if kind < 0.4:
            return " ".join(rng.sample(chinese, rng.choice((1, 1, 2))))
        if kind < 0.75:
            return " ".join(rng.sample(english, rng.choice((1, 1, 2))))
        return f"{rng.choice(chinese)} {rng.choice(english)}"

    def search_path() -> str:
        args = {"q": query()}
        if rng.random() < 0.5:
            args["region"] = rng.choice(regions)
        if rng.random() < 0.3:
            args["price_max"] = str(rng.choice((5000, 20000, 100000, 500000)))
        if rng.random() < 0.2:
            args["voucher"] = "1"
        if rng.random() < 0.3:
            args["sort"] = rng.choice([s for s in SEARCH_SORTS if s != "relevance"])
        if rng.random() < 0.15:
            args["page"] = "2"
        return "/search?" + urlencode(args)

    def category_path() -> str:
        args = {"sort": rng.choice(list(CATEGORY_SORTS))}
        if rng.random() < 0.5:
            args["region"] = rng.choice(regions)
        if rng.random() < 0.4:
            args["mode"] = rng.choice(("packaged", "quote", "financial"))
        if rng.random() < 0.2:
            args["voucher"] = "1"
        if rng.random() < 0.2:
            args["page"] = "2"
        return f"/c/{rng.choice(slugs)}?" + urlencode(args)

    def distinct(make, n: int) -> list[str]:
        seen: dict[str, None] = {}
        for _attempt in range(n * 20):
            seen[make()] = None
            if len(seen) >= n:
                break
        return list(seen)

    warm = count // 10 + 20
    searches = distinct(search_path, 3 * count + warm)
    categories = distinct(category_path, count + warm)
    products = [f"/products/{pid}" for pid in product_ids]
    visitor_products, buyer_products = products[: len(products) // 2], products[len(products) // 2:]
    return [
        Row("hello", ["/bench/hello"]),
        Row("home", ["/"]),
        Row("category", [f"/c/{top[0]}"]),
        Row("product", [f"/products/{product_id}"]),
        Row("search+filters", ["/search?q=patent&region=suzhou&price_max=100000&sort=price_asc"]),
        Row("search, first seen", searches[warm: warm + count], warm=searches[:warm]),
        Row("product, first seen", visitor_products[warm:], warm=visitor_products[:warm]),
        Row("category+filters, first seen", categories[warm:], warm=categories[:warm]),
        Row("product (buyer)", buyer_products[warm:], "buyer", warm=buyer_products[:warm]),
        Row("search (buyer)", searches[warm + count:], "buyer",
            warm=searches[warm + count: warm + count + warm]),
        Row("my orders (buyer)", ["/orders"], "buyer"),
        Row("cart (buyer)", ["/cart"], "buyer"),
        Row("dashboard (provider)", ["/provider"], "provider"),
    ]


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


def log_in(base: str, email: str, password: str, package_id: int | None = None) -> str:
    """Log in through the form like a browser (and put one line in the cart); the cookie."""
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
    if package_id is not None:
        home = browser.get(f"{base}/", timeout=10).text
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', home).group(1)
        added = browser.post(f"{base}/cart/add", data={
            "csrf_token": csrf, "package_id": str(package_id), "quantity": "1"},
            allow_redirects=False, timeout=10)
        if added.status_code != 302:
            sys.exit(f"adding to the cart failed with status {added.status_code}")
    return "; ".join(f"{c.name}={c.value}" for c in browser.cookies)


def worker_cpu_seconds(master: int) -> float:
    """User + system CPU of the gunicorn workers (children of ``master``), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def parse_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def memory_mib(pid: int) -> dict[str, float]:
    """RSS, PSS (shared pages split between their users) and private memory of a process."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) / 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"],
            "private": fields["Private_Clean"] + fields["Private_Dirty"]}


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                pids.append(int(entry.name))
    return sorted(pids)


def memory_line(master: int) -> str:
    parts = []
    for label, pid in [("master", master)] + [("worker", pid) for pid in worker_pids(master)]:
        memory = memory_mib(pid)
        parts.append(f"{label} RSS {memory['rss']:.0f} / PSS {memory['pss']:.0f} / private "
                     f"{memory['private']:.0f} MiB")
    return "; ".join(parts)


def run_wrk(wrk: str, row: Row, base: str, cookie: str | None, duration: str,
            connections: int, threads: int, script: Path, work: Path, master: int,
            paths: list[str] | None = None) -> Result:
    import requests

    paths = paths if paths is not None else row.paths
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING,
               **({"Cookie": cookie} if cookie else {})}
    if len(paths) == 1:  # a fixed URL must answer 200 (and is cached by this request)
        check = requests.get(base + paths[0], headers=headers, allow_redirects=False, timeout=30)
        if check.status_code != 200:
            sys.exit(f"{row.name}: {paths[0]} answered {check.status_code} before the run")
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}", "--latency",
               "--timeout", "10s", "-s", str(script), "-H", f"User-Agent: {USER_AGENT}",
               "-H", f"Accept-Encoding: {ACCEPT_ENCODING}"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    command.append(base + paths[0])
    if len(paths) > 1:
        listing = work / "paths.txt"
        listing.write_text("\n".join(paths) + "\n")
        command += ["--", str(listing), str(threads)]
    cpu_before = worker_cpu_seconds(master)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu = worker_cpu_seconds(master) - cpu_before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = parse_ms(re.search(r"^\s+50%\s+(\S+)", output, re.M).group(1))
    p99 = parse_ms(re.search(r"^\s+99%\s+(\S+)", output, re.M).group(1))
    requests_done = int(re.search(r"(\d+) requests in", output).group(1))
    errors = int(re.search(r"NOT200 (\d+)", output).group(1))
    if match := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                          output):
        errors += sum(int(x) for x in match.groups())
    hit, miss, bypass, _none = (int(x) for x in re.search(
        r"CACHE (\d+) (\d+) (\d+) (\d+)", output).groups())
    cache = "" if not (hit or miss or bypass) else f"{hit}/{miss}/{bypass}"
    if len(paths) > 1 and requests_done > len(paths):
        cache += f" (list of {len(paths)} wrapped)"
    return Result(row.name, paths[0], rps, p50, p99, errors, requests_done, cache,
                  1000 * cpu / requests_done if requests_done else 0.0)


def print_table(title: str, results: list[Result], loadavg: tuple[str, str]) -> None:
    hello = results[0].rps
    print(f"\n{title}\nload average before {loadavg[0]}, after {loadavg[1]}\n")
    print("| page | requests/s | p50 ms | p99 ms | errors | ratio to hello | CPU ms/request "
          "| hit/miss/bypass | goal |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for result in results:
        ratio = result.rps / hello if hello else 0
        goal = GOALS.get(result.name)
        verdict = "" if goal is None else (f"≥ {goal:.2f} " + ("met" if ratio >= goal else "MISSED"))
        print(f"| {result.name} | {result.rps:.0f} | {result.p50_ms:.1f} | {result.p99_ms:.1f} "
              f"| {result.errors} | {ratio:.2f} | {result.cpu_ms:.1f} | {result.cache} "
              f"| {verdict} |")
    errors = sum(result.errors for result in results)
    print(f"\nerror responses: {errors} ({'goal met' if errors == 0 else 'goal MISSED'})")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


@dataclass
class Server:
    """One gunicorn serving the app from a checkout (this one, or --compare-root)."""
    label: str
    root: Path
    env: dict
    base: str
    process: subprocess.Popen | None = None
    cookies: dict | None = None
    results: list | None = None


def start_server(server: Server, work: Path) -> None:
    log_path = work / f"gunicorn-{server.label}.log"
    server.process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
        env=server.env, cwd=server.root, stdout=subprocess.DEVNULL,
        stderr=open(log_path, "w"))  # noqa: SIM115 - closed with the process
    wait_healthy(server.base, server.process, log_path)


def stop_server(server: Server) -> None:
    if server.process is None:
        return
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()


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
                        help="page names to run, separated by commas, or by semicolons when a "
                             "name has a comma (\"product, first seen;search (buyer)\"); "
                             "hello always runs")
    parser.add_argument("--distinct", type=int, default=3000,
                        help="distinct paths per first-seen row (default 3000)")
    parser.add_argument("--compare-root", default=None, type=Path,
                        help="another checkout (e.g. a worktree of the base commit) served "
                             "the same way on the same data; each row runs against both, "
                             "one after the other, for a before/after in the same run")
    args = parser.parse_args()

    wrk = ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="load-bench-"))
    common = {
        **os.environ,
        "INSTANCE_DIR": str(work),
        "DATABASE_URL": args.database_url or f"sqlite:///{work / 'bench.sqlite'}",
        "UPLOAD_DIR": str(work / "uploads"),
        "SECRET_KEY": secrets.token_hex(32),
        "BENCH_HELLO_ROUTE": "1",
        "HTTPS": "0",  # plain HTTP on loopback
        "RATELIMIT_ENABLED": "0",
        "SEARCH_DRAIN_IN_PROCESS": "0",
        "WEB_CONCURRENCY": str(args.workers),
        "GUNICORN_THREADS": str(args.gunicorn_threads),
    }
    servers = []
    for label, root in ([("before", args.compare_root.resolve())] if args.compare_root else []) + [
            ("this", ROOT)]:
        port = free_port()
        servers.append(Server(label, root, {
            **common,
            "SEARCH_INDEX_DIR": str(work / f"search-index-{label}"),
            "BIND": f"127.0.0.1:{port}",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(root),
                                                        os.environ.get("PYTHONPATH")])),
        }, f"http://127.0.0.1:{port}"))
    env = servers[-1].env
    os.environ.update({k: env[k] for k in ("INSTANCE_DIR", "DATABASE_URL", "SEARCH_INDEX_DIR",
                                           "UPLOAD_DIR", "SECRET_KEY")})
    try:
        print("==> Migrating and loading the demo data")
        flask(env, "init-db")
        flask(env, "load-demo", "--if-empty")
        from marketplace import create_app
        from marketplace.database import db
        from marketplace.demo.catalogue import BUYER_EMAIL, DEMO_PASSWORD, PROVIDER_EMAIL

        app = create_app({"SEARCH_DRAIN_IN_PROCESS": False})
        with app.app_context():
            if args.listings:
                print(f"==> Growing the catalogue to {args.listings} listings")
                grow_catalogue(db.session, args.listings)
            from sqlalchemy import func, select

            from catalog.models import Package, Product
            from orders.models import Order

            if not db.session.scalar(select(func.count(Order.id))):
                buyer_orders(db.session, BUYER_EMAIL, 40)
            listings = db.session.scalar(select(func.count(Product.id)))
            rows = pick_rows(db.session, args.distinct)
            package_id = db.session.scalar(select(Package.id).where(
                Package.product_id == int(rows[3].paths[0].rsplit("/", 1)[1])).limit(1))
        db.engine.dispose()
        for server in servers:
            print(f"==> Building the search index ({server.label}: {server.root})")
            subprocess.run([sys.executable, "-m", "flask", "--app", "marketplace", "reindex"],
                           check=True, env=server.env, cwd=server.root)
            print(f"==> Starting gunicorn ({args.workers} workers x {args.gunicorn_threads} "
                  f"threads) on {server.base} ({server.label})")
            start_server(server, work)
            server.cookies = {"buyer": log_in(server.base, BUYER_EMAIL, DEMO_PASSWORD, package_id),
                              "provider": log_in(server.base, PROVIDER_EMAIL, DEMO_PASSWORD)}
            server.results = []
        script = work / "count.lua"
        script.write_text(WRK_SCRIPT)
        wanted = (set(args.pages.split(";" if ";" in args.pages else ",")) if args.pages
                  else None)
        load_before = loadavg()
        for row in rows:
            if wanted and row.name != "hello" and row.name not in wanted:
                continue
            for server in servers:
                cookie = server.cookies[row.who] if row.who else None
                # Warm each worker (jieba, templates, index readers) before measuring; the
                # first-seen rows warm with paths they never measure.
                run_wrk(wrk, row, server.base, cookie, "2s", args.connections, args.threads,
                        script, work, server.process.pid, paths=row.warm or row.paths)
                result = run_wrk(wrk, row, server.base, cookie, args.duration, args.connections,
                                 args.threads, script, work, server.process.pid)
                print(f"    {server.label:<7}{row.name:<30} {result.rps:8.0f} req/s  "
                      f"p50 {result.p50_ms:7.1f} ms  CPU {result.cpu_ms:6.1f} ms/request  "
                      f"{result.cache}  errors {result.errors}")
                server.results.append(result)
        load_after = loadavg()
        for server in servers:
            print_table(f"{server.label} ({server.root}): {listings} listings, gunicorn "
                        f"{args.workers} workers x {args.gunicorn_threads} threads, wrk "
                        f"{args.duration} per page, Accept-Encoding: {ACCEPT_ENCODING}",
                        server.results, (load_before, load_after))
            print(f"memory after the run: {memory_line(server.process.pid)}")
    finally:
        for server in servers:
            stop_server(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
