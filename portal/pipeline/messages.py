"""What the pipeline tells people about a transfer (why it needs attention, was skipped, waits), kept so
every page and mail can say it in the reader's language.

A Message is an English msgid (marked with N_ where it is written, so it is extracted and translated),
its parameters, and which parameters are msgids themselves (`labels`: a template's name as the wizard
shows it). A parameter may also be a Message (a step's reason inside "what to fix"), a list of them, an
`amount(...)` or `a_day(...)` (written the reader's way: `1.234,50 kr.`, `7. dec. 2026`). Parameters that
come from elsewhere — an accounting system's own error text, an order number — are shown as they are.

The Transfer keeps the English text in `error_message` / `reason` (logs, search) and the Message in
`message`; `shown(transfer)` gives the text in the current language. A step log row keeps its Message in
`TransferLog.text`; `log_text(entry)` shows it.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

from flask_babel import gettext

from portal.connectors.base import N_  # noqa: F401  (re-exported for the pipeline's msgids)
from portal.engine.money import format_money
from portal.engine.text import amount, is_amount  # noqa: F401  (amount: re-exported for the pipeline)
from portal.i18n import format_day, language_of
from portal.pipeline.renamed_messages import RENAMED


@dataclass(frozen=True)
class Message:
    msgid: str
    params: Mapping[str, object] = field(default_factory=dict)
    labels: tuple[str, ...] = ()

    def english(self) -> str:
        return render(self.as_dict(), translate=lambda text: text, language="en")

    def as_dict(self) -> dict:
        params = {k: _stored(v) for k, v in self.params.items()}
        return {"msgid": self.msgid, "params": params, "labels": list(self.labels)}


def _stored(value):
    if isinstance(value, Message):
        return value.as_dict()
    if getattr(value, "msgid", None):  # an engine Text (a reason inside a reason)
        params = {k: _stored(v) for k, v in (getattr(value, "params", None) or {}).items()}
        return {"msgid": value.msgid, "params": params, "labels": list(getattr(value, "labels", ()))}
    if isinstance(value, list | tuple):  # a list of Messages (a step's products): joined where shown
        return [_stored(item) for item in value]
    return value


def message(msgid: str, labels: tuple[str, ...] = (), **params) -> Message:
    return Message(msgid, params, labels)


def from_engine_error(exc) -> Message | str:
    """An EngineConfigError as a Message when it kept its msgid, else its English text."""
    if getattr(exc, "msgid", None):
        return Message(exc.msgid, dict(exc.params), tuple(exc.labels))
    return str(exc)


def render(stored: dict, translate: Callable[[str], str] = gettext, language: str | None = None) -> str:
    """The stored message's text: translated, with amounts written the reader's way (`language`: the
    current locale's when not given)."""
    params = {}
    for key, value in (stored.get("params") or {}).items():
        if is_amount(value):
            params[key] = format_money(value["amount"], value["currency"], language_of(language))
        elif isinstance(value, dict) and set(value) == {"date"}:
            params[key] = format_day(date.fromisoformat(value["date"]), locale=language)
        elif isinstance(value, dict) and "msgid" in value:
            params[key] = render(value, translate, language)
        elif isinstance(value, list):
            params[key] = ", ".join(
                render(item, translate, language) if isinstance(item, dict) else str(item) for item in value
            )
        elif key in (stored.get("labels") or ()):
            params[key] = translate(str(value))
        else:
            params[key] = value
    text = translate(RENAMED.get(stored["msgid"], stored["msgid"]))
    return text % params if params else text


def a_day(day: date) -> dict:
    """A date parameter of a message: written the reader's way where it is shown (`7. dec. 2026`)."""
    return {"date": day.isoformat()}


def translated(value) -> str:
    """Any English message in the reader's language: a plain msgid (str), or anything carrying `msgid`,
    `params` and maybe `labels` (a Message, an EngineConfigError made translatable, a settings Problem)."""
    msgid = getattr(value, "msgid", None)
    if msgid is None:
        return gettext(RENAMED.get(str(value), str(value)))
    return render(_stored(value))


def store(transfer, field_name: str, value: "Message | str | None") -> None:
    """Set the transfer's `error_message` or `reason` (English) and remember the Message behind it."""
    if isinstance(value, Message):
        english = value.english()
        setattr(transfer, field_name, english)
        transfer.message = {**value.as_dict(), "english": english}
    else:
        setattr(transfer, field_name, value)
        transfer.message = None


def stored_message(transfer) -> "Message | None":
    """The Message behind the transfer's current text, to quote it inside another (None without one)."""
    stored = transfer.message
    if not stored or stored.get("english") != (transfer.error_message or transfer.reason):
        return None
    return Message(stored["msgid"], stored.get("params") or {}, tuple(stored.get("labels") or ()))


def shown(transfer) -> str:
    """The transfer's current message in the reader's language (the English text when it has no Message,
    or when the text was changed since without one)."""
    text = transfer.error_message or transfer.reason or ""
    stored = transfer.message
    if text and stored and stored.get("english") == text:
        return render(stored)
    return text


def log_text(entry) -> str:
    """A step log row's text in the reader's language; rows written before steps kept their Message (or
    whose text a redaction changed) show the English they stored."""
    if entry.text and entry.text.get("msgid"):
        try:
            return render(entry.text)
        except (KeyError, TypeError, ValueError):  # a msgid and its parameters that no longer fit
            return entry.message
    return entry.message
