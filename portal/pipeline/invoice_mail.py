"""The invoice mail step: the booked invoice (or credit note), as the accounting system renders it (PDF),
mailed to the order's customer through the shop's OWN SMTP server — at most once.

Called by portal.pipeline.posting after booking and payment, when the source link's
`invoice_mail.enabled` is on and the transfer is not `mailed` yet. Outcomes:

    sent          the server accepted the message (250 after DATA): `mailed`, logged "ok"
    uncertain     the whole message went out but the server's answer never came (timeout, dropped
                  connection) — or a worker died mid-send: it may have been delivered, so it counts as
                  mailed and is never sent again automatically; logged "uncertain" with what to check
    skipped       no customer e-mail address, or an accounting system without an invoice PDF (Dynaccount):
                  logged with the reason; the transfer is done (a mail without the invoice is no invoice)
    MailUnavailable   nothing was delivered and trying later may work (connection refused, timeout before
                  the message was sent, 4xx): the pipeline's transient retry, resuming at this step
    MailRefused   nothing was delivered and only the user can fix it (login refused, sender refused, TLS
                  mismatch, incomplete settings): "needs attention" with what to fix; the invoice stays
                  booked and a retry resumes at this step

"Never twice": before the message is handed to the server a "sending" entry is committed to the transfer
log; a run that finds that entry as the step's last word (the worker died after it) does not send again.
"""

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from portal.connectors.base import AccountingConnector, RemoteInvoice
from portal.connectors.errors import TransientError, UnsupportedOperation
from portal.engine.invoice import DraftPlan
from portal.extensions import db
from portal.models import Transfer, TransferLog
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.messages import N_, message

STEP = "mail"
PLACEHOLDER = re.compile(r"\{(invoice_number|order_number|customer_name|shop_name)\}")
# The language of the default subject and body: the shop's customers, not the account's users.
DEFAULT_LANGUAGE = "da"


class MailUnavailable(TransientError):
    """The customer's mail server could not take the mail now; nothing was delivered. Retry later."""


