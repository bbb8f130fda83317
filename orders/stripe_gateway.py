"""The only module that talks to Stripe, through the official `stripe` library.

Configured from STRIPE_SECRET_KEY and STRIPE_API_BASE (empty: api.stripe.com). Tests and the
offline demo point STRIPE_API_BASE at localstripe on 127.0.0.1 (scripts/localstripe_server.py).

What we send is what both Stripe and localstripe accept: PaymentIntents with
``capture_method=manual`` (the money is held until the work is accepted), metadata linking
back to our payment row, confirm, capture (optionally a smaller amount), cancel, and refunds
through the Refunds API. We do not send ``application_fee_amount``, ``transfer_data``,
``description`` or idempotency keys: localstripe rejects or ignores them, payouts live in our
ledger, and our idempotency is enforced by database constraints.

Everything returned is a plain ``dict`` (``StripeObject.to_dict()``).

Test-mode helpers (``create_test_card_payment_method`` and ``authenticate_test_intent``)
exist because Stripe.js cannot load offline: with localstripe the checkout page posts a test
card number to our server, which creates the PaymentMethod here, and a simulated bank page
completes 3-D Secure through localstripe's ``_authenticate`` endpoint. They refuse to run
unless ``test_card_entry_allowed`` — with real keys the browser uses Stripe.js Elements
(templates/checkout/_card_stripe_elements.html) and card numbers never reach our server.
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

import stripe
from flask_babel import lazy_gettext as _l

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class GatewayError(Exception):
    """Stripe could not be reached or refused a request for a reason that is not the card."""

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code


class CardDeclined(GatewayError):
    """The card was declined (or failed authentication): tell the buyer, let them retry."""


class GatewayUnavailable(GatewayError):
    """Stripe did not answer in time or could not be reached: nothing about the card is known.
    A request that timed out may still have been carried out; the intent's state (retrieved
    on a retry, or a webhook) decides, never a guess."""


UNAVAILABLE_CODE = "gateway_unavailable"
UNAVAILABLE_MESSAGE = _l("The payment service is not answering. Nothing was charged; "
                         "please try again in a moment.")
# Well under gunicorn's 30 s worker timeout (GUNICORN_TIMEOUT), even with the one retry a
# read may get: the buyer sees our answer, never a killed worker.
DEFAULT_TIMEOUT_SECONDS = 10.0


def test_card_entry_allowed(config) -> bool:
    """Card numbers may be posted to our server only against a local fake Stripe with a
    test key: STRIPE_API_BASE on a loopback address and STRIPE_SECRET_KEY sk_test_..."""
    base = (config.get("STRIPE_API_BASE") or "").strip()
    key = config.get("STRIPE_SECRET_KEY") or ""
    if not base or not key.startswith("sk_test_"):
        return False
    host = urlsplit(base).hostname or ""
    return host in LOOPBACK_HOSTS


@dataclass
class StripeGateway:
    api_key: str
    api_base: str = ""
    test_mode: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_config(cls, config) -> "StripeGateway":
        return cls(api_key=config.get("STRIPE_SECRET_KEY") or "",
                   api_base=(config.get("STRIPE_API_BASE") or "").rstrip("/"),
                   test_mode=test_card_entry_allowed(config),
                   timeout=float(config.get("STRIPE_TIMEOUT") or DEFAULT_TIMEOUT_SECONDS))

    # -- plumbing ------------------------------------------------------------------------

    def _client(self, retries: int = 0) -> stripe.StripeClient:
        """A client with a short timeout. Only reads (GET) are retried, once: a create,
        confirm, capture or refund that timed out may have happened, and localstripe does
        not honour idempotency keys, so those are never sent twice by the library."""
        kwargs = {"max_network_retries": retries,
                  "http_client": stripe.RequestsClient(timeout=self.timeout)}
        if self.api_base:
            kwargs["base_addresses"] = {"api": self.api_base}
        return stripe.StripeClient(self.api_key, **kwargs)

    def _reader(self) -> stripe.StripeClient:
        return self._client(retries=1)

    def _call(self, func, *args, **kwargs) -> dict:
        try:
            return func(*args, **kwargs).to_dict()
        except stripe.APIConnectionError as exc:  # timeouts and refused connections
            raise GatewayUnavailable(str(UNAVAILABLE_MESSAGE), UNAVAILABLE_CODE) from exc
        except stripe.CardError as exc:
            raise CardDeclined(exc.user_message or "Your card was declined.",
                               exc.code or "card_declined") from exc
        except stripe.StripeError as exc:
            message = exc.user_message or str(exc) or "The payment service refused the request."
            raise GatewayError(message, getattr(exc, "code", None)) from exc

    # -- PaymentIntents ------------------------------------------------------------------

    def create_intent(self, *, amount: int, currency: str, payment_method: str | None,
                      metadata: dict[str, str]) -> dict:
        params = {"amount": amount, "currency": currency.lower(), "capture_method": "manual",
                  "payment_method_types": ["card"], "metadata": metadata}
        if payment_method:
            params["payment_method"] = payment_method
        return self._call(self._client().v1.payment_intents.create, params=params)

    def confirm_intent(self, intent_id: str) -> dict:
        """Confirm; a decline raises CardDeclined (retrieve the intent for its state)."""
        return self._call(self._client().v1.payment_intents.confirm, intent_id)

    def retrieve_intent(self, intent_id: str) -> dict:
        return self._call(self._reader().v1.payment_intents.retrieve, intent_id)

    def capture_intent(self, intent_id: str, amount: int | None = None) -> dict:
        params = {} if amount is None else {"amount_to_capture": amount}
        return self._call(self._client().v1.payment_intents.capture, intent_id, params=params)

    def cancel_intent(self, intent_id: str) -> dict:
        return self._call(self._client().v1.payment_intents.cancel, intent_id)

    def refund(self, intent_id: str, amount: int, metadata: dict[str, str]) -> dict:
        return self._call(self._client().v1.refunds.create,
                          params={"payment_intent": intent_id, "amount": amount,
                                  "metadata": metadata})

    # -- listings (reconciliation) --------------------------------------------------------

    @property
    def filters_by_date(self) -> bool:
        """Stripe filters lists by ``created``; localstripe (a loopback API base) refuses the
        parameter, so against it we page through everything and filter here."""
        host = urlsplit(self.api_base).hostname if self.api_base else None
        return host not in LOOPBACK_HOSTS

    def _list(self, method, params: dict, created_from: int | None, created_to: int | None):
        params = {"limit": 100, **params}
        if self.filters_by_date and (created_from is not None or created_to is not None):
            created = {}
            if created_from is not None:
                created["gte"] = created_from
            if created_to is not None:
                created["lt"] = created_to
            params["created"] = created
        while True:
            page = self._call(method, params=params)
            for item in page.get("data") or []:
                made = int(item.get("created") or 0)
                if created_from is not None and made < created_from:
                    continue
                if created_to is not None and made >= created_to:
                    continue
                yield item
            if not page.get("has_more") or not page.get("data"):
                return
            params = {**params, "starting_after": page["data"][-1]["id"]}

    def list_payment_intents(self, created_from: int | None = None,
                             created_to: int | None = None):
        """Every PaymentIntent created in [created_from, created_to) (Unix times), paged 100
        at a time, with its latest charge."""
        params = {} if not self.filters_by_date else {"expand": ["data.latest_charge"]}
        return self._list(self._reader().v1.payment_intents.list, params, created_from,
                          created_to)

    def list_refunds(self, created_from: int | None = None):
        """Every refund created since ``created_from`` (Unix time), paged 100 at a time."""
        return self._list(self._reader().v1.refunds.list, {}, created_from, None)

    # -- test mode only ------------------------------------------------------------------

    def _require_test_mode(self) -> None:
        if not self.test_mode:
            raise GatewayError("Card numbers can only be sent to a local test Stripe server.")

    def create_test_card_payment_method(self, number: str, exp_month: int, exp_year: int,
                                        cvc: str) -> dict:
        self._require_test_mode()
        return self._call(self._client().v1.payment_methods.create, params={
            "type": "card",
            "card": {"number": number, "exp_month": exp_month, "exp_year": exp_year,
                     "cvc": cvc}})

    def authenticate_test_intent(self, intent_id: str, client_secret: str, success: bool) -> dict:
        """What the bank's 3-D Secure page does: localstripe's _authenticate endpoint."""
        self._require_test_mode()
        client = self._client()
        try:
            response = client.raw_request(
                "post", f"/v1/payment_intents/{intent_id}/_authenticate",
                client_secret=client_secret, success="true" if success else "false")
            return client.deserialize(response, api_mode="V1").to_dict()
        except stripe.StripeError as exc:
            raise GatewayError(exc.user_message or str(exc)) from exc


def construct_event(payload: bytes, signature: str | None, secret: str) -> dict:
    """Verify a webhook's Stripe-Signature header; raises ValueError when it is not genuine."""
    if not secret:
        raise ValueError("STRIPE_WEBHOOK_SECRET is not configured")
    try:
        event = stripe.Webhook.construct_event(payload, signature or "", secret)
    except stripe.SignatureVerificationError as exc:
        raise ValueError("bad signature") from exc
    return event.to_dict()


def intent_summary(intent: dict) -> dict:
    """The facts we keep from a PaymentIntent, however Stripe or localstripe shaped it."""
    charge = intent.get("latest_charge")
    if isinstance(charge, str) or charge is None:
        charge = {}
    error = intent.get("last_payment_error") or {}
    amount = int(intent.get("amount") or 0)
    received = intent.get("amount_received")
    if received is None:  # localstripe: a partial capture refunds the uncaptured rest
        received = (int(charge.get("amount") or 0) - int(charge.get("amount_refunded") or 0)
                    if charge.get("captured") else 0)
    card = ((charge.get("payment_method_details") or {}).get("card") or {})
    return {
        "id": intent.get("id"),
        "status": intent.get("status"),
        "amount": amount,
        "amount_received": int(received or 0),
        "client_secret": intent.get("client_secret"),
        "error_code": error.get("decline_code") or error.get("code"),
        "error_message": error.get("message"),
        "card_last4": card.get("last4"),
        "card_brand": card.get("brand"),
        "metadata": dict(intent.get("metadata") or {}),
    }
