"""The mail backends and deliver_pending (marketplace/mail.py): settings refused at start-up,
the outbox backend sends nothing, the console backend prints and marks sent, one commit per
message so a run that dies half-way re-sends nothing already sent.

SMTP delivery through a real server and the send-mail / outbox commands:
tests/test_send_mail.py."""

import io
import os
import subprocess
import sys
from datetime import timedelta

import factories
import pytest
from sqlalchemy import select

from marketplace import create_app
from marketplace.config import ROOT
from marketplace.database import utcnow
from marketplace.mail import (
    ConsoleBackend,
    MailSettingsError,
    OutboxBackend,
    backend_from_config,
    check_settings,
    deliver_pending,
)
from marketplace.models import EmailMessage
from marketplace.notifications import notify, queue_email

VALID = {"MAIL_BACKEND": "smtp", "SITE_URL": "https://supermarket.example.cn",
         "SMTP_HOST": "smtp.example.cn", "SMTP_PORT": 587, "SMTP_STARTTLS": True,
         "SMTP_USERNAME": "mailer", "SMTP_PASSWORD": "s3cret-pass",
         "MAIL_FROM": "Supermarket <no-reply@supermarket.example.cn>"}


def queue(session, count, start=None):
    """``count`` emails created a minute apart, oldest first; returns their ids."""
    start = start or utcnow() - timedelta(hours=1)
    ids = []
    for n in range(count):
        row = queue_email(session, f"person{n}@example.cn", f"Subject {n}", f"Body {n}")
        row.created_at = start + timedelta(minutes=n)
        session.flush()
        ids.append(row.id)
    session.commit()
    return ids


def rows(session):
    session.expire_all()
    return list(session.scalars(select(EmailMessage).order_by(EmailMessage.id)))


# ------------------------------------------------------------------ settings at start-up


def test_unknown_backend_is_refused_when_the_app_is_created(database_url):
    with pytest.raises(MailSettingsError) as refused:
        create_app({"DATABASE_URL": database_url, "MAIL_BACKEND": "smpt"})
    assert "MAIL_BACKEND='smpt' is not a mail backend" in str(refused.value)
    assert "outbox, console, smtp" in str(refused.value)


def test_unknown_backend_in_the_environment_stops_the_flask_command(tmp_path):
    """What an operator sees: any flask command refuses to start, and says why."""
    env = {**os.environ, "MAIL_BACKEND": "carrier-pigeon", "INSTANCE_DIR": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}"}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "marketplace", "routes"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "MAIL_BACKEND='carrier-pigeon' is not a mail backend; use one of: outbox, " \
           "console, smtp" in result.stderr


def test_backend_names_ignore_case_and_surrounding_spaces(monkeypatch):
    from marketplace.config import load_config

    monkeypatch.setenv("MAIL_BACKEND", " Console ")
    config = load_config()
    assert config["MAIL_BACKEND"] == "console"
    check_settings(config)
    monkeypatch.setenv("MAIL_BACKEND", "")
    assert load_config()["MAIL_BACKEND"] == "outbox"


def test_valid_smtp_settings_pass_and_the_password_stays_out_of_reprs():
    check_settings(VALID)
    backend = backend_from_config(VALID)
    assert backend.name == "smtp" and "s3cret-pass" not in repr(backend.settings)
    check_settings({**VALID, "SMTP_HOST": "127.0.0.1", "SMTP_STARTTLS": False})  # local relay


