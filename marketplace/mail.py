"""Delivering the email outbox: the mail backends and ``deliver_pending``.

Emails are queued as ``EmailMessage`` rows in the same transaction as the decision that
caused them (``marketplace/notifications.py``); the ``send-mail`` command hands unsent rows to
the backend named by ``MAIL_BACKEND``:

- ``outbox`` (default): nothing leaves; rows stay unsent, for development and tests to read
  (``flask outbox``).
- ``console``: each message is printed to stdout (and a line logged) and marked sent, for
  local development. It prints reset and invitation links: never use it in production.
- ``smtp``: each message goes to an SMTP server with the standard library (``smtplib``,
  ``email.message.EmailMessage``): ``SMTP_HOST``, ``SMTP_PORT``, ``SMTP_STARTTLS``,
  ``SMTP_USERNAME``, ``SMTP_PASSWORD``, ``SMTP_TIMEOUT``, ``MAIL_FROM``.

Delivery is at least once: a row is committed as sent right after the server accepted it,
one commit per message, so a run killed half-way sends nothing it already sent again (only
a crash between the server's "250 OK" and that commit re-sends that one message; its
Message-ID is the same both times). A failure records ``error`` on the row. What happens
next depends on whose failure it is:

- the server is down, unreachable, refuses our login or our sender: nothing goes this run,
  and the row is not blamed (no attempt counted); the next run tries again;
- the server refuses this message for now (a 4xx reply: mailbox busy, greylisting): the row
  counts an attempt and waits ``retry_delay(attempts)`` (5 minutes, doubling, at most 6
  hours) before its next try; after ``MAX_ATTEMPTS`` it is given up;
- the server refuses this message for good (a 5xx reply: no such user, message rejected) or
  the message cannot be built: it is given up at once (``gave_up_at``).

A given-up row is never tried again, so a bad address costs one refusal, not one per run
forever, and a cron run fails (exit 1) once for it. Rows never tried go before rows that
failed, so a message the server keeps refusing never holds up new mail. Settings are
checked when the app starts (``check_settings``); the SMTP password is never logged or shown.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, parseaddr
from urllib.parse import urlsplit

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from marketplace.database import utcnow
from marketplace.models import EmailMessage

log = logging.getLogger(__name__)

BACKENDS = ("outbox", "console", "smtp")
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}
ERROR_MAX_CHARS = 1000
MAX_ATTEMPTS = 10  # temporary refusals of one message: waits of 5 min, 10, 20 … 6 h, 6 h: ~23 h
FIRST_RETRY = timedelta(minutes=5)
LONGEST_RETRY = timedelta(hours=6)


class MailSettingsError(ValueError):
    """MAIL_BACKEND, SMTP_* or SITE_URL make no sense; the app refuses to start."""


class DeliveryError(Exception):
    """One message could not be delivered. ``stop`` when the server itself is unusable
    (down, refusing us, misconfigured): the rest of the batch waits for the next run and
    the message is not blamed. ``permanent`` when this message will never go through (a 5xx
    refusal of it, or it cannot be built): it is given up."""

    def __init__(self, message: str, *, stop: bool, permanent: bool = False):
        super().__init__(message)
        self.stop = stop
        self.permanent = permanent and not stop


def retry_delay(attempts: int) -> timedelta:
    """How long a message waits after its ``attempts``-th temporary refusal."""
    return min(FIRST_RETRY * 2 ** (max(attempts, 1) - 1), LONGEST_RETRY)


def _permanent_reply(exc: smtplib.SMTPException) -> bool:
    """A 5xx reply about this message; 4xx (try later) and anything else are temporary."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _reply in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 for code in codes)
    code = getattr(exc, "smtp_code", None)
    return isinstance(code, int) and 500 <= code < 600


# ------------------------------------------------------------------ settings


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)  # never in a repr, a log line or an error
    starttls: bool = False
    timeout: float = 10.0


def _check_site_url(url: str) -> None:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MailSettingsError(
            f"SITE_URL={url!r} is not the site's address; set it to where people reach the "
            "site, e.g. https://supermarket.example.cn (links in emails start with it).")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise MailSettingsError(
            f"SITE_URL={url!r} must be a plain address (scheme, host, port), without a query, "
            "fragment or user name.")


