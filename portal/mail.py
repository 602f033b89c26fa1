"""Sending e-mail: SMTP when MAIL_SERVER is set, otherwise printed to the console (development)."""

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app

log = logging.getLogger(__name__)


def send_mail(to: str | list[str], subject: str, body: str, html: str | None = None) -> EmailMessage:
    """A text mail (with an HTML alternative when `html` is given) from Bogbro to one or more people."""
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = to if isinstance(to, str) else ", ".join(to)
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="bogbro.dk")
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")

    if not config.get("MAIL_SERVER"):
        print(readable(message), flush=True)
        return message

    smtp_class = smtplib.SMTP_SSL if config["MAIL_USE_SSL"] else smtplib.SMTP
    with smtp_class(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
        if config["MAIL_USE_TLS"] and not config["MAIL_USE_SSL"]:
            smtp.starttls(context=ssl.create_default_context())
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
        smtp.send_message(message)
    log.info("mail %r sent to %s", subject, to)
    return message


def readable(message: EmailMessage) -> str:
    """The mail as a developer reads it in the console: headers decoded and the text part as text (not
    base64 or quoted-printable); the HTML alternative is only mentioned."""
    text = message.get_body(preferencelist=("plain",))
    parts = [f"{name}: {message[name]}" for name in ("From", "To", "Subject")]
    if message.get_body(preferencelist=("html",)) is not None:
        parts.append("(with an HTML version)")
    headers = "\n".join(parts)
    body = text.get_content() if text is not None else ""
    return f"\n----- e-mail (MAIL_SERVER is not set, so it is printed) -----\n{headers}\n\n{body}\n-----"