@pytest.mark.parametrize(("change", "message"), [
    ({"SITE_URL": "supermarket.example.cn"}, "SITE_URL='supermarket.example.cn' is not"),
    ({"SITE_URL": "ftp://supermarket.example.cn"}, "is not the site's address"),
    ({"SITE_URL": "https://x.example.cn/?a=1"}, "without a query"),
    ({"SMTP_HOST": ""}, "MAIL_BACKEND=smtp needs SMTP_HOST"),
    ({"SMTP_PORT": 0}, "SMTP_PORT=0 is not a TCP port"),
    ({"SMTP_PASSWORD": ""}, "both SMTP_USERNAME and SMTP_PASSWORD"),
    ({"SMTP_STARTTLS": False}, "unencrypted. Set SMTP_STARTTLS=1"),
    ({"MAIL_FROM": "Supermarket"}, "MAIL_FROM='Supermarket' has no email address"),
])
def test_unusable_settings_are_refused_with_the_reason(change, message):
    with pytest.raises(MailSettingsError) as refused:
        check_settings({**VALID, **change})
    assert message in str(refused.value)
    assert "s3cret-pass" not in str(refused.value)


def test_smtp_with_a_site_url_on_this_machine_is_warned_about(caplog):
    check_settings({**VALID, "SITE_URL": "http://127.0.0.1:5000"})
    assert "links in the emails will not open for their recipients" in caplog.text
    caplog.clear()
    check_settings({**VALID, "MAIL_BACKEND": "console", "SITE_URL": "http://127.0.0.1:5000"})
    check_settings(VALID)
    assert caplog.text == ""


def test_a_bad_site_url_is_refused_for_every_backend():
    with pytest.raises(MailSettingsError):
        check_settings({"MAIL_BACKEND": "outbox", "SITE_URL": "127.0.0.1:5000"})


# ------------------------------------------------------------------ outbox and console


def test_outbox_backend_keeps_every_row_unsent(session):
    queue(session, 3)
    report = deliver_pending(session, OutboxBackend(), 10)
    assert (report.sent, report.failed, report.waiting) == (0, 0, 3)
    assert "nothing sent (3 unsent)" in str(report)
    assert all(row.sent_at is None and row.error is None for row in rows(session))


def test_console_backend_prints_each_email_oldest_first_and_marks_it_sent(session):
    user = factories.user(session, factories.provider(session), email="owner@lab.example.cn")
    notify(session, user, "t", "Your institution is verified", "Welcome aboard.",
           link="/provider")
    session.flush()
    queue(session, 1, start=utcnow() - timedelta(days=1))  # older: printed first
    out = io.StringIO()
    report = deliver_pending(session, ConsoleBackend("Shop <no-reply@shop.example>", out), 10)
    assert (report.sent, report.failed, report.waiting) == (2, 0, 0)
    printed = out.getvalue()
    assert printed.index("To: person0@example.cn") < printed.index("To: owner@lab.example.cn")
    assert "From: Shop <no-reply@shop.example>" in printed
    assert "Subject: Your institution is verified" in printed
    assert "Welcome aboard.\n\nhttps://supermarket.example.cn/provider\n" in printed
    assert all(row.sent_at is not None for row in rows(session))

    again = io.StringIO()
    assert deliver_pending(session, ConsoleBackend("x@y.z", again), 10).sent == 0
    assert again.getvalue() == ""


def test_limit_takes_the_oldest_first(session):
    ids = queue(session, 5)
    out = io.StringIO()
    assert deliver_pending(session, ConsoleBackend("x@y.z", out), 2).sent == 2
    sent = [row.id for row in rows(session) if row.sent_at is not None]
    assert sent == ids[:2]


class DiesOnThird(io.StringIO):
    """A backend whose process is killed while sending the third email."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def write(self, text):
        self.count += 1
        if self.count == 3:
            raise KeyboardInterrupt("killed")
        return super().write(text)


def test_a_run_killed_half_way_resends_nothing_already_sent(session):
    queue(session, 5)
    with pytest.raises(KeyboardInterrupt):
        deliver_pending(session, ConsoleBackend("x@y.z", DiesOnThird()), 10)
    session.rollback()
    assert [row.sent_at is not None for row in rows(session)] == [True, True, False, False, False]

    out = io.StringIO()
    report = deliver_pending(session, ConsoleBackend("x@y.z", out), 10)
    assert report.sent == 3
    assert "person0@" not in out.getvalue() and "person1@" not in out.getvalue()
    assert all(row.sent_at is not None for row in rows(session))