def check_settings(config) -> None:
    """Refuse an unknown MAIL_BACKEND, unusable SMTP settings or a malformed SITE_URL at
    start-up (``create_app``), rather than on the first email hours later."""
    backend = config.get("MAIL_BACKEND")
    if backend not in BACKENDS:
        raise MailSettingsError(
            f"MAIL_BACKEND={backend!r} is not a mail backend; use one of: "
            + ", ".join(BACKENDS) + " (see docs/operations.md, Configuration).")
    _check_site_url(config.get("SITE_URL", ""))
    if backend != "smtp":
        return
    settings = smtp_settings(config)
    if not settings.host:
        raise MailSettingsError("MAIL_BACKEND=smtp needs SMTP_HOST (the mail server's name).")
    if not 0 < settings.port < 65536:
        raise MailSettingsError(f"SMTP_PORT={settings.port} is not a TCP port.")
    if bool(settings.username) != bool(settings.password):
        raise MailSettingsError("Set both SMTP_USERNAME and SMTP_PASSWORD, or neither.")
    if settings.username and not settings.starttls and settings.host not in LOOPBACK_HOSTS:
        raise MailSettingsError(
            f"SMTP_USERNAME is set but SMTP_STARTTLS is off: the password would cross the "
            f"network to {settings.host} unencrypted. Set SMTP_STARTTLS=1.")
    sender_address(config.get("MAIL_FROM", ""))
    if urlsplit(config["SITE_URL"]).hostname in LOOPBACK_HOSTS:
        log.warning("MAIL_BACKEND=smtp but SITE_URL=%s names this machine: links in the "
                    "emails will not open for their recipients. Set SITE_URL to the site's "
                    "public address.", config["SITE_URL"])


def smtp_settings(config) -> SmtpSettings:
    return SmtpSettings(
        host=(config.get("SMTP_HOST") or "").strip(),
        port=int(config.get("SMTP_PORT") if config.get("SMTP_PORT") not in (None, "") else 25),
        username=config.get("SMTP_USERNAME") or "",
        password=config.get("SMTP_PASSWORD") or "",
        starttls=bool(config.get("SMTP_STARTTLS")),
        timeout=float(config.get("SMTP_TIMEOUT") or 10),
    )


def sender_address(mail_from: str) -> str:
    """The bare address of MAIL_FROM ("Name <a@b>" or "a@b"), for the SMTP envelope."""
    _name, address = parseaddr(mail_from or "")
    if "@" not in address:
        raise MailSettingsError(
            f"MAIL_FROM={mail_from!r} has no email address; use e.g. "
            "'Innovation Service Supermarket <no-reply@supermarket.example.cn>'.")
    return address


# ------------------------------------------------------------------ building messages


@dataclass(frozen=True)
class Outgoing:
    """What a backend sends: a copy of an outbox row, so no database transaction stays open
    while a mail server is slow to answer."""

    id: int
    to_address: str
    subject: str
    body: str
    created_at: datetime

    @classmethod
    def of(cls, row: EmailMessage) -> Outgoing:
        return cls(row.id, row.to_address, row.subject, row.body, row.created_at)


def _one_line(text: str) -> str:
    """Header values never carry line breaks (header injection; the email package refuses)."""
    return " ".join((text or "").split())


def message_id(row: Outgoing, mail_from: str) -> str:
    """The same Message-ID every time a row is sent, so a re-send after a crash is one message
    to mail clients that de-duplicate."""
    domain = sender_address(mail_from).rpartition("@")[2] or "localhost"
    return f"<outbox-{row.id}.{int(row.created_at.timestamp())}@{domain}>"


def build_message(row: Outgoing, mail_from: str) -> MimeMessage:
    """The RFC 5322 message for an outbox row: plain UTF-8 text."""
    message = MimeMessage()
    message["From"] = mail_from
    message["To"] = row.to_address
    message["Subject"] = _one_line(row.subject)
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = message_id(row, mail_from)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us
    message.set_content(row.body)
    return message


# ------------------------------------------------------------------ backends


class OutboxBackend:
    """Keeps every email in the table; nothing is sent (development, tests)."""

    name = "outbox"
    delivers = False  # deliver_pending only counts the unsent rows


