"""localstripe for the tests: a session-scoped fake Stripe on a free loopback port.

    from stripe_fixtures import localstripe  # noqa: F401  (fixture)

The server is scripts/localstripe_server.py (127.0.0.1 only, no disk persistence). The
fixture points the app's config at it (STRIPE_API_BASE, a test key, a webhook secret) for the
rest of the session and stops the process at the end.
"""

import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import stripe

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "whsec_test_orders_suite"
SECRET_KEY = "sk_test_orders_suite"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalStripe:
    url: str
    process: subprocess.Popen

    @property
    def client(self):
        return stripe.StripeClient(SECRET_KEY, base_addresses={"api": self.url}).v1

    def intent(self, intent_id: str) -> dict:
        return self.client.payment_intents.retrieve(intent_id).to_dict()

    def register_webhook(self, name: str, url: str, events: list[str] | None = None) -> None:
        data = {"url": url, "secret": WEBHOOK_SECRET}
        if events:
            data["events"] = events
        response = requests.post(f"{self.url}/_config/webhooks/{name}", json=data, timeout=5)
        response.raise_for_status()

    def unregister_webhook(self, name: str) -> None:
        # localstripe has no delete: point the hook at an event type that never happens.
        self.register_webhook(name, "http://127.0.0.1:9/", events=["never.happens"])


def signed_headers(payload: bytes, secret: str = WEBHOOK_SECRET,
                   timestamp: int | None = None) -> dict:
    """The Stripe-Signature header Stripe (and localstripe) put on a webhook."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(secret.encode(), b"%d.%s" % (timestamp, payload),
                         hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={timestamp},v1={signature}",
            "Content-Type": "application/json"}


def event_payload(event_id: str, event_type: str, obj: dict) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": event_type,
                       "api_version": "2017-08-15", "created": int(time.time()),
                       "data": {"object": obj}}).encode()


_shared: list["LocalStripe"] = []  # one server per test session, whichever module asks first


@pytest.fixture(scope="session")
def localstripe(app):
    # Each test module that imports this fixture gets its own session-scoped instance; they
    # all share one server process.
    if _shared and _shared[0].process.poll() is None:
        yield _shared[0]
        return
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "localstripe_server.py"), "--port", str(port),
         "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(ROOT),
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise RuntimeError("localstripe exited: " + process.stderr.read().decode()[-2000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("localstripe did not start within 20 s") from None
            time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    saved = {key: app.config.get(key) for key in
             ("STRIPE_API_BASE", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET")}
    app.config.update(STRIPE_API_BASE=url, STRIPE_SECRET_KEY=SECRET_KEY,
                      STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    server = LocalStripe(url=url, process=process)
    _shared[:] = [server]
    try:
        yield server
    finally:
        _shared.clear()
        app.config.update(saved)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr:
            process.stderr.close()
