"""`flask send-mail` delivers the outbox to a real SMTP server (aiosmtpd on a free loopback
port), and `flask outbox` shows it to a developer.

What is checked is what a recipient and an operator see: the envelope and the parsed
message the server received, the rows marked sent, the summary line and the exit status."""

import email
import email.policy
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import factories
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import post_form
from sqlalchemy import select

from marketplace import mail
from marketplace.config import ROOT
from marketplace.database import db, utcnow
from marketplace.models import EmailMessage
from marketplace.notifications import notify, queue_email

SENDER = "no-reply@supermarket.example.cn"
PASSWORD = "Smtp-pass-never-logged-42"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps what it accepts, refuses addresses at bounce.example for
    good (550) and at busy.example for now (451), and counts every recipient it was offered.
    ``refuse_sender`` makes it refuse our MAIL FROM."""

    def __init__(self):
        self.received = []
        self.offered = []
        self.refuse_sender = False

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.refuse_sender:
            return "553 5.7.1 Sender address rejected: not owned by user"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.offered.append(address)
        if address.endswith("@bounce.example"):
            return "550 5.1.1 No such user here"
        if address.endswith("@busy.example"):
            return "451 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def to(self, address):
        return [message for _f, rcpts, message in self.received if address in rcpts]


class SmtpServer:
    def __init__(self, port, **smtp_options):
        self.port = port
        self.inbox = Inbox()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=port,
                                     **smtp_options)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()


@pytest.fixture
def smtp_port(app, monkeypatch):
    """The app sends through SMTP to 127.0.0.1:<port>; nothing listens there yet."""
    port = free_port()
    for key, value in {"MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": port,
                       "SMTP_STARTTLS": False, "SMTP_USERNAME": "", "SMTP_PASSWORD": "",
                       "SMTP_TIMEOUT": 5,
                       "MAIL_FROM": f"Innovation Service Supermarket <{SENDER}>"}.items():
        monkeypatch.setitem(app.config, key, value)
    return port


@pytest.fixture
def smtp_server(smtp_port):
    server = SmtpServer(smtp_port).start()
    yield server
    server.stop()


def send_mail(app, *args):
    return app.test_cli_runner().invoke(args=["send-mail", *args])


def all_rows(app):
    with app.app_context():
        return list(db.session.scalars(select(EmailMessage).order_by(EmailMessage.id)))


@pytest.fixture
def decisions(app, client):
    """Two real emails: a staff decision notified to an institution's owner, and a password
    reset asked for on the site (Chinese in its subject)."""
    with app.app_context():
        owner = factories.user(db.session, factories.provider(db.session),
                               email="owner@lab.example.cn")
        buyer = factories.user(db.session, factories.enterprise(db.session),
                               email="buyer@corp.example.cn")
        notify(db.session, owner, "verification.more_info", "Platform staff need more documents",
               "Upload your certification (CMA) please.", link="/provider/institution")
        db.session.commit()
    response = post_form(client, "/password/forgot", {"email": "buyer@corp.example.cn"})
    assert response.status_code == 302
    return owner.email, buyer.email


def test_send_mail_delivers_each_email_once_with_absolute_links(app, smtp_server, decisions):
    owner, buyer = decisions
    result = send_mail(app)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("send-mail: 2 sent, 0 failed, 0 waiting (smtp).")

    [(mail_from, rcpts, notice)] = [r for r in smtp_server.inbox.received if owner in r[1]]
    assert mail_from == SENDER and rcpts == [owner]
    assert notice["Subject"] == "Platform staff need more documents"
    assert notice["From"] == f"Innovation Service Supermarket <{SENDER}>"
    assert notice["To"] == owner and notice["Auto-Submitted"] == "auto-generated"
    assert "https://supermarket.example.cn/provider/institution" in notice.get_content()

    [reset] = smtp_server.inbox.to(buyer)
    assert reset["Subject"] == "Reset your password"
    assert "https://supermarket.example.cn/password/reset/" in reset.get_content()

    rows = all_rows(app)
    assert all(row.sent_at is not None and row.error is None for row in rows)

    again = send_mail(app)
    assert again.exit_code == 0
    assert again.output.startswith("send-mail: 0 sent, 0 failed, 0 waiting (smtp).")
    assert len(smtp_server.inbox.received) == 2


def test_server_down_records_the_error_keeps_the_rows_and_a_later_run_sends(app, smtp_port,
                                                                             decisions):
    owner, buyer = decisions
    down = send_mail(app)
    assert down.exit_code == 1  # cron reports it
    assert "send-mail: 0 sent, 1 failed, 2 waiting (smtp); last error: " \
           "ConnectionRefusedError" in down.output
    first, second = all_rows(app)
    assert first.sent_at is None and "ConnectionRefusedError" in first.error
    assert f"127.0.0.1:{smtp_port}" in first.error
    assert second.sent_at is None and second.error is None  # not tried: the server is down
    # The server's failure is not the message's: no attempt counted, no back-off.
    assert first.attempts == 0 and first.retry_after is None and first.gave_up_at is None

    server = SmtpServer(smtp_port).start()
    try:
        up = send_mail(app)
        assert up.exit_code == 0, up.output
        assert up.output.startswith("send-mail: 2 sent, 0 failed, 0 waiting (smtp).")
        assert server.inbox.to(owner) and server.inbox.to(buyer)
    finally:
        server.stop()
    assert all(row.sent_at is not None and row.error is None for row in all_rows(app))


def test_a_recipient_refused_for_good_is_given_up_at_once_and_holds_up_nothing(app,
                                                                             smtp_server):
    with app.app_context():
        old = utcnow() - timedelta(hours=2)
        for address in ("gone@bounce.example", "first@example.cn"):
            queue_email(db.session, address, "Hello", "Body").created_at = old
            old += timedelta(minutes=1)
        db.session.commit()
    result = send_mail(app)
    assert result.exit_code == 1  # cron reports it, once
    assert "1 sent, 1 failed (1 given up), 0 waiting" in result.output
    assert "recipient refused (gone@bounce.example: 550 5.1.1 No such user here)" in result.output
    bounced, delivered = all_rows(app)
    assert bounced.sent_at is None and "550 5.1.1" in bounced.error
    assert bounced.gave_up_at is not None and bounced.attempts == 1
    assert delivered.sent_at is not None

    # The next runs leave it alone: the server is not asked about that address again, and
    # cron stays quiet.
    again = send_mail(app)
    assert again.exit_code == 0, again.output
    assert again.output.startswith("send-mail: 0 sent, 0 failed, 0 waiting (smtp).")
    assert smtp_server.inbox.offered.count("gone@bounce.example") == 1

    with app.app_context():
        queue_email(db.session, "newer@example.cn", "Later", "Body")
        db.session.commit()
    assert "1 sent, 0 failed, 0 waiting" in send_mail(app, "--limit", "1").output
    assert smtp_server.inbox.to("newer@example.cn")

    shown = app.test_cli_runner().invoke(args=["outbox", "--to", "gone@bounce.example"]).output
    assert "given up " in shown and "after 1 try; last error: " in shown
    assert "550 5.1.1 No such user here" in shown


def test_a_temporary_refusal_backs_off_then_is_given_up_after_the_last_try(app, smtp_server):
    with app.app_context():
        queue_email(db.session, "someone@busy.example", "Hello", "Body")
        db.session.commit()
    first = send_mail(app)
    assert first.exit_code == 1
    assert "0 sent, 1 failed, 1 waiting" in first.output and "451 4.2.1" in first.output
    [row] = all_rows(app)
    assert row.attempts == 1 and row.gave_up_at is None
    assert abs(row.retry_after - utcnow() - timedelta(minutes=5)) < timedelta(seconds=30)
    shown = app.test_cli_runner().invoke(args=["outbox"]).output
    assert f"next try after {row.retry_after:%Y-%m-%d %H:%M:%S} UTC" in shown

    # Before its time it is not offered again, and it still counts as waiting.
    early = send_mail(app)
    assert early.exit_code == 0
    assert early.output.startswith("send-mail: 0 sent, 0 failed, 1 waiting (smtp).")
    assert smtp_server.inbox.offered == ["someone@busy.example"]

    # Each later refusal doubles the wait (up to six hours); the tenth gives up.
    waits = []
    for _ in range(mail.MAX_ATTEMPTS - 1):
        with app.app_context():
            due = db.session.get(EmailMessage, row.id)
            waits.append(round((due.retry_after - utcnow()).total_seconds() / 60))
            due.retry_after = utcnow() - timedelta(seconds=1)
            db.session.commit()
        send_mail(app)
    assert waits == [5, 10, 20, 40, 80, 160, 320, 360, 360]
    [row] = all_rows(app)
    assert row.attempts == mail.MAX_ATTEMPTS and row.gave_up_at is not None
    assert row.retry_after is None and row.sent_at is None
    assert len(smtp_server.inbox.offered) == mail.MAX_ATTEMPTS
    assert send_mail(app).output.startswith("send-mail: 0 sent, 0 failed, 0 waiting (smtp).")


def test_a_temporary_refusal_is_sent_on_a_later_try(app, smtp_server):
    with app.app_context():
        queue_email(db.session, "someone@busy.example", "Hello", "Body")
        db.session.commit()
    send_mail(app)
    with app.app_context():
        row = db.session.scalars(select(EmailMessage)).one()
        row.to_address = "someone@example.cn"  # the mailbox has room again
        row.retry_after = utcnow() - timedelta(seconds=1)
        db.session.commit()
    result = send_mail(app)
    assert result.exit_code == 0 and "1 sent, 0 failed, 0 waiting" in result.output
    [row] = all_rows(app)
    assert row.sent_at is not None and row.error is None and row.retry_after is None


def test_a_refused_sender_stops_the_run_and_blames_no_message(app, smtp_server, decisions):
    smtp_server.inbox.refuse_sender = True
    result = send_mail(app)
    assert result.exit_code == 1
    assert "0 sent, 1 failed, 2 waiting" in result.output and "553 5.7.1" in result.output
    first, second = all_rows(app)
    assert first.attempts == 0 and first.gave_up_at is None and first.retry_after is None
    assert second.error is None  # not tried: the server refuses every message of ours

    smtp_server.inbox.refuse_sender = False  # the operator fixes MAIL_FROM
    assert send_mail(app).output.startswith("send-mail: 2 sent, 0 failed, 0 waiting (smtp).")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtp_login_works_and_the_password_is_never_logged_or_recorded(app, smtp_port,
                                                                      monkeypatch, caplog):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"mailer" \
            and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)  # False: the server answers 535

    server = SmtpServer(smtp_port, authenticator=authenticator, auth_required=True,
                        auth_require_tls=False).start()  # a relay on this machine: no TLS
    try:
        monkeypatch.setitem(app.config, "SMTP_USERNAME", "mailer")
        monkeypatch.setitem(app.config, "SMTP_PASSWORD", "wrong-" + PASSWORD)
        with app.app_context():
            queue_email(db.session, "someone@example.cn", "Hello", "Body")
            db.session.commit()
        caplog.set_level(logging.DEBUG)
        refused = send_mail(app)
        assert refused.exit_code == 1 and "SMTPAuthenticationError: 535" in refused.output
        [row] = all_rows(app)
        assert row.sent_at is None and "SMTPAuthenticationError" in row.error
        assert PASSWORD not in refused.output + row.error + caplog.text

        monkeypatch.setitem(app.config, "SMTP_PASSWORD", PASSWORD)
        accepted = send_mail(app)
        assert accepted.exit_code == 0, accepted.output
        assert server.inbox.to("someone@example.cn")
        assert PASSWORD not in accepted.output + caplog.text
    finally:
        server.stop()


def test_console_backend_prints_through_the_command(app, monkeypatch, decisions):
    owner, _buyer = decisions
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "console")
    result = send_mail(app)
    assert result.exit_code == 0
    assert f"To: {owner}\nSubject: Platform staff need more documents\n" in result.output
    assert "https://supermarket.example.cn/provider/institution" in result.output
    assert "send-mail: 2 sent, 0 failed, 0 waiting (console)." in result.output
    assert all(row.sent_at is not None for row in all_rows(app))


def test_outbox_backend_sends_nothing_and_says_so(app, decisions):
    result = send_mail(app)
    assert result.exit_code == 0
    assert "send-mail: MAIL_BACKEND=outbox keeps email in the outbox; nothing sent " \
           "(2 unsent)." in result.output
    assert all(row.sent_at is None for row in all_rows(app))


def start_worker(app, database_url, tmp_path, **settings):
    """`flask send-mail --loop` as its own process, the way production runs it; returns the
    process and the list its output lines are collected into."""
    env = {**os.environ, "DATABASE_URL": database_url, "INSTANCE_DIR": str(tmp_path),
           "JOB_LOCK_DIR": app.config["JOB_LOCK_DIR"],
           "SITE_URL": "https://supermarket.example.cn", **settings}
    for name in ("SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_STARTTLS"):
        env.pop(name, None)
    worker = subprocess.Popen(  # noqa: S603 - our own command
        [sys.executable, "-m", "flask", "--app", "marketplace", "send-mail", "--loop",
         "--interval", "0.2"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(worker.stdout), daemon=True)
    reader.start()
    return worker, lines, reader


def wait_for(worker, lines, text, seconds=60):
    deadline = time.monotonic() + seconds
    while text not in "".join(lines) and time.monotonic() < deadline:
        assert worker.poll() is None, "".join(lines)
        time.sleep(0.1)
    assert text in "".join(lines)


def stop(worker, reader):
    worker.terminate()
    worker.wait(timeout=30)
    reader.join(timeout=30)


def test_loop_worker_sends_what_is_queued_while_it_runs(app, database_url, smtp_server,
                                                        tmp_path):
    """A cron run meanwhile finds the job lock held and does nothing."""
    worker, lines, reader = start_worker(
        app, database_url, tmp_path, MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_server.port), MAIL_FROM=SENDER)
    try:
        with app.app_context():
            queue_email(db.session, "queued@example.cn", "While running", "Body")
            db.session.commit()
        wait_for(worker, lines, "send-mail: 1 sent, 0 failed, 0 waiting (smtp).")
        assert smtp_server.inbox.to("queued@example.cn")
        cron = send_mail(app)
        assert cron.exit_code == 0
        assert "send-mail: another run is in progress" in cron.output
    finally:
        stop(worker, reader)
    assert len(smtp_server.inbox.received) == 1
    [row] = all_rows(app)
    assert row.sent_at is not None


def test_loop_worker_with_the_outbox_backend_says_so_once_and_idles(app, database_url,
                                                                   tmp_path):
    """scripts/serve-production starts the worker whatever MAIL_BACKEND is: with the outbox
    it must neither exit (that would stop the site) nor poll the table."""
    with app.app_context():
        queue_email(db.session, "kept@example.cn", "Kept", "Body")
        db.session.commit()
    worker, lines, reader = start_worker(app, database_url, tmp_path, MAIL_BACKEND="outbox")
    try:
        wait_for(worker, lines, "send-mail: MAIL_BACKEND=outbox keeps email in the outbox; "
                                "nothing sent (1 unsent).")
        time.sleep(1)  # five polling intervals
        assert worker.poll() is None
        assert len(lines) == 1
    finally:
        stop(worker, reader)
    [row] = all_rows(app)
    assert row.sent_at is None


# ------------------------------------------------------------------ flask outbox


def test_outbox_command_shows_the_newest_emails_with_their_state(app):
    with app.app_context():
        start = utcnow() - timedelta(hours=3)
        sent = queue_email(db.session, "a@example.cn", "Sent one", "First body")
        sent.created_at, sent.sent_at = start, start + timedelta(minutes=1)
        failed = queue_email(db.session, "b@example.cn", "Failed one", "Second body")
        failed.created_at = start + timedelta(hours=1)
        failed.error = "2026-12-05 10:00:00 UTC: ConnectionRefusedError: [Errno 111]"
        waiting = queue_email(db.session, "A@example.cn", "Waiting one",
                              "Reset: https://supermarket.example.cn/password/reset/abc")
        waiting.created_at = start + timedelta(hours=2)
        db.session.commit()
    runner = app.test_cli_runner()

    everything = runner.invoke(args=["outbox"]).output
    assert everything.index("Waiting one") < everything.index("Failed one") \
        < everything.index("Sent one")
    assert "Reset: https://supermarket.example.cn/password/reset/abc" in everything
    assert f"sent {start + timedelta(minutes=1):%Y-%m-%d %H:%M:%S} UTC" in everything
    assert "not sent; last error: 2026-12-05 10:00:00 UTC: ConnectionRefusedError" in everything
    assert "not sent yet" in everything
    assert everything.rstrip().endswith("Showing the newest 3 of 3 emails.")

    mine = runner.invoke(args=["outbox", "--to", "a@EXAMPLE.cn"]).output
    assert "Sent one" in mine and "Waiting one" in mine and "Failed one" not in mine
    unsent = runner.invoke(args=["outbox", "--unsent", "--limit", "1"]).output
    assert "Waiting one" in unsent and "Failed one" not in unsent
    assert unsent.rstrip().endswith("Showing the newest 1 of 2 emails not sent yet.")
    none = runner.invoke(args=["outbox", "--to", "nobody@example.cn"])
    assert none.exit_code == 0 and none.output == "No emails to nobody@example.cn.\n"


def test_no_web_page_shows_the_outbox(app):
    """Email bodies carry reset and invitation links: they are read on the command line."""
    assert not [rule.rule for rule in app.url_map.iter_rules()
                if "outbox" in rule.rule or "mail" in rule.rule.replace("email", "")]