class ConsoleBackend:
    """Prints each email to a stream (stdout) and marks it sent: local development."""

    name = "console"
    delivers = True

    def __init__(self, mail_from: str, stream=None):
        self.mail_from = mail_from
        self.stream = stream

    @contextmanager
    def connection(self) -> Iterator[Callable[[Outgoing], None]]:
        def send(row: Outgoing) -> None:
            stream = self.stream or sys.stdout
            rule = "-" * 72
            stream.write(
                f"{rule}\nEmail #{row.id}\nFrom: {self.mail_from}\nTo: {row.to_address}\n"
                f"Subject: {_one_line(row.subject)}\n\n{row.body}\n{rule}\n")
            stream.flush()
        yield send


class SmtpBackend:
    """Sends through an SMTP server: one connection per batch, opened at the first message
    (an empty outbox never connects), STARTTLS with certificate checks when asked."""

    name = "smtp"
    delivers = True

    def __init__(self, settings: SmtpSettings, mail_from: str):
        self.settings = settings
        self.mail_from = mail_from
        self.envelope_from = sender_address(mail_from)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            client.ehlo()
            if s.starttls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if s.username:
                client.login(s.username, s.password)
        except BaseException:
            _close(client)
            raise
        return client

    @contextmanager
    def connection(self) -> Iterator[Callable[[Outgoing], None]]:
        state: dict[str, smtplib.SMTP | None] = {"client": None}

        def send(row: Outgoing) -> None:
            try:
                message = build_message(row, self.mail_from)
            except (ValueError, TypeError) as exc:  # a header the email package refuses
                raise DeliveryError(describe(exc), stop=False, permanent=True) from exc
            if state["client"] is None:
                try:
                    state["client"] = self._connect()
                except (smtplib.SMTPException, OSError) as exc:
                    # Not listening, unreachable, TLS or login refused: nothing will go
                    # through this run.
                    raise DeliveryError(describe(exc, self.settings), stop=True) from exc
            try:
                state["client"].send_message(message, from_addr=self.envelope_from,
                                             to_addrs=[row.to_address])
            except smtplib.SMTPSenderRefused as exc:
                # Our MAIL_FROM is refused: no message will go through, and none is to blame.
                raise DeliveryError(describe(exc, self.settings), stop=True) from exc
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as exc:
                # The server answered about this message and smtplib has reset the
                # transaction: the next message may go through, unless it is closing (421).
                closing = getattr(exc, "smtp_code", None) == 421
                if closing:
                    _drop(state)
                raise DeliveryError(describe(exc), stop=closing,
                                    permanent=_permanent_reply(exc)) from exc
            except smtplib.SMTPNotSupportedError as exc:
                # This message needs an extension the server lacks (SMTPUTF8 for a
                # non-ASCII address): it will never go through this server.
                raise DeliveryError(describe(exc), stop=False, permanent=True) from exc
            except (smtplib.SMTPException, OSError) as exc:  # disconnected, timed out
                _drop(state)
                raise DeliveryError(describe(exc, self.settings), stop=True) from exc

        try:
            yield send
        finally:
            _drop(state, quit=True)


def _close(client: smtplib.SMTP) -> None:
    with suppress(OSError):
        client.close()


def _drop(state: dict, quit: bool = False) -> None:
    client, state["client"] = state["client"], None
    if client is None:
        return
    if quit:
        with suppress(smtplib.SMTPException, OSError):
            client.quit()
            return
    _close(client)


