"""Sources: the systems sales come from (webshops today; subscription systems, tills, files next), each behind
one interface, registered in one table. Intake, posting, retries, polls and preview (portal.pipeline) ask a
source only through `Source`, so adding one is its module here, its connector and normaliser, and its
sandbox — nothing in the pipeline changes.

A source is three pieces, each where its kind of code lives:

    portal/sources/<key>.py          a Source: what its webhooks and payloads mean (this interface)
    portal/connectors/<key>.py       its Flask-free client: verify_webhook(headers, raw_body, secret), and a
                                     SourceConnector (portal.connectors.sources) that fetches a sale by id
                                     (get_order), by number (find_order), all changed since a moment
                                     (list_orders, paged), a sale's refunds (list_refunds)
    portal/engine/sources/<key>.py   normalise_order / normalise_refund: payload → the engine's canonical
                                     SalesDocument / Refund (pure)
"""

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping

from portal.connectors.base import N_
from portal.connectors.sources import WebhookDelivery
from portal.engine.documents import Refund, SalesDocument
from portal.engine.settings import SourceLinkSettings

# Why a sale for 0 is left out, for every source that sells invoices (Source.invoices); changing this msgid
# orphans its translation.
ZERO_SKIPPED = N_(
    "The invoice is for 0 (e.g. a coupon for the full amount), and invoices for 0 are set not to "
    "transfer. Change it in the source link's settings to transfer them."
)

# key → the module with SOURCE, a Source instance. The key is SourceLink.source_system and the
# connector registry's key (portal.connectors.SYSTEM_MODULES).
SOURCES: dict[str, str] = {
    "woocommerce": "portal.sources.woocommerce",
    "shopify": "portal.sources.shopify",
    "stripe": "portal.sources.stripe",
    "frisbii": "portal.sources.frisbii",
}


