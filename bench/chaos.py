"""Chaos benchmark (issue 16): buyers checking out and staff acting while PostgreSQL, Redis
and localstripe are restarted at random moments; then the money is checked.

Run by hand, not as a test:

    .venv/bin/python bench/chaos.py                    # 5 minutes
    .venv/bin/python bench/chaos.py --duration 60      # a short run
    .venv/bin/python bench/chaos.py --seed 7 --buyers 4

It starts everything itself, on 127.0.0.1 and free ports, and removes it at the end: a
throwaway PostgreSQL cluster and Redis (the helpers of tests/test_cluster.py, the same
commands as scripts/test), localstripe (scripts/localstripe_server.py), and one app host
(gunicorn with 2 workers, its drain-outbox and send-mail loops). Traffic, for ``--duration``
seconds:

- ``--buyers`` threads, each an enterprise member: add a package to the cart, check out by
  card (localstripe test card), look at the order; log in again when a restart signed them
  out of nothing (sessions are cookies; only a database outage interrupts them);
- one institution member accepting paid orders (the card hold is captured: Stripe + ledger);
- one staff member reading the console and order list and suspending / reinstating a listing.

Every 5-15 s (random, ``--seed``) one dependency is restarted: PostgreSQL (stopped 2-6 s),
Redis (stopped 2-6 s) or localstripe (killed and started again: it keeps nothing, so intents
made before are gone, as after a real outage they would be unreachable).

At the end, with everything up, it runs ``run-order-timers`` once, as cron would (a card
attempt whose answer was lost in an outage is asked of Stripe there), then checks the
database and localstripe:

- no order paid twice (at most one held or captured payment per order);
- no card payment that was authorised without its ledger entries;
- every order's ledger balanced (entries sum to zero);
- every card hold localstripe still has (``requires_capture``) attached to a held payment
  of ours; none orphaned.

It prints requests served, errors by kind and ``lost or doubled: N`` (0 expected).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_cluster import Host, Postgres, Redis, _free_port, _wait  # noqa: E402

CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class LocalStripe:
    def __init__(self):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "localstripe_server.py"), "--port",
             str(self.port), "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        _wait(lambda: socket.create_connection(("127.0.0.1", self.port), 0.2).close() or True,
              30)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def intents(self) -> list[dict]:
        found, params = [], {"limit": 100}
        while True:
            page = requests.get(f"{self.url}/v1/payment_intents", params=params, timeout=10,
                                auth=("sk_test_chaos", "")).json()
            found.extend(page.get("data") or [])
            if not page.get("has_more") or not page.get("data"):
                return found
            params["starting_after"] = page["data"][-1]["id"]


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.served = 0
        self.errors: Counter = Counter()
        self.actions: Counter = Counter()

    def answer(self, response) -> None:
        with self.lock:
            self.served += 1
            code = response.status_code
            if code == 503:
                self.errors["503 database unavailable (own page)"] += 1
            elif code >= 500:
                self.errors[f"{code} server error"] += 1
            elif code == 429:
                self.errors["429 rate limited"] += 1

    def failed(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] += 1

    def did(self, action: str) -> None:
        with self.lock:
            self.actions[action] += 1


class Client:
    def __init__(self, base: str, email: str, tally: Tally, address: str):
        self.base, self.email, self.tally = base, email, tally
        self.session = requests.Session()
        self.session.headers["X-Forwarded-For"] = address

    def request(self, method: str, path: str, **kwargs):
        try:
            response = self.session.request(method, self.base + path, timeout=20,
                                            allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            self.tally.failed(f"connection: {type(exc).__name__}")
            return None
        self.tally.answer(response)
        return response

    def token(self, path: str) -> str | None:
        response = self.request("GET", path)
        if response is None or response.status_code != 200:
            return None
        found = CSRF.search(response.text)
        return found.group(1) if found else None

    def post(self, path: str, data: dict, form_page: str = "/"):
        token = self.token(form_page)
        if token is None:
            return None
        return self.request("POST", path, data={"csrf_token": token, **data})

    def log_in(self) -> bool:
        from factories import PASSWORD  # every seeded account's password

        response = self.post("/login", {"email": self.email, "password": PASSWORD}, "/login")
        return response is not None and response.status_code == 302


def buyer(client: Client, packages: list[int], stop: threading.Event, rng: random.Random):
    logged_in = False
    while not stop.is_set():
        if not logged_in:
            logged_in = client.log_in()
            if not logged_in:
                time.sleep(0.5)
                continue
        added = client.post("/cart/add", {"package_id": rng.choice(packages)}, "/cart")
        if added is None or added.status_code not in (302, 200):
            time.sleep(0.3)
            continue
        page = client.request("GET", "/checkout")
        if page is None or page.status_code != 200:
            if page is not None and page.status_code == 302 and "/login" in page.headers.get(
                    "Location", ""):
                logged_in = False
            time.sleep(0.3)
            continue
        token = re.search(r'name="token" value="([^"]+)"', page.text)
        csrf = CSRF.search(page.text)
        if not token or not csrf:
            continue
        paid = client.request("POST", "/checkout", data={
            "csrf_token": csrf.group(1), "token": token.group(1), "payment_method": "card",
            "card_number": "4242 4242 4242 4242", "card_expiry": "12/30", "card_cvc": "123"})
        if paid is not None and paid.status_code == 302:
            client.tally.did("checkouts")
            client.request("GET", paid.headers["Location"])
        time.sleep(rng.uniform(0.1, 0.5))


def provider(client: Client, database_url: str, stop: threading.Event):
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from orders.models import Order

    engine = create_engine(database_url, pool_pre_ping=True)
    logged_in = False
    while not stop.is_set():
        try:
            if not logged_in:
                logged_in = client.log_in()
                if not logged_in:
                    time.sleep(0.5)
                    continue
            with Session(engine) as session:
                paid = session.scalars(select(Order.id).where(Order.status == "paid")
                                       .order_by(Order.id).limit(3)).all()
            for order_id in paid:
                done = client.post(f"/orders/{order_id}/actions/accept", {},
                                   f"/orders/{order_id}")
                if done is not None and done.status_code == 302:
                    client.tally.did("accept attempts")
        except Exception as exc:  # noqa: BLE001 - the database is down: try again
            client.tally.failed(f"provider's own query: {type(exc).__name__}")
        time.sleep(0.7)
    engine.dispose()


def staff(client: Client, listing: int, stop: threading.Event):
    logged_in, suspended = False, False
    while not stop.is_set():
        if not logged_in:
            logged_in = client.log_in()
            if not logged_in:
                time.sleep(0.5)
                continue
        for path in ("/staff", "/staff/orders"):
            client.request("GET", path)
        decision = "reinstate" if suspended else "suspend"
        done = client.post(f"/staff/moderation/{listing}/{decision}",
                           {"reason": "Chaos benchmark check"}, f"/staff/moderation/{listing}")
        if done is not None and done.status_code == 302:
            suspended = not suspended
            client.tally.did(f"listing {decision}")
        time.sleep(1.0)


def chaos(postgres: Postgres, redis: Redis, stripe: LocalStripe, stop: threading.Event,
          rng: random.Random, log: list):
    while not stop.wait(rng.uniform(5, 15)):
        victim = rng.choice(["postgresql", "redis", "localstripe"])
        down = rng.uniform(2, 6)
        started = time.monotonic()
        if victim == "postgresql":
            postgres.stop("fast")
            time.sleep(down)
            postgres.start()
        elif victim == "redis":
            redis.stop()
            time.sleep(down)
            redis.start()
        else:
            stripe.stop()
            time.sleep(down / 3)
            stripe.start()
        log.append((victim, round(time.monotonic() - started, 1)))


def check_money(database_url: str, stripe: LocalStripe) -> dict[str, int]:
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from orders.models import LedgerEntry, Order, Payment

    engine = create_engine(database_url)
    with Session(engine) as session:
        paid_twice = session.execute(
            select(Payment.order_id).where(Payment.status.in_(("held", "captured")))
            .group_by(Payment.order_id).having(func.count() > 1)).all()
        ledger_orders = set(session.scalars(select(LedgerEntry.order_id).distinct()))
        authorised = session.execute(select(Payment.id, Payment.order_id).where(
            Payment.method == "card", Payment.amount_authorised > 0)).all()
        unbalanced = session.execute(
            select(LedgerEntry.order_id).group_by(LedgerEntry.order_id)
            .having(func.sum(LedgerEntry.amount) != 0)).all()
        held = {intent_id: status for intent_id, status in session.execute(
            select(Payment.stripe_payment_intent_id, Payment.status).where(
                Payment.stripe_payment_intent_id.is_not(None)))}
        orders = session.scalar(select(func.count()).select_from(Order))
        by_status = dict(session.execute(select(Order.status, func.count())
                                         .group_by(Order.status)).all())
        card_states = dict(session.execute(
            select(Payment.status, func.count()).where(Payment.method == "card")
            .group_by(Payment.status)).all())
    engine.dispose()
    orphan_holds = [i["id"] for i in stripe.intents()
                    if i.get("status") == "requires_capture" and held.get(i["id"]) != "held"]
    return {
        "orders placed": orders,
        "orders by status": by_status,
        "card payments by status": card_states,
        "orders paid twice": len(paid_twice),
        "authorised payments without ledger entries": sum(
            1 for _pid, oid in authorised if oid not in ledger_orders),
        "unbalanced ledgers": len(unbalanced),
        "card holds not attached to a held payment": len(orphan_holds),
    }


def seed(database_url: str) -> dict:
    import factories
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    engine = create_engine(database_url)
    with Session(engine, expire_on_commit=False) as session:
        institution = factories.provider(session, name="Chaos Test Patent Agency")
        listings = [factories.product(session, institution, title=f"Chaos service {n}",
                                      prices=(100000 + 1000 * n,)) for n in range(4)]
        owner = factories.user(session, institution, email="provider@chaos.test")
        monitor = factories.user(session, role="staff", email="staff@chaos.test")
        buyers = [factories.user(session, factories.enterprise(session),
                                 email=f"buyer{n}@chaos.test") for n in range(8)]
        session.commit()
        found = {"packages": [p.packages[0].id for p in listings[:3]],
                 "toggled": listings[3].id, "provider": owner.email, "staff": monitor.email,
                 "buyers": [b.email for b in buyers]}
    engine.dispose()
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds of traffic")
    parser.add_argument("--buyers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    postgres, redis, stripe, host = Postgres(), Redis(), LocalStripe(), None
    try:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TEST_", "DATABASE_URL", "PYTEST"))}
        env.update({
            "DATABASE_URL": postgres.url, "SECRET_KEY": secrets.token_hex(32), "HTTPS": "0",
            "REDIS_URL": redis.url, "RATELIMIT_ENABLED": "1", "TRUSTED_PROXIES": "1",
            "WEB_CONCURRENCY": "2", "SEARCH_DRAIN_IN_PROCESS": "0", "MAIL_BACKEND": "outbox",
            "REQUEST_LOG": "0", "STRIPE_API_BASE": stripe.url,
            "STRIPE_SECRET_KEY": "sk_test_chaos", "STRIPE_PUBLISHABLE_KEY": "pk_test_chaos",
            "STRIPE_TIMEOUT": "5", "PYTHONUNBUFFERED": "1",
        })
        subprocess.run([sys.executable, "-m", "flask", "--app", "marketplace", "init-db"],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
        data = seed(postgres.url)
        host = Host("chaos", env, Path(tempfile.mkdtemp(prefix="supermarket-chaos.")))
        _wait(lambda: requests.get(f"{host.url}/healthz", timeout=2).status_code == 200, 120,
              0.5)
        print(f"chaos: one host on {host.url}, PostgreSQL :{postgres.port}, Redis "
              f":{redis.port}, localstripe :{stripe.port}; {args.duration:.0f}s of traffic")

        tally, stop, restarts = Tally(), threading.Event(), []
        threads = [threading.Thread(target=buyer, args=(
            Client(host.url, data["buyers"][n], tally, f"10.1.0.{n + 1}"), data["packages"],
            stop, random.Random(args.seed + n)), daemon=True) for n in range(args.buyers)]
        threads.append(threading.Thread(target=provider, args=(
            Client(host.url, data["provider"], tally, "10.2.0.1"), postgres.url, stop),
            daemon=True))
        threads.append(threading.Thread(target=staff, args=(
            Client(host.url, data["staff"], tally, "10.3.0.1"), data["toggled"], stop),
            daemon=True))
        threads.append(threading.Thread(target=chaos, args=(
            postgres, redis, stripe, stop, rng, restarts), daemon=True))
        started = time.monotonic()
        for thread in threads:
            thread.start()
        time.sleep(args.duration)
        stop.set()
        for thread in threads:
            thread.join(60)
        elapsed = time.monotonic() - started
        # Let the last restart finish and the workers reconnect before counting.
        _wait(lambda: requests.get(f"{host.url}/healthz", timeout=2).status_code == 200, 30,
              0.5)
        alive = host.alive()
        # What cron does every few minutes: card attempts whose answer was lost in an outage
        # are asked of Stripe (orders/timers.py), so their authorisations pay their orders.
        later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        timers = subprocess.run([sys.executable, "-m", "flask", "--app", "marketplace",
                                 "run-order-timers", "--now", later], cwd=ROOT, env=host.env,
                                capture_output=True, text=True, timeout=300)
        timers_line = (timers.stdout.strip().splitlines() or ["(no output)"])[-1]
        money = check_money(postgres.url, stripe)
    finally:
        if host is not None:
            host.stop()
        stripe.stop()
        redis.stop()
        postgres.remove()

    bad = (money["orders paid twice"] + money["authorised payments without ledger entries"]
           + money["unbalanced ledgers"] + money["card holds not attached to a held payment"])
    print()
    print(f"| {'chaos benchmark':<48} | {'value':>8} |")
    print(f"|{'-' * 50}|{'-' * 10}|")
    rows = [("duration (s)", f"{elapsed:.0f}"), ("requests served", tally.served)]
    rows += [(f"restarts: {name}", count) for name, count in
             sorted(Counter(name for name, _ in restarts).items())]
    rows += [(f"action: {name}", count) for name, count in sorted(tally.actions.items())]
    rows += [(f"error: {kind}", count) for kind, count in sorted(tally.errors.items())]
    rows += [(f"orders {status}", count) for status, count in
             sorted(money.pop("orders by status").items())]
    rows += [(f"card payments {status}", count) for status, count in
             sorted(money.pop("card payments by status").items())]
    rows += list(money.items())
    rows.append(("processes still running (web, drain, mail)",
                 "yes" if all(alive.values()) else f"NO {alive}"))
    for name, value in rows:
        print(f"| {name:<48} | {value!s:>8} |")
    print(f"\nrun-order-timers afterwards: {timers_line}")
    print(f"lost or doubled: {bad}")
    return 0 if bad == 0 and all(alive.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
