"""The invoice mail step: booked documents mailed once through the shop's own SMTP server (a second real
aiosmtpd server that requires AUTH), with the accounting system's PDF attached."""

import asyncio
import email
import re
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select

from portal.models import Transfer, TransferLog
from portal.pipeline import invoice_mail, posting, retries
from portal.pipeline import settings as pipeline_settings
from tests.pipeline.conftest import feed, make_setup, make_source_link, order, release_scheduled, remote
from tests.pipeline.test_economic_pipeline import REF, feed_refund, refund_event
from tests.shops.test_shops import settings_form

USER, PASSWORD = "shop@testbutikken.dk", "smtp-secret"


class ShopSMTP:
    """The shop's own mail server: AUTH required (PLAIN/LOGIN without TLS, as a test allows)."""

    def __init__(self):
        self.messages = []
        self.logins = []
        self.delay = 0.0

    def reset(self):
        self.messages.clear()
        self.logins.clear()
        self.delay = 0.0

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == USER.encode()
            and auth_data.password == PASSWORD.encode()
        )
        self.logins.append(ok)
        return AuthResult(success=ok, handled=False)  # a failure answers 535

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if address != USER:
            return "553 5.7.1 Sender address rejected: not owned by user"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        if self.delay:
            await asyncio.sleep(self.delay)  # the answer comes after the client stopped waiting
        return "250 OK queued"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _controller(handler, port):
    return Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=handler.authenticate,
        auth_required=True,
        auth_require_tls=False,
    )