class MailRefused(Exception):
    """Nothing was delivered and retrying will not help until the settings are corrected."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class Delivery:
    outcome: str  # ok | uncertain
    answer: str  # the server's last word, or what went wrong


def mail_invoice(
    transfer: Transfer, connector: AccountingConnector, plan: DraftPlan, remote: RemoteInvoice, log
):
    """Mail the booked document once; sets and commits `transfer.mailed`. `log` is the pipeline's
    _log(transfer, step, outcome, message, details). Raises MailUnavailable or MailRefused (nothing sent)."""
    source_link = transfer.source_link
    config = pipeline_settings.invoice_mail(source_link)
    number = remote.number or remote.id
    document = N_("credit note") if transfer.kind == "credit_note" else N_("invoice")

    previous = _last_mail_entry(transfer)
    if previous is not None and previous.outcome == "sending":
        transfer.mailed = True
        log(
            transfer,
            STEP,
            "uncertain",
            message(
                N_(
                    "An earlier attempt was sending the %(document)s mail when it stopped: it may have been "
                    "delivered, so it is not sent again. Ask the customer or check the mail server's sent "
                    "mail, and send %(document)s %(number)s by hand if it did not arrive."
                ),
                ("document",),
                document=document,
                number=number,
            ),
            previous.details,
        )
        db.session.commit()
        return

    to = (plan.customer.email or "").strip()
    if "@" not in to:
        log(
            transfer,
            STEP,
            "skipped",
            message(
                N_("The order has no customer e-mail address: %(document)s %(number)s not mailed."),
                ("document",),
                document=document,
                number=number,
            ),
        )
        db.session.commit()
        return
    problem = _incomplete(config, source_link)
    if problem:
        raise MailRefused(f"{problem} Complete the invoice mail settings of the sales source, then retry.")
    try:
        pdf = connector.invoice_pdf(remote)
    except UnsupportedOperation as exc:
        # A mail saying "here is your invoice" without the invoice would only puzzle the customer.
        log(
            transfer,
            STEP,
            "skipped",
            message(
                N_(
                    "%(detail)s, so Bogbro cannot mail %(document)s %(number)s; send it from %(system)s "
                    "(or switch the invoice mail off)."
                ),
                ("document",),
                detail=exc.message,
                document=document,
                number=number,
                system=connector.system.name,
            ),
        )
        db.session.commit()
        return

    filename = _filename(transfer, remote)
    mail = build_message(transfer, config, plan, remote, to, pdf, filename)
    details = {
        "to": to,
        "server": f"{config.host}:{config.port}",
        "security": config.security,
        "subject": str(mail["Subject"]),
        "attachment": filename,
        "message_id": str(mail["Message-ID"]),
    }
    sending = message(
        N_("Sending %(document)s %(number)s to %(to)s via %(server)s."),
        ("document",),
        document=document,
        number=number,
        to=to,
        server=config.host,
    )
    log(transfer, STEP, "sending", sending, details)
    db.session.commit()
    timeout = current_app.config["INVOICE_MAIL_TIMEOUT_SECONDS"]
    try:
        delivery = deliver(config, pipeline_settings.smtp_password(source_link), mail, timeout)
    except (MailUnavailable, MailRefused) as exc:
        log(transfer, STEP, "error", message(N_("Not sent: %(detail)s"), detail=exc.message), details)
        db.session.commit()
        raise
    transfer.mailed = True
    if delivery.outcome == "ok":
        log(
            transfer,
            STEP,
            "ok",
            message(
                N_("%(document)s %(number)s mailed to %(to)s."),
                ("document",),
                document=document,
                number=number,
                to=to,
            ),
            {**details, "answer": delivery.answer},
        )
    else:
        log(
            transfer,
            STEP,
            "uncertain",
            message(
                N_(
                    "The mail server %(server)s received the whole %(document)s mail to %(to)s but its "
                    "answer was lost (%(answer)s): it may have been delivered, so it is not sent again "
                    "automatically. Check the sent mail, and send %(document)s %(number)s by hand if it did "
                    "not arrive."
                ),
                ("document",),
                server=config.host,
                document=document,
                to=to,
                answer=delivery.answer,
                number=number,
            ),
            details,
        )
    db.session.commit()


def _last_mail_entry(transfer: Transfer) -> TransferLog | None:
    return db.session.scalar(
        select(TransferLog)
        .where(TransferLog.transfer_id == transfer.id, TransferLog.step == STEP)
        .order_by(TransferLog.id.desc())
        .limit(1)
    )


def _incomplete(config: pipeline_settings.InvoiceMail, source_link) -> str | None:
    if not config.host:
        return "The invoice mail has no SMTP server."
    if config.security not in pipeline_settings.MAIL_SECURITY:
        return f"The invoice mail's security “{config.security}” is none of STARTTLS, SSL or none."
    if "@" not in parseaddr(config.sender)[1]:
        return "The invoice mail has no sender address."
    if config.username and not pipeline_settings.smtp_password(source_link):
        return f"The invoice mail has a user name ({config.username}) but no SMTP password."
    return None


# --- the message -------------------------------------------------------------------------------------------


def _filename(transfer: Transfer, remote: RemoteInvoice) -> str:
    prefix = "Kreditnota" if transfer.kind == "credit_note" else "Faktura"
    number = re.sub(r"[^\w.-]", "_", str(remote.number or remote.id))
    return f"{prefix}-{number}.pdf"


def fill(template: str, values: dict) -> str:
    """Only the four placeholders are replaced; any other brace is left as written (never str.format on
    user text)."""
    return PLACEHOLDER.sub(lambda match: str(values.get(match.group(1), "")), template)


def default_texts(credit_note: bool) -> tuple[str, str]:
    with force_locale(DEFAULT_LANGUAGE):
        if credit_note:
            return (
                _("Credit note {invoice_number} for order {order_number}"),
                _(
                    "Dear {customer_name}\n\nAttached is credit note {invoice_number} for your order "
                    "{order_number}.\n\nKind regards\n{shop_name}"
                ),
            )
        return (
            _("Invoice {invoice_number} for order {order_number}"),
            _(
                "Dear {customer_name}\n\nThank you for your order {order_number}. Attached is invoice "
                "{invoice_number}.\n\nKind regards\n{shop_name}"
            ),
        )


def build_message(
    transfer: Transfer,
    config: pipeline_settings.InvoiceMail,
    plan: DraftPlan,
    remote: RemoteInvoice,
    to: str,
    pdf: bytes,
    filename: str,
) -> EmailMessage:
    credit_note = transfer.kind == "credit_note"
    source_link = transfer.source_link
    values = {
        "invoice_number": remote.number or remote.id,
        "order_number": transfer.order_number,
        "customer_name": plan.customer.name,
        "shop_name": source_link.name or source_link.connection.label,  # never "#id" in a customer's mail
    }
    default_subject, default_body = default_texts(credit_note)
    subject = (config.credit_note_subject if credit_note else config.subject) or default_subject
    body = (config.credit_note_body if credit_note else config.body) or default_body
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = " ".join(fill(subject, values).split())  # one line: no header injection
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(config.sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(idstring=f"bogbro-{transfer.id}", domain=domain)
    message.set_content(fill(body, values).replace("\r\n", "\n"))
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=filename)
    return message


# --- SMTP --------------------------------------------------------------------------------------------------


class _Tracking:
    """Notes when the message's final "<CRLF>.<CRLF>" has been handed to the socket: from then on a lost
    answer means "may have been delivered"."""

    message_sent = False

    def send(self, s):
        super().send(s)
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.message_sent = True


class _SMTP(_Tracking, smtplib.SMTP):
    pass


class _SMTPSSL(_Tracking, smtplib.SMTP_SSL):
    pass


def _answer(exc: smtplib.SMTPResponseException) -> str:
    text = (
        exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    )
    return f"{exc.smtp_code} {text}".strip()


def deliver(
    config: pipeline_settings.InvoiceMail, password: str, message: EmailMessage, timeout: float
) -> Delivery:
    """Send through the configured server. Returns ok/uncertain; raises MailUnavailable or MailRefused when
    the message was certainly not delivered."""
    server = f"{config.host}:{config.port}"
    smtp = None
    try:
        context = ssl.create_default_context()
        if config.security == "ssl":
            smtp = _SMTPSSL(config.host, config.port, timeout=timeout, context=context)
        else:
            smtp = _SMTP(config.host, config.port, timeout=timeout)
        if config.security == "starttls":  # smtplib greets (EHLO) before STARTTLS, login and send itself
            smtp.starttls(context=context)
        if config.username:
            smtp.login(config.username, password)
        smtp.send_message(message)
        return Delivery("ok", "250 accepted")
    except smtplib.SMTPAuthenticationError as exc:
        raise MailRefused(
            f"The mail server {server} refused the login of {config.username} ({_answer(exc)}). Correct the "
            "SMTP user name and password in the sales source's invoice mail settings, then retry: "
            "the invoice stays booked and only the mail is sent."
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise MailRefused(
            f"The mail server {server} does not offer what the settings ask for ({exc}). Check the port and "
            "the security setting (STARTTLS, SSL or none) of the invoice mail, then retry."
        ) from exc
    except smtplib.SMTPSenderRefused as exc:
        if exc.smtp_code < 500:
            raise MailUnavailable(f"The mail server {server} deferred the sender ({_answer(exc)})") from exc
        raise MailRefused(
            f"The mail server {server} refused the sender address {exc.sender} ({_answer(exc)}). Use a "
            "sender address the SMTP account may send from, then retry."
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        answers = list(exc.recipients.values())
        text = "; ".join(f"{code} {reply.decode(errors='replace')}" for code, reply in answers)
        if all(code < 500 for code, _ in answers):
            raise MailUnavailable(
                f"The mail server {server} deferred the customer's address ({text})"
            ) from exc
        raise MailRefused(
            f"The mail server {server} refused the customer's address {message['To']} ({text}). Correct the "
            "address on the order (or send the invoice by hand), then retry."
        ) from exc
    except smtplib.SMTPResponseException as exc:
        # Any other answer: to the greeting, HELO, STARTTLS, MAIL, or the final answer to the message.
        if exc.smtp_code < 500:
            raise MailUnavailable(f"The mail server {server} answered {_answer(exc)}") from exc
        raise MailRefused(
            f"The mail server {server} refused the mail ({_answer(exc)}). Check the invoice mail settings, "
            "then retry."
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise MailRefused(
            f"The certificate of the mail server {server} could not be verified ({exc.verify_message}). Use "
            "the server's own host name in the invoice mail settings, then retry."
        ) from exc
    except ssl.SSLError as exc:
        if smtp is not None and smtp.message_sent:
            return Delivery("uncertain", str(exc))
        raise MailRefused(
            f"No secure connection to the mail server {server} ({exc.reason or exc}). Check the port and the "
            "security setting (STARTTLS usually on 587, SSL on 465), then retry."
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:  # disconnected, refused, timed out, unknown host
        if smtp is not None and smtp.message_sent:
            return Delivery("uncertain", f"{type(exc).__name__}: {exc}")
        if isinstance(exc, socket.gaierror):
            reason = f"the host name was not found ({exc})"
        elif isinstance(exc, TimeoutError):
            reason = "it did not answer in time"
        else:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise MailUnavailable(f"The mail server {server} could not be reached: {reason}") from exc
    finally:
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