class Source(ABC):
    """Everything the pipeline needs to know of one kind of source.

    The contract:
    - Webhooks. `verify_webhook` runs on the raw body before anything parses it: a missing, wrong or
      foreign signature raises portal.connectors.sources.WebhookRejected (answered 401, nothing stored).
      What it returns carries the sender's delivery id (the dedup key: the same delivery sent again must
      give the same id, two different changes must not), the topic, the id of the sale it is about, and —
      where the system names it — the shop/account the delivery says it comes from, which must equal
      `webhook_account(credentials)` (else 403, nothing stored). `webhook_secret` says which secret the
      system signs with.
    - Meaning. `is_sale(payload)`: whether a stored payload is a sale to decide (anything else is stored
      and ignored with a reason). `refunds_in(payload)`: the refunds a sale's payload lists; a new one that
      is `refund_complete` is recorded at once, the others are fetched (the pipeline queues fetch_refunds,
      which reads them through the SourceConnector). Each becomes a refund event, deduplicated per id.
    - Notifications. `to_fetch` names the sale a payload only points at: it is read and stored first.
    - Kind. `subscription_of` names the subscription a renewal renews (None for any other sale): the
      settings say whether first/ordinary sales, renewals or both transfer, and the step log names the
      renewal. `ignored_reason` says why a payload that is no sale (a subscription's own change) is
      stored and not transferred.
    - Invoices for 0. A source that sells invoices (`invoices`) says which are for 0 (`is_zero`: a full
      discount); the link's setting "zero_amount" skips them (the default, with the reason) or transfers
      them — one setting for every such source, offered on the settings page from `invoices`.
    - State and number. `sale_state` is the state the per-state settings key on, one of `states`;
      `sale_number` the number the customer sees; `sale_created` the moment the activation date compares
      against; `sale_modified` the version, which keys the poll's and the manual import's delivery ids.
    - Normalising. `normalise` / `normalise_refund` turn a payload into the engine's canonical documents
      (portal.engine.documents): never a network call, the same payload always gives the same document,
      and its reference is built with `reference_prefix`, which never changes once documents were posted
      with it (it is how a document is found again).
    - Fetching (the poll, the preview, refunds) is the SourceConnector's: see this package's docstring.
    A payload is whatever the source sent, stored raw: every method takes it as a dict and raises
    KeyError/ValueError/TypeError on one it cannot read (the transfer then needs attention, visibly).
    """

    key: str
    reference_prefix: str
    states: tuple[str, ...]  # the sale states the settings key on, in the system's own words
    paid_states: tuple[str, ...]  # the states a new link transfers (as drafts unless the setup books)
    paid_methods: tuple[str, ...] = ()  # payment methods a new link registers as paid (money in at once)
    renewals: bool = False  # it has subscription renewals besides other sales (subscription_of names them)
    # It sells invoices, which a full discount brings to 0: its links say whether those transfer
    # (the stored setting "zero_amount", skip by default; `is_zero` tells them).
    invoices: bool = False

    # --- webhooks ---

    @abstractmethod
    def verify_webhook(self, headers: Mapping[str, str], raw_body: bytes, secret: str) -> WebhookDelivery: ...

    def webhook_secret(self, link_secret: str, app_settings: Callable[[], Mapping]) -> str:
        """The secret deliveries are signed with: by default the link's own (set on each subscription);
        `app_settings()` reads the app's own ids and secrets for this system, for one signed by the app."""
        return link_secret

    def webhook_account(self, credentials: Mapping) -> str | None:
        """The shop/account every delivery for a connection must name; None where the system names none."""
        return None

    # --- what a payload means ---

    def is_sale(self, payload: object) -> bool:
        """`payload` as stored: for a source whose webhooks wrap the sale in an event, the event."""
        return isinstance(payload, dict) and bool(payload.get("id")) and "line_items" in payload

    def sale_of(self, payload: dict) -> dict:
        """The sale in a stored payload: the payload itself, or the sale an event envelope carries."""
        return payload

    def refunded_sale(self, payload: dict) -> str | None:
        """The id of the sale a stored payload announces a refund of (whose refunds are then fetched:
        fetch_refunds), where the system sends refunds as events of their own; else None. Any id the
        SourceConnector's get_order and list_refunds read the sale by will do (a Stripe refund names only
        the PaymentIntent that paid the invoice)."""
        return None

    def excluded(self, sale: dict, stored_settings: Mapping) -> str | None:
        """A msgid (N_) saying why the link's settings leave this sale out, beyond its state and date."""
        if self.invoices and self.is_zero(sale) and stored_settings.get("zero_amount", "skip") != "transfer":
            return ZERO_SKIPPED
        return None

    def is_zero(self, sale: dict) -> bool:
        """Whether the sale is for 0 in all (for a source that sells invoices)."""
        return False

    def refunds_in(self, payload: dict) -> list[dict]:
        """The refunds a sale's payload lists, each with at least its id."""
        return [r for r in payload.get("refunds") or [] if isinstance(r, dict) and r.get("id")]

    def to_fetch(self, topic: str, payload: object) -> str | None:
        """For a notification that names a sale without carrying it (Frisbii's webhooks name the invoice's
        handle): the id to read it by (SourceConnector.get_order). The sale read is stored as an event of
        its own and decided like any. None: the payload is the sale (or no sale at all)."""
        return None

    def ignored_reason(self, topic: str, payload: object) -> str:
        """Why a stored payload that is not a sale is not transferred: an English msgid (N_), shown in
        Danish in the event's outcome."""
        return N_("Not a sale: stored, not transferred.")

    def subscription_of(self, payload: dict) -> str | None:
        """The subscription a sale renews (its id or handle as the system names it), None for a sale that
        is no renewal. The settings say which of the two kinds transfer."""
        return None

    @abstractmethod
    def refund_complete(self, refund: dict) -> bool:
        """Whether a listed refund carries all normalise_refund needs; else it is fetched (list_refunds)."""

    @abstractmethod
    def sale_state(self, payload: dict) -> str: ...

    def sale_number(self, payload: dict) -> str:
        return str(
            payload.get("order_number") or payload.get("number") or payload.get("name") or payload.get("id")
        )

    @abstractmethod
    def sale_created(self, payload: dict) -> str | None:
        """ISO-8601 text, as the source wrote it (portal.engine.sources.parse_datetime reads it)."""

    @abstractmethod
    def sale_modified(self, payload: dict) -> str | None: ...

    # --- normalising ---

    @abstractmethod
    def normalise(self, payload: dict, settings: SourceLinkSettings) -> SalesDocument: ...

    @abstractmethod
    def normalise_refund(self, sale: dict, refund: dict, settings: SourceLinkSettings) -> Refund: ...


def get_source(key: str) -> Source:
    try:
        return importlib.import_module(SOURCES[key]).SOURCE
    except KeyError:
        raise LookupError(f"unknown source {key!r}") from None
