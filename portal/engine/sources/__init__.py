"""Source payloads → canonical documents. One module per source, each with
`normalise_order(payload, settings) -> SalesDocument`,
`normalise_refund(order_payload, refund_payload, settings) -> Refund` and PREFIX, its references' prefix;
the pipeline reaches them through the source's portal.sources.Source."""

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime


def parse_datetime(text: str | None, assume_utc: bool = True) -> datetime | None:
    """An aware UTC datetime from ISO-8601 text. WooCommerce's `*_gmt` fields have no offset but are UTC;
    Shopify's carry an offset."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        if not assume_utc:
            raise ValueError(f"datetime without a timezone: {text!r}")
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def first_value(pairs: Iterable[tuple[str, object]], keys: Iterable[str]) -> str | None:
    """The first non-empty string value among `pairs` whose key is one of `keys` (in the order of `keys`,
    case-insensitive)."""
    found: dict[str, str] = {}
    for key, value in pairs:
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            found.setdefault(str(key).lower(), str(value).strip())
    for key in keys:
        if key.lower() in found:
            return found[key.lower()]
    return None


def clean(text: object) -> str | None:
    if text is None:
        return None
    text = str(text).strip()
    return text or None


def join(*parts: object, sep: str = " ") -> str:
    return sep.join(p for p in (clean(x) for x in parts) if p)


PRODUCT_NUMBER_MAX = 25  # e-conomic productNumber maxLength (products schema); Dinero/Dynaccount: more


def product_number(key: object) -> str | None:
    """A subscription system's own key of what was sold (a Stripe product id, a Frisbii plan handle) as the
    product number it is booked on, like a shop's SKU: as it is when it fits every ledger, else its first
    characters and a hash of the whole, so two long keys never share a product and the same key always
    finds the same one."""
    text = clean(key)
    if text is None or len(text) <= PRODUCT_NUMBER_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: PRODUCT_NUMBER_MAX - 9]}-{digest}"
