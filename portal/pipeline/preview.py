"""The decision a transfer makes, and the dry-run preview built from it: a sale's state and what that state
makes (skip reasons included), and the exact invoice plan the engine makes of it — without reading from or
writing to the accounting system."""

import json
from dataclasses import dataclass
from decimal import Decimal

from portal.connectors import get_system
from portal.engine.documents import COPENHAGEN
from portal.engine.invoice import DraftPlan, build_draft
from portal.engine.ledger_documents import InvoiceLine
from portal.engine.money import q2
from portal.engine.sources import parse_datetime
from portal.engine.vat import decide_zone
from portal.models import SourceLink, Transfer
from portal.pipeline import settings as pipeline_settings
from portal.pipeline.messages import N_, Message, a_day, message, render
from portal.setups.connections import connector_for
from portal.sources import get_source

# Named in the step log (msgids, translated where shown)
DOCUMENT_NAMES = {
    "none": N_("not transferred"),
    "order": N_("an order"),
    "draft": N_("a draft invoice"),
    "booked": N_("a booked invoice"),
}


def renewal_name(subscription: str) -> Message:
    """How the step log names a renewal: "Fornyelse af abonnement #N"."""
    if not subscription:
        return message(N_("Renewal of a subscription"))
    return message(N_("Renewal of subscription #%(subscription)s"), subscription=subscription)


def order_state(source: str, order: dict) -> str:
    """The state the source link's per-state settings key on, as the source says it (Source.sale_state)."""
    return get_source(source).sale_state(order)


def skip_reason(
    source_link: SourceLink, order: dict, state: str, document: str, imported: bool = False
) -> Message | None:
    subscription = get_source(source_link.source_system).subscription_of(order)
    kinds = pipeline_settings.sale_kinds(source_link)
    if subscription is not None and "renewals" not in kinds:
        return message(
            N_("%(sale)s: renewals of subscriptions are not set to transfer."),
            sale=renewal_name(subscription),
        )
    if subscription is None and "orders" not in kinds:
        return message(N_("Only renewals of subscriptions are set to transfer, and this sale is not one."))
    if document == "none":
        return message(
            N_("The order's state “%(state)s” is not set to transfer."),
            ("state",),
            state=pipeline_settings.STATE_NAMES.get(state, state),
        )
    excluded = get_source(source_link.source_system).excluded(order, source_link.settings or {})
    if excluded:
        return message(excluded)
    start = None if imported else pipeline_settings.activation_date(source_link)
    created = get_source(source_link.source_system).sale_created(order)
    if start and created:
        day = parse_datetime(created).astimezone(COPENHAGEN).date()
        if day < start:
            return message(
                N_("The order is from %(day)s, before the activation date %(start)s."),
                day=a_day(day),
                start=a_day(start),
            )
    return None


def _shown(problem: Message | None) -> str | None:
    return render(problem.as_dict()) if problem is not None else None


def preview(source_link: SourceLink, order: dict) -> DraftPlan:
    """The exact invoice a real order would become (lines, zone, accounts/product groups, rounding line,
    customer match, reconciliation) — computed by the engine alone: nothing is read from or written to the
    accounting system. Raises EngineConfigError when the setup cannot book it."""
    setup = source_link.setup
    order = get_source(source_link.source_system).sale_of(order)
    settings = pipeline_settings.engine_settings(source_link)
    rates = pipeline_settings.vat_rates()
    document = get_source(source_link.source_system).normalise(order, settings)
    decision = decide_zone(document.customer, settings, rates, document.invoice_date)
    capabilities = get_system(setup.system).capabilities
    values = pipeline_settings.setup_values(setup)
    return build_draft(document, decision, values, capabilities, settings, rates, setup.external_id)


@dataclass(frozen=True)
class OrderPreview:
    """What an order would become, decided exactly as a transfer decides it, without posting anything."""

    order_number: str
    state: str  # the shop's state the per-state settings key on
    document: str  # what that state makes: none | draft | booked (booked only while the setup auto-books)
    skip_reason: str | None  # why a transfer would skip it (the state, the activation date), if it would
    # (in the reader's language: the preview is rendered in a request)
    plan: DraftPlan

    @property
    def will_book(self) -> bool:
        return self.skip_reason is None and self.document == "booked" and self.plan.can_book

    def lines(self) -> list["PreviewLine"]:
        """Each invoice line with its kind, VAT rate and where it is booked (product group, account, VAT
        code — whichever the accounting system books by) for the order's zone."""
        products = {product.number: product for product in self.plan.products}
        kinds = self.plan.line_kinds or ("",) * len(self.plan.invoice.lines)
        result = []
        for line, rate, kind in zip(self.plan.invoice.lines, self.plan.line_rates, kinds, strict=True):
            product = products.get(line.product_number or "")
            result.append(
                PreviewLine(
                    kind=kind,
                    line=line,
                    vat_rate=rate,
                    net_total=q2(line.quantity * line.unit_net_price),
                    product_group=product.product_group if product else None,
                    account=line.account or (product.account if product else None),
                    vat_code=line.vat_code or (product.vat_code if product else None),
                )
            )
        return result


@dataclass(frozen=True)
class PreviewLine:
    kind: str
    line: InvoiceLine
    vat_rate: Decimal
    net_total: Decimal
    product_group: str | None
    account: str | None
    vat_code: str | None


def preview_order(source_link: SourceLink, order: dict, imported: bool = False) -> OrderPreview:
    """preview() plus the decision a transfer makes first: whether the order's state transfers at all, and
    as a draft or booked. Raises EngineConfigError, or KeyError/ValueError/TypeError for an unreadable
    order."""
    order = get_source(source_link.source_system).sale_of(order)
    state = order_state(source_link.source_system, order)
    document = pipeline_settings.document_for_state(source_link, state)
    return OrderPreview(
        order_number=get_source(source_link.source_system).sale_number(order),
        state=state,
        document=document,
        skip_reason=_shown(skip_reason(source_link, order, state, document, imported=imported)),
        plan=preview(source_link, order),
    )


class OrderNotFound(LookupError):
    """The shop has no order with that number or id."""


def find_shop_order(source_link: SourceLink, number: str) -> dict:
    """Read an order from the source link's shop by the number the customer sees (or the shop's id), for a
    preview: a read only. Raises OrderNotFound, or the connector's errors (the shop refused or is down)."""
    shop = connector_for(source_link.connection)
    try:
        order = shop.find_order(number)
    finally:
        shop.close()
    if order is None:
        raise OrderNotFound(number)
    return order


def can_preview(transfer: Transfer) -> bool:
    """Credit notes are not previewed: their plan needs the booked invoice from the accounting system."""
    return transfer.kind == "invoice" and transfer.event_id is not None


def preview_transfer(transfer: Transfer) -> OrderPreview:
    """The invoice the transfer's stored order payload becomes with today's settings."""
    if not can_preview(transfer):
        raise ValueError("Only an order's invoice can be previewed.")
    event = transfer.event
    return preview_order(transfer.source_link, json.loads(event.raw_body), imported=event.source == "manual")
