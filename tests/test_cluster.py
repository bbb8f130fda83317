"""Two app hosts on one PostgreSQL and one Redis, and what they survive (issue 16).

Each host is what docs/operations.md describes: its own instance directory and search-index
replica, gunicorn with two workers, its own ``drain-outbox --loop`` (applies the outbox log
to its replica) and a ``send-mail --loop`` (one of the two sends; the other stands by). They
share a PostgreSQL cluster and a Redis server that this module starts for itself (on
loopback, free ports, nothing kept), so it can stop and restart them under traffic.

PostgreSQL only (``postgres_only``): it runs in the PostgreSQL pass of ``scripts/test``,
which installs the server binaries and redis-server.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from marketplace.config import ROOT

pytestmark = pytest.mark.postgres_only

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|<meta name="csrf-token" content="([^"]+)"')
PASSWORD = "Correct-horse-42"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class Postgres:
    """A throwaway cluster, as scripts/test makes one, that the tests may stop and start."""

    def __init__(self):
        self.bindir = _pg_bindir()
        self.dir = tempfile.mkdtemp(prefix="supermarket-cluster-pg.", dir="/tmp")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        self.port = _free_port()
        self.password = secrets.token_hex(12)
        data = f"{self.dir}/data"
        subprocess.run(_as_owner([f"{self.bindir}/initdb", "-D", data, "-U", "postgres",
                                  "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust",
                                  "--auth-host=scram-sha-256"]),
                       check=True, capture_output=True, timeout=120)
        settings = (f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                    "full_page_writes = off\nsynchronous_commit = off\nmax_connections = 60\n")
        subprocess.run(_as_owner(["tee", "-a", f"{data}/postgresql.conf"]), input=settings.encode(),
                       check=True, capture_output=True)
        self.start()
        sql = (f"CREATE ROLE supermarket LOGIN PASSWORD '{self.password}';\n"
               "CREATE DATABASE cluster_test OWNER supermarket ENCODING 'UTF8' TEMPLATE template0;")
        subprocess.run(_as_owner([f"{self.bindir}/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                                  "-h", self.dir, "-p", str(self.port), "-U", "postgres",
                                  "-d", "postgres"]), input=sql.encode(), check=True,
                       capture_output=True, timeout=60)
        self.url = (f"postgresql+psycopg://supermarket:{self.password}@127.0.0.1:{self.port}"
                    "/cluster_test")

    def start(self):
        subprocess.run(_as_owner([f"{self.bindir}/pg_ctl", "-D", f"{self.dir}/data", "-l",
                                  f"{self.dir}/server.log", "-w", "-t", "60", "start"]),
                       check=True, capture_output=True, timeout=90)

    def stop(self, mode: str = "fast"):
        subprocess.run(_as_owner([f"{self.bindir}/pg_ctl", "-D", f"{self.dir}/data", "-m", mode,
                                  "-w", "stop"]), capture_output=True, timeout=90)

    def remove(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self):
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: socket.create_connection(("127.0.0.1", self.port), 0.2).close() or True, 10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def _wait(check, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception:  # noqa: BLE001 - not ready yet
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {check}")
        time.sleep(interval)


class Host:
    """One app host: gunicorn (2 workers), its drain loop and a mail loop."""

    def __init__(self, name: str, env: dict, workdir: Path):
        self.name = name
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        instance = workdir / name
        instance.mkdir(parents=True, exist_ok=True)
        self.env = {**env, "INSTANCE_DIR": str(instance),
                    "SEARCH_INDEX_DIR": str(instance / "search-index"),
                    "UPLOAD_DIR": str(instance / "uploads"), "JOB_LOCK_DIR": str(instance / "locks"),
                    "SEARCH_REPLICA_NAME": f"host-{name}", "BIND": f"127.0.0.1:{self.port}"}
        self.logs = {kind: open(instance / f"{kind}.log", "w+b")  # noqa: SIM115
                     for kind in ("web", "drain", "mail")}
        flask = [sys.executable, "-m", "flask", "--app", "marketplace"]
        self.processes = {
            "web": self._spawn([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                                "wsgi:app"], "web"),
            "drain": self._spawn([*flask, "drain-outbox", "--loop", "--interval", "0.1"], "drain"),
            "mail": self._spawn([*flask, "send-mail", "--loop", "--interval", "0.3"], "mail"),
        }

    def _spawn(self, args, kind):
        return subprocess.Popen(args, cwd=ROOT, env=self.env, stdout=self.logs[kind],
                                stderr=subprocess.STDOUT, start_new_session=True)

    def log(self, kind: str) -> str:
        self.logs[kind].flush()
        return Path(self.logs[kind].name).read_text(errors="replace")

    def alive(self) -> dict[str, bool]:
        return {kind: process.poll() is None for kind, process in self.processes.items()}

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        for handle in self.logs.values():
            handle.close()


def _seed(url: str) -> dict:
    """A verified institution with one published and one suspended listing, staff, a buyer."""
    sys.path.insert(0, str(ROOT / "tests"))
    import factories

    engine = create_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        provider = factories.provider(session, name="Cluster Test Patent Agency")
        shown = factories.product(session, provider, title="Patent drafting 专利撰写 zephyrine",
                                  prices=(500000,))
        hidden = factories.product(session, provider, title="Trademark watch quillmoth",
                                   status="suspended")
        staff = factories.user(session, role="staff", email="staff@cluster.test")
        buyer = factories.user(session, factories.enterprise(session), email="buyer@cluster.test")
        session.commit()
        seeded = {"shown": shown.id, "hidden": hidden.id, "package": shown.packages[0].id,
                  "staff": staff.email, "buyer": buyer.email}
    engine.dispose()
    return seeded


@pytest.fixture(scope="module")
def cluster(is_postgres, tmp_path_factory):
    if not is_postgres:
        pytest.skip("the cluster tests run in the PostgreSQL pass (TEST_DATABASE_URL)")
    if _pg_bindir() is None or shutil.which("redis-server") is None:
        pytest.skip("needs the PostgreSQL server binaries and redis-server (scripts/test installs them)")
    postgres = Postgres()
    redis = Redis()
    hosts: list[Host] = []
    try:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("TEST_", "DATABASE_URL", "PYTEST"))}
        env.update({
            "DATABASE_URL": postgres.url, "SECRET_KEY": secrets.token_hex(32), "HTTPS": "0",
            "RATELIMIT_STORAGE_URI": redis.url, "RATELIMIT_ENABLED": "1",
            "RATELIMIT_LOGIN": "6 per minute", "TRUSTED_PROXIES": "1",
            "LOGIN_LOCKOUT_THRESHOLD": "1000", "WEB_CONCURRENCY": "2",
            "SEARCH_DRAIN_IN_PROCESS": "0", "MAIL_BACKEND": "console", "REQUEST_LOG": "0",
            "SITE_URL": "http://127.0.0.1:8000", "PAGE_CACHE_MAX_BYTES": str(8 * 1024 * 1024),
            "GUNICORN_TIMEOUT": "30", "PYTHONUNBUFFERED": "1",
            # The hosts speak English to these requests (the texts asserted below).
            "DEFAULT_LOCALE": "en",
        })
        subprocess.run([sys.executable, "-m", "flask", "--app", "marketplace", "init-db"],
                       cwd=ROOT, env=env, check=True, capture_output=True, timeout=180)
        seeded = _seed(postgres.url)
        workdir = tmp_path_factory.mktemp("cluster")
        hosts = [Host("a", env, workdir), Host("b", env, workdir)]
        for host in hosts:
            _wait(lambda host=host: requests.get(f"{host.url}/healthz", timeout=2).status_code
                  == 200, 90, 0.3)
        yield {"pg": postgres, "redis": redis, "a": hosts[0], "b": hosts[1], "env": env,
               **seeded}
    finally:
        for host in hosts:
            host.stop()
        redis.stop()
        postgres.remove()


def _browser(client_ip: str) -> requests.Session:
    browser = requests.Session()
    browser.headers["X-Forwarded-For"] = client_ip  # TRUSTED_PROXIES=1: one address per test
    return browser


def _token(browser, url: str) -> str:
    found = CSRF.search(browser.get(url, timeout=10).text)
    assert found, url
    return found.group(1) or found.group(2)


def _log_in(browser, host, email: str, password: str = PASSWORD):
    token = _token(browser, f"{host.url}/login")
    return browser.post(f"{host.url}/login", data={"csrf_token": token, "email": email,
                                                   "password": password},
                        allow_redirects=False, timeout=10)


def _found(host, word: str, product_id: int) -> bool:
    """Whether searching ``word`` on ``host`` lists the product."""
    page = requests.get(f"{host.url}/search", params={"q": word}, timeout=10,
                        headers={"X-Forwarded-For": "10.9.9.9"}).text
    # A hit links to the listing, through the click counter when a query was typed.
    return (f'href="/products/{product_id}"' in page
            or f'href="/search/go/{product_id}?' in page) and 'data-testid="hit-title"' in page


# ----------------------------------------------------------------------------- two hosts

def test_a_listing_changed_on_host_a_is_found_by_search_on_host_b_within_2s(cluster):
    a, b = cluster["a"], cluster["b"]
    assert _found(b, "zephyrine", cluster["shown"])
    assert not _found(b, "quillmoth", cluster["hidden"])
    staff = _browser("10.0.0.1")
    assert _log_in(staff, a, cluster["staff"]).status_code == 302
    path = f"/staff/moderation/{cluster['hidden']}/reinstate"
    token = _token(staff, f"{a.url}/staff/moderation/{cluster['hidden']}")
    done = staff.post(f"{a.url}{path}", data={"csrf_token": token, "reason": "Checked again"},
                      allow_redirects=False, timeout=10)
    assert done.status_code == 302, done.text[:300]
    changed = time.monotonic()
    _wait(lambda: _found(b, "quillmoth", cluster["hidden"]), 2.0, 0.1)
    assert time.monotonic() - changed < 2.0
    # Host B's own replica has it (not a database fallback): its drain log says so.
    assert "Applied" in b.log("drain")


def test_login_rate_limits_hold_exactly_across_hosts_and_workers(cluster):
    a, b = cluster["a"], cluster["b"]
    browser = _browser("10.0.0.2")
    statuses = []
    for attempt in range(10):
        host = (a, b)[attempt % 2]
        token = _token(browser, f"{host.url}/login")
        response = browser.post(f"{host.url}/login", data={
            "csrf_token": token, "email": "nobody@cluster.test", "password": "Wrong-guess-1"},
            allow_redirects=False, timeout=10)
        statuses.append(response.status_code)
    # "6 per minute" across two hosts of two workers each: exactly six tries, then 429.
    assert statuses.count(429) == 4 and 429 not in statuses[:6], statuses


def test_logging_out_on_host_a_ends_the_session_on_host_b(cluster):
    a, b = cluster["a"], cluster["b"]
    browser = _browser("10.0.0.3")
    assert _log_in(browser, a, cluster["buyer"]).status_code == 302
    assert browser.get(f"{b.url}/account", allow_redirects=False, timeout=10).status_code == 200
    copied = _browser("10.0.0.3")
    copied.cookies.update(browser.cookies)
    token = _token(browser, f"{a.url}/account")
    browser.post(f"{a.url}/logout", data={"csrf_token": token}, allow_redirects=False, timeout=10)
    response = copied.get(f"{b.url}/account", allow_redirects=False, timeout=10)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_job_started_on_both_hosts_runs_once(cluster):
    a, b = cluster["a"], cluster["b"]
    marker = f"reset-{secrets.token_hex(4)}@cluster.test"
    engine = create_engine(cluster["pg"].url)
    try:
        with Session(engine) as session:
            from marketplace.notifications import queue_email

            for n in range(3):
                queue_email(session, marker, f"Cluster mail {n}", "Sent once, by one host.")
            session.commit()

        def sent() -> bool:
            from marketplace.models import EmailMessage

            with Session(engine) as session:
                rows = session.scalars(select(EmailMessage).where(
                    EmailMessage.to_address == marker)).all()
                return len(rows) == 3 and all(row.sent_at is not None for row in rows)

        _wait(sent, 10, 0.2)
    finally:
        engine.dispose()
    logs = a.log("mail") + b.log("mail")
    assert logs.count(f"To: {marker}") == 3  # printed once each, by the host with the lock
    assert "standing by" in logs  # the other one waited


def test_a_visitor_page_cached_on_b_changes_after_a_price_change_on_a(cluster):
    a, b = cluster["a"], cluster["b"]
    page = f"{b.url}/products/{cluster['shown']}"
    visitor = _browser("10.0.0.5")
    # Each worker keeps its own cache: ask until both have the page and one answers a hit.
    answers = [visitor.get(page, timeout=10) for _ in range(8)]
    assert any(r.headers.get("X-Page-Cache") == "hit" for r in answers)
    assert all("5,000" in r.text for r in answers)
    # The institution's price change, made by host A's code against the shared database.
    change = (
        "from marketplace import create_app\n"
        "from marketplace.database import db\n"
        "from catalog.models import Package\n"
        "from catalog.search import outbox as search_outbox\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        f"    package = db.session.get(Package, {cluster['package']})\n"
        "    package.price = package.product.price_from = 777700\n"
        "    search_outbox.enqueue(db.session, package.product_id, 'price')\n"
        "    db.session.commit()\n")
    subprocess.run([sys.executable, "-c", change], cwd=ROOT, env=a.env, check=True,
                   capture_output=True, timeout=60)
    # The catalogue version moved in the shared database: no worker serves the old page.
    for _ in range(6):
        after = visitor.get(page, timeout=10)
        assert "7,777" in after.text and "5,000.00" not in after.text


# ----------------------------------------------------------------------------- faults

def test_postgresql_stopped_10s_under_traffic_answers_503_then_recovers(cluster):
    a, b = cluster["a"], cluster["b"]
    pages = ["/", f"/products/{cluster['shown']}", "/search?q=patent", "/healthz"]
    cluster["pg"].stop("fast")
    stopped = time.monotonic()
    seen: dict[int, int] = {}
    try:
        while time.monotonic() - stopped < 10:
            for host in (a, b):
                for page in pages:
                    response = requests.get(f"{host.url}{page}", timeout=5,
                                            headers={"X-Forwarded-For": "10.0.0.6"})
                    seen[response.status_code] = seen.get(response.status_code, 0) + 1
                    assert response.status_code == 503, (page, response.status_code)
                    if page != "/healthz":
                        assert 'data-testid="error-page"' in response.text
                        assert "cannot reach its database" in response.text
            time.sleep(0.2)
    finally:
        cluster["pg"].start()
    back = time.monotonic()
    recovered = {}
    while len(recovered) < 2 * len(pages) and time.monotonic() - back < 10:
        for host in (a, b):
            for page in pages:
                if (host.name, page) not in recovered and requests.get(
                        f"{host.url}{page}", timeout=5).status_code == 200:
                    recovered[host.name, page] = round(time.monotonic() - back, 2)
        time.sleep(0.1)
    notes = [line for host in (a, b) for line in host.log("web").splitlines()
             if "Booting worker" in line or "WORKER TIMEOUT" in line or "Error" in line][-20:]
    assert len(recovered) == 2 * len(pages) and max(recovered.values()) < 5.0, (recovered, notes)
    for host in (a, b):
        assert host.alive() == {"web": True, "drain": True, "mail": True}, host.name
    # The drain loops rode out the restart, and a change after it still reaches B's replica.
    _wait(lambda: "the database is back" in b.log("drain"), 5, 0.2)
    mark = len(b.log("drain"))
    staff = _browser("10.0.0.7")
    assert _log_in(staff, a, cluster["staff"]).status_code == 302
    token = _token(staff, f"{a.url}/staff/moderation/{cluster['shown']}")
    staff.post(f"{a.url}/staff/moderation/{cluster['shown']}/suspend",
               data={"csrf_token": token, "reason": "Checking after the outage"},
               allow_redirects=False, timeout=10)
    _wait(lambda: "Applied" in b.log("drain")[mark:], 5, 0.2)
    assert seen.get(503, 0) > 0


def test_redis_down_keeps_the_site_serving_with_per_process_limits(cluster):
    a, b = cluster["a"], cluster["b"]
    cluster["redis"].stop()
    try:
        browser = _browser("10.0.0.8")
        started = time.monotonic()
        for host in (a, b):
            assert requests.get(f"{host.url}/", timeout=10).status_code == 200
            response = _log_in(browser, host, cluster["buyer"])
            assert response.status_code == 302, response.status_code
            assert requests.get(f"{host.url}/search?q=patent", timeout=10).status_code == 200
        assert time.monotonic() - started < 10
        logs = a.log("web") + b.log("web")
        assert "falling back to in-memory storage" in logs
    finally:
        cluster["redis"].start()
    for host in (a, b):
        assert host.alive() == {"web": True, "drain": True, "mail": True}, host.name
