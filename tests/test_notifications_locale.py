"""Notifications and emails are written in the RECIPIENT's language: a member who chose
English reads English, a colleague who never chose reads the platform's default (Chinese),
whatever language the person who acted was using."""

import factories
import order_support as os_
from conftest import post_form
from sqlalchemy import select

from marketplace.database import db
from marketplace.models import EmailMessage, Notification
from marketplace.notifications import notify, recipient_locale


def _inbox(user_id):
    return db.session.scalars(select(Notification).where(Notification.user_id == user_id)
                              .order_by(Notification.id)).all()


def _mail(address):
    return db.session.scalars(select(EmailMessage).where(EmailMessage.to_address == address)
                              .order_by(EmailMessage.id)).all()


def test_recipient_locale_is_the_saved_choice_else_the_platform_default(app, monkeypatch):
    monkeypatch.setitem(app.config, "DEFAULT_LOCALE", "zh_Hans_CN")
    with app.app_context():
        org = factories.enterprise(db.session)
        chose = factories.user(db.session, org, locale="en")
        never = factories.user(db.session, org)
        assert recipient_locale(chose) == "en"
        assert recipient_locale(never) == "zh_Hans_CN"


def test_an_order_notice_reaches_each_member_in_their_own_language(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "DEFAULT_LOCALE", "zh_Hans_CN")
    with app.app_context():
        p = os_.parties(db.session)
        p.buyer.locale = "en"  # this member chose English on the navbar switch
        colleague = factories.user(db.session, p.buyer_org)  # never chose: the default
        p.provider.locale = "en"  # the institution works in English
        order = os_.order(db.session, p, "paid", title="Patent search")
        order_id, number = order.id, order.number
        buyer_id, buyer_email = p.buyer.id, p.buyer.email
        colleague_id, colleague_email = colleague.id, colleague.email
        db.session.commit()
        provider = p.provider

    os_.login(client, provider)
    response = post_form(client, f"/orders/{order_id}/actions/accept", {})
    assert response.status_code == 302
    # The actor's own page stays in the actor's language.
    assert "Order accepted. The buyer has been told." in client.get(
        response.headers["Location"]).get_data(as_text=True)

    with app.app_context():
        english, = _inbox(buyer_id)
        chinese, = _inbox(colleague_id)
        assert english.title == f"Order {number}: accepted"
        assert english.body == "The institution accepted the order: Patent search."
        assert chinese.title == f"订单 {number}：已接单"
        assert chinese.body == "服务机构已接单：Patent search。"
        english_mail, = _mail(buyer_email)
        chinese_mail, = _mail(colleague_email)
        assert english_mail.subject == english.title
        assert english_mail.body.startswith(english.body)
        assert chinese_mail.subject == chinese.title
        assert chinese_mail.body.startswith(chinese.body)


def test_callable_and_lazy_texts_are_rendered_per_recipient(app, monkeypatch):
    from flask_babel import gettext, lazy_gettext

    monkeypatch.setitem(app.config, "DEFAULT_LOCALE", "zh_Hans_CN")
    with app.test_request_context("/"):
        org = factories.enterprise(db.session)
        english = factories.user(db.session, org, locale="en")
        chinese = factories.user(db.session, org)
        db.session.flush()
        for user in (english, chinese):
            notify(db.session, user, "test", lazy_gettext("Quote declined"),
                   lambda: gettext("Order %(number)s: payment failed", number="X-1"))
        db.session.flush()
        assert [(n.title, n.body) for n in _inbox(english.id)] == [
            ("Quote declined", "Order X-1: payment failed")]
        assert [(n.title, n.body) for n in _inbox(chinese.id)] == [
            ("报价被拒绝", "订单 X-1：支付失败")]
        db.session.rollback()