@pytest.fixture(scope="module")
def _shop_smtp():
    handler = ShopSMTP()
    controller = _controller(handler, _free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def shop_smtp(_shop_smtp):
    handler, port = _shop_smtp
    handler.reset()
    yield handler, port
    handler.reset()


def mail_settings(port, **overrides):
    values = {
        "enabled": True,
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": USER,
        "sender": "Testbutikken <shop@testbutikken.dk>",
        "subject": "Faktura {invoice_number} fra {shop_name}",
        "body": "Kære {customer_name}\n\nTak for ordre {order_number}. {ukendt} bliver stående.",
    }
    values.update(overrides)
    return values


def mailing_source_link(db, account, setup, port, password=PASSWORD, paid_methods=(), **overrides):
    source_link = make_source_link(
        db, account, setup, invoice_mail=mail_settings(port, **overrides), paid_methods=list(paid_methods)
    )
    source_link.mail_secret = {"smtp_password": password}
    db.session.commit()
    return source_link


def the_transfer(db, kind="invoice"):
    return db.session.scalar(
        select(Transfer).where(Transfer.kind == kind).execution_options(populate_existing=True)
    )


def mail_log(transfer):
    return [(entry.outcome, entry.message) for entry in transfer.logs if entry.step == "mail"]


def pdf_attachment(message):
    attachments = list(message.iter_attachments())
    assert len(attachments) == 1, [a.get_filename() for a in attachments]
    attachment = attachments[0]
    assert attachment.get_content_type() == "application/pdf"
    return attachment.get_filename(), attachment.get_content()


def check_pdf(data: bytes, number: str):
    """A real PDF: the header, every cross-reference offset pointing at its object, the number in it."""
    assert data.startswith(b"%PDF-1.4")
    assert data.rstrip().endswith(b"%%EOF")
    start = int(re.search(rb"startxref\s+(\d+)", data).group(1))
    assert data[start:].startswith(b"xref")
    offsets = [int(o) for o in re.findall(rb"(\d{10}) 00000 n", data[start:])]
    for number_, offset in enumerate(offsets, start=1):
        assert data[offset:].startswith(b"%d 0 obj" % number_)
    assert f"nr. {number}".encode() in data


@pytest.fixture
def setup_booked(account):
    return make_setup(account, "e-conomic", auto_book=True)


def booked_count(setup):
    return len(remote(setup)._all("/invoices/booked", f"references.other$eq:{REF}"))


def test_a_booked_invoice_is_mailed_once_with_its_pdf(
    db, account, setup_booked, run_jobs, shop_smtp, mailbox
):
    smtp, port = shop_smtp
    source_link = mailing_source_link(db, account, setup_booked, port)
    payload = order()
    feed(source_link, payload)
    run_jobs()

    transfer = the_transfer(db)
    assert transfer.status == "done", transfer.error_message
    assert transfer.mailed and transfer.booked_number
    assert len(smtp.messages) == 1 and smtp.logins == [True]
    message = smtp.messages[0]
    assert message["To"] == "anna@example.dk"
    assert message["From"] == "Testbutikken <shop@testbutikken.dk>"
    assert message["Subject"] == f"Faktura {transfer.booked_number} fra Testbutikken"
    body = message.get_body(("plain",)).get_content()
    assert "Tak for ordre 5001." in body and "{ukendt} bliver stående" in body
    filename, data = pdf_attachment(message)
    assert filename == f"Faktura-{transfer.booked_number}.pdf"
    check_pdf(data, transfer.booked_number)
    assert [outcome for outcome, _ in mail_log(transfer)] == ["sending", "ok"]
    assert mailbox.messages == []  # not through Bogbro's own server

    # the same order delivered again, and the transfer run again: nothing more is sent
    feed(source_link, payload)
    run_jobs()
    posting.run_transfer(transfer.id)
    assert len(smtp.messages) == 1


def test_without_invoice_mail_nothing_is_sent(db, account, setup_booked, run_jobs, shop_smtp):
    smtp, port = shop_smtp
    source_link = mailing_source_link(db, account, setup_booked, port, enabled=False)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done" and not transfer.mailed and mail_log(transfer) == []
    assert smtp.messages == []


def test_a_draft_is_not_mailed(db, account, run_jobs, shop_smtp):
    smtp, port = shop_smtp
    setup = make_setup(account, "e-conomic", auto_book=False)
    source_link = mailing_source_link(db, account, setup, port)
    feed(source_link, order())
    run_jobs()
    assert the_transfer(db).status == "done" and smtp.messages == []


def test_the_default_danish_text_when_no_subject_or_body_is_set(
    db, account, setup_booked, run_jobs, shop_smtp
):
    smtp, port = shop_smtp
    source_link = mailing_source_link(db, account, setup_booked, port, subject="", body="")
    feed(source_link, order())
    run_jobs()
    number = the_transfer(db).booked_number
    message = smtp.messages[0]
    assert message["Subject"] == f"Faktura {number} for ordre 5001"
    assert "Tak for din ordre 5001" in message.get_body(("plain",)).get_content()


def test_an_order_without_e_mail_is_booked_and_the_mail_skipped(
    db, account, setup_booked, run_jobs, shop_smtp
):
    smtp, port = shop_smtp
    source_link = mailing_source_link(db, account, setup_booked, port)
    feed(source_link, order(email=""))
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done" and not transfer.mailed
    assert mail_log(transfer)[0][0] == "skipped" and "no customer e-mail" in mail_log(transfer)[0][1]
    assert smtp.messages == []


def test_smtp_down_is_retried_and_mailed_once_it_is_up(
    app, db, account, setup_booked, run_jobs, redis, fast_retries
):
    handler, port = ShopSMTP(), _free_port()  # nothing listens there yet
    source_link = mailing_source_link(db, account, setup_booked, port, paid_methods=["quickpay"])
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "pending" and transfer.error_kind == "transient"
    assert "could not be sent yet" in transfer.error_message and transfer.booked_number
    assert not transfer.mailed
    assert mail_log(transfer)[-1][0] == "error"

    controller = _controller(handler, port)
    controller.start()  # the server is back
    try:
        assert release_scheduled(redis) == 1
        run_jobs()
    finally:
        controller.stop()
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.mailed, transfer.error_message
    assert len(handler.messages) == 1
    assert booked_count(setup_booked) == 1
    # the retry resumed at the mail step: booked and paid once
    steps = [entry.step for entry in transfer.logs]
    assert steps.count("book") == 1 and steps.count("payment") == 1


def test_a_refused_login_needs_attention_and_a_retry_only_mails(
    db, account, setup_booked, run_jobs, shop_smtp
):
    smtp, port = shop_smtp
    source_link = mailing_source_link(db, account, setup_booked, port, password="forkert")
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "needs_attention", transfer.error_message
    assert transfer.error_kind == "configuration"
    assert "refused the login of shop@testbutikken.dk" in transfer.error_message
    assert "password" in transfer.error_message and "535" in transfer.error_message
    assert transfer.booked_number and not transfer.mailed
    assert smtp.messages == [] and smtp.logins and not any(smtp.logins)  # PLAIN, then LOGIN

    source_link.mail_secret = {"smtp_password": PASSWORD}  # the user corrects the password
    db.session.commit()
    retries.retry(transfer)
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.mailed
    assert len(smtp.messages) == 1 and booked_count(setup_booked) == 1
    assert [entry.step for entry in transfer.logs].count("book") == 1


def test_a_refused_sender_needs_attention(db, account, setup_booked, run_jobs, shop_smtp):
    smtp, port = shop_smtp
    source_link = mailing_source_link(db, account, setup_booked, port, sender="Butik <salg@andetdomaene.dk>")
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "needs_attention" and transfer.error_kind == "configuration"
    assert "refused the sender address salg@andetdomaene.dk" in transfer.error_message
    assert "553" in transfer.error_message and smtp.messages == []


def test_missing_settings_need_attention(db, account, setup_booked, run_jobs, shop_smtp):
    smtp, port = shop_smtp
    source_link = mailing_source_link(db, account, setup_booked, port, sender="")
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "needs_attention" and "no sender address" in transfer.error_message
    assert transfer.booked_number
    assert smtp.messages == []  # nothing reached the shop's mail server


def test_a_lost_answer_after_the_message_is_not_sent_again(
    app, db, account, setup_booked, run_jobs, shop_smtp
):
    smtp, port = shop_smtp
    smtp.delay = 1.5
    app.config["INVOICE_MAIL_TIMEOUT_SECONDS"] = 0.5
    try:
        source_link = mailing_source_link(db, account, setup_booked, port)
        feed(source_link, order())
        run_jobs()
    finally:
        app.config["INVOICE_MAIL_TIMEOUT_SECONDS"] = 20
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.mailed
    outcome, message = mail_log(transfer)[-1]
    assert outcome == "uncertain" and "may have been delivered" in message
    smtp.delay = 0
    posting.run_transfer(transfer.id)
    assert len(smtp.messages) == 1


def test_a_worker_that_died_while_sending_does_not_send_again(db, account, setup_booked, run_jobs, shop_smtp):
    smtp, port = shop_smtp
    source_link = mailing_source_link(db, account, setup_booked, port)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    # As if the worker had died right after committing "sending", before it could record the answer.
    transfer.mailed, transfer.status = False, "pending"
    db.session.query(TransferLog).filter(
        TransferLog.transfer_id == transfer.id, TransferLog.step == "mail", TransferLog.outcome == "ok"
    ).delete()
    db.session.commit()
    posting.run_transfer(transfer.id)
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.mailed
    assert mail_log(transfer)[-1][0] == "uncertain"
    assert len(smtp.messages) == 1


def booked_then_refunded(source_link, run_jobs):
    """Order 5001 booked, then its teapot refunded: the credit note is booked (and mailed) too."""
    payload = order()
    feed(source_link, payload)
    run_jobs()
    tekande = payload["line_items"][1]["id"]
    feed_refund(
        source_link, refund_event(payload, items=[("Tekande", "TE-02", 1, "240.00", "60.00", tekande)])
    )
    run_jobs()


def test_a_credit_note_is_mailed_too(db, account, setup_booked, run_jobs, shop_smtp):
    smtp, port = shop_smtp
    source_link = mailing_source_link(
        db, account, setup_booked, port, credit_note_subject="Kreditnota {invoice_number}"
    )
    booked_then_refunded(source_link, run_jobs)
    credit = the_transfer(db, "credit_note")
    assert credit.status == "done" and credit.mailed, credit.error_message
    assert len(smtp.messages) == 2
    message = smtp.messages[1]
    assert message["Subject"] == f"Kreditnota {credit.booked_number}"
    filename, data = pdf_attachment(message)
    assert filename == f"Kreditnota-{credit.booked_number}.pdf"
    check_pdf(data, credit.booked_number)
    assert b"Kreditnota" in data


def test_the_credit_note_texts_from_the_settings_page_are_used(
    db, account, owner_client, setup_booked, run_jobs, shop_smtp
):
    """The settings page saves a subject and a text of the credit note's own (their placeholders checked as
    the invoice's are); a refund's credit note is mailed with them, the invoice with the invoice's."""
    smtp, port = shop_smtp
    source_link = mailing_source_link(db, account, setup_booked, port)
    url = f"/shops/source_links/{source_link.id}"
    mail = mail_settings(
        port,
        body="Tak for ordre {order_number}.",  # the page checks what the other tests store directly
        credit_note_subject="Kreditnota {invoice_number} til ordre {order_number}",
        credit_note_body="Her er kreditnota {invoice_number} fra {shop_name}.\r\nVenlig hilsen",
    )
    form = settings_form(
        db,
        source_link,
        state_processing="booked",
        state_completed="booked",
        customers_create="y",
        products_create="y",
        mail_password=PASSWORD,
        **{f"mail_{key}": str(value) for key, value in mail.items() if key != "enabled"},
        **{"payments-1-paid": None},
    )
    refused = owner_client.post(url, data={**form, "mail_credit_note_body": "Kreditnota {nummer}"})
    assert refused.status_code == 400 and "Ukendt pladsholder {nummer}" in refused.get_data(as_text=True)
    saved = owner_client.post(url, data=form)
    assert saved.status_code == 302, saved.get_data(as_text=True)
    db.session.expire_all()
    stored = source_link.settings["invoice_mail"]
    assert stored["credit_note_subject"] == "Kreditnota {invoice_number} til ordre {order_number}"
    assert stored["credit_note_body"] == "Her er kreditnota {invoice_number} fra {shop_name}.\nVenlig hilsen"
    page = owner_client.get(url).get_data(as_text=True)
    assert 'value="Kreditnota {invoice_number} til ordre {order_number}"' in page
    assert "Emne for kreditnotaer" in page and "Tekst for kreditnotaer" in page

    booked_then_refunded(source_link, run_jobs)
    invoice, credit = the_transfer(db), the_transfer(db, "credit_note")
    assert credit.status == "done" and credit.mailed, invoice.error_message or credit.error_message
    assert [m["Subject"] for m in smtp.messages] == [
        f"Faktura {invoice.booked_number} fra Testbutikken",
        f"Kreditnota {credit.booked_number} til ordre 5001",
    ]
    text = smtp.messages[1].get_body(("plain",)).get_content().replace("\r\n", "\n")  # as sent over SMTP
    assert f"Her er kreditnota {credit.booked_number} fra Testbutikken.\nVenlig hilsen" in text


def test_dinero_invoices_are_mailed_with_dineros_pdf(db, account, run_jobs, shop_smtp):
    smtp, port = shop_smtp
    setup = make_setup(account, "dinero", auto_book=True)
    source_link = mailing_source_link(db, account, setup, port)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.mailed, transfer.error_message
    filename, data = pdf_attachment(smtp.messages[0])
    assert filename == f"Faktura-{transfer.booked_number}.pdf"
    check_pdf(data, transfer.booked_number)


def test_dynaccount_has_no_pdf_so_the_mail_is_skipped_with_the_reason(db, account, run_jobs, shop_smtp):
    smtp, port = shop_smtp
    setup = make_setup(account, "dynaccount", auto_book=True)
    source_link = mailing_source_link(db, account, setup, port)
    feed(source_link, order())
    run_jobs()
    transfer = the_transfer(db)
    assert transfer.status == "done" and transfer.booked_number and not transfer.mailed
    outcome, message = mail_log(transfer)[-1]
    assert outcome == "skipped" and "Dynaccount" in message and "PDF" in message
    assert smtp.messages == []


def test_placeholders_never_reach_further_than_the_four_names():
    values = {"invoice_number": "7", "order_number": "5001", "customer_name": "Anna", "shop_name": "Butik"}
    text = "{invoice_number} {order_number.__class__} {customer_name} {0} {shop_name}"
    assert invoice_mail.fill(text, values) == "7 {order_number.__class__} Anna {0} Butik"


def test_settings_defaults(db, account, setup_booked):
    source_link = make_source_link(
        db, account, setup_booked, invoice_mail={"enabled": True, "security": "ssl"}
    )
    config = pipeline_settings.invoice_mail(source_link)
    assert (config.enabled, config.port, config.security) == (True, 465, "ssl")
    assert pipeline_settings.error_digest_enabled(source_link)
    assert not pipeline_settings.daily_report_enabled(source_link)
    assert pipeline_settings.smtp_password(source_link) == ""