def describe(exc: BaseException, settings: SmtpSettings | None = None) -> str:
    """What went wrong, for the row's ``error`` and the log: the exception and where we were
    connecting, never the password."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        detail = "; ".join(f"{address}: {code} {_text(reply)}"
                           for address, (code, reply) in exc.recipients.items())
        text = f"recipient refused ({detail})"
    elif isinstance(exc, smtplib.SMTPResponseException):
        text = f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    if settings is not None:
        text += f" (SMTP server {settings.host}:{settings.port})"
    if settings is not None and settings.password:
        text = text.replace(settings.password, "***")
    return text[:ERROR_MAX_CHARS]


def _text(reply) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def backend_from_config(config, stream=None):
    """The backend MAIL_BACKEND names (settings already checked by ``check_settings``)."""
    name = config.get("MAIL_BACKEND")
    mail_from = config.get("MAIL_FROM") or ""
    if name == "outbox":
        return OutboxBackend()
    if name == "console":
        return ConsoleBackend(mail_from, stream=stream)
    if name == "smtp":
        return SmtpBackend(smtp_settings(config), mail_from)
    raise MailSettingsError(f"MAIL_BACKEND={name!r} is not a mail backend; use one of: "
                            + ", ".join(BACKENDS) + ".")


# ------------------------------------------------------------------ delivering the outbox


@dataclass
class DeliveryReport:
    backend: str
    sent: int = 0
    failed: int = 0
    given_up: int = 0  # of the failed: refused for good, or too many tries
    waiting: int = 0  # rows left to send after this run (due now or later)
    errors: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.failed

    def __str__(self) -> str:
        if self.backend == "outbox":
            return (f"MAIL_BACKEND=outbox keeps email in the outbox; nothing sent "
                    f"({self.waiting} unsent).")
        text = f"{self.sent} sent, {self.failed} failed"
        if self.given_up:
            text += f" ({self.given_up} given up)"
        text += f", {self.waiting} waiting ({self.backend})"
        if self.errors:
            text += f"; last error: {self.errors[-1]}"
        return text + "."


def to_send_condition():
    """Rows not sent and not given up (the partial index ``ix_email_message_pending``)."""
    return EmailMessage.sent_at.is_(None) & EmailMessage.gave_up_at.is_(None)


def pending_query(limit: int, now: datetime):
    """Rows due now, those never tried first, each group oldest first."""
    return (select(EmailMessage)
            .where(to_send_condition(),
                   EmailMessage.retry_after.is_(None) | (EmailMessage.retry_after <= now))
            .order_by(case((EmailMessage.error.is_(None), 0), else_=1),
                      EmailMessage.created_at, EmailMessage.id)
            .limit(limit))


def count_unsent(session: Session) -> int:
    """Rows still to be sent, due now or after a back-off (given-up rows are not counted)."""
    return session.scalar(select(func.count()).select_from(EmailMessage)
                          .where(to_send_condition()))


def record_failure(row: EmailMessage, exc: DeliveryError, now: datetime) -> bool:
    """Note a failed try on the row; True when the row is now given up."""
    row.error = f"{now:%Y-%m-%d %H:%M:%S} UTC: {exc}"[:ERROR_MAX_CHARS]
    if exc.stop:
        return False  # the server's fault, not this message's: tried again next run
    row.attempts += 1
    if exc.permanent or row.attempts >= MAX_ATTEMPTS:
        row.gave_up_at, row.retry_after = now, None
        return True
    row.retry_after = now + retry_delay(row.attempts)
    return False


def deliver_pending(session: Session, backend, limit: int = 100) -> DeliveryReport:
    """Send up to ``limit`` unsent emails through ``backend``; one commit per message."""
    report = DeliveryReport(backend.name)
    if not backend.delivers:
        report.waiting = count_unsent(session)
        return report
    ids = session.scalars(
        pending_query(limit, utcnow()).with_only_columns(EmailMessage.id)).all()
    session.rollback()
    with backend.connection() as send:
        for row_id in ids:
            row = session.get(EmailMessage, row_id)
            outgoing = (Outgoing.of(row) if row is not None and row.sent_at is None
                        and row.gave_up_at is None else None)
            session.rollback()  # no transaction open while the mail server answers
            if outgoing is None:
                continue
            try:
                send(outgoing)
            except DeliveryError as exc:
                row = session.get(EmailMessage, row_id)
                given_up = record_failure(row, exc, utcnow())
                session.commit()
                report.failed += 1
                report.given_up += given_up
                report.errors.append(str(exc))
                log.warning("email %s to %s not sent%s: %s", row_id, outgoing.to_address,
                            " (given up)" if given_up else "", exc)
                if exc.stop:
                    break
                continue
            row = session.get(EmailMessage, row_id)
            row.sent_at = utcnow()
            row.error = row.retry_after = None
            session.commit()  # one commit per message: a crash after it never re-sends it
            report.sent += 1
            log.info("email %s to %s sent (%s)", row_id, outgoing.to_address, backend.name)
    report.waiting = count_unsent(session)
    session.commit()
    return report
