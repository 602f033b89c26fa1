"""English text the engine writes (a VAT decision's reason, a customer match's reason, a warning) that the
pages can still show in the reader's language.

A Text *is* the English string (logs, tests and comparisons see nothing new) and also keeps its msgid and
parameters, which portal.pipeline.messages.translated renders in the current language. Parameters named in
`labels` are msgids themselves (a field's name); an `amount(...)` parameter is written the reader's way
(`1.234,50 kr.` / `DKK 1,234.50`). Stored as JSON it becomes the plain English string.
"""

from decimal import Decimal

from portal.engine.money import format_money


def N_(message: str) -> str:
    """Marks a msgid for `make extract-messages` without translating it here (the engine knows no Flask)."""
    return message


class Text(str):
    msgid: str
    params: dict
    labels: tuple[str, ...]

    def __new__(cls, msgid: str, labels: tuple[str, ...] = (), **params) -> "Text":
        text = super().__new__(cls, msgid % english_params(params) if params else msgid)
        text.msgid = msgid
        text.params = params
        text.labels = labels
        return text


# The customer match fields (settings.MatchField) as a reason names them.
MATCH_FIELD_NAMES = {"email": N_("e-mail"), "vat_number": N_("VAT number"), "ean": N_("EAN number")}


def field_name(field: str) -> str:
    return MATCH_FIELD_NAMES.get(field, field)


def amount(value, currency: str = "DKK") -> dict:
    """A money parameter of a message: formatted where it is shown, in the reader's language."""
    return {"amount": str(Decimal(str(value))), "currency": currency}


def is_amount(value) -> bool:
    return isinstance(value, dict) and set(value) == {"amount", "currency"}


def english_params(params: dict) -> dict:
    return {
        key: format_money(value["amount"], value["currency"], "en") if is_amount(value) else value
        for key, value in params.items()
    }
