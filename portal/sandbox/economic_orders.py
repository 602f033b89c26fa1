"""The e-conomic sandbox's orders (`/orders`, e-conomic's "experimental" orders endpoint), registered on the
same blueprint and state as portal.sandbox.economic.

Orders have the draft invoice's document shape and are validated and totalled by the same code. They live
in three collections, as at e-conomic: drafts, sent (registered as sent with POST /orders/sent) and archived.
An open order (draft or sent) reserves stock: products in inventory show it as `orderedByCustomers` and
less `available`. `GET …/templates/upgrade-instructions/draftInvoice` answers `{"draftInvoice": {…}}`, a
document to POST to /invoices/drafts. What the sandbox guesses is listed in docs/connectors/economic.md
("Orders").
"""

from collections import defaultdict
from decimal import Decimal

from flask import Response, g

from portal.extensions import db
from portal.sandbox.economic import (
    DRAFT_FILTERS,
    E_INVALID,
    Problems,
    _now,
    _one,
    _validate_invoice,
    bad_request,
    bp,
    check_ref,
    collection,
    created,
    json_response,
    link,
    money,
    not_found,
    public_lines,
    reference,
    request_json,
    today,
)

# Stored collections per state (they share one number series, "order").
DRAFTS, SENT, ARCHIVED = "order-drafts", "order-sent", "order-archived"
UPGRADES = "order-upgrades"  # sent orders whose upgrade instructions were fetched (see archive_upgraded)
OPEN = (DRAFTS, SENT)
ORDER_FILTERS = (DRAFT_FILTERS - {"draftInvoiceNumber", "soap.currentInvoiceHandle.id"}) | {
    "orderNumber",
    "soap.orderHandle.id",
    "references.customerContact.customer.customerNumber",
}
ARCHIVED_FILTERS = ORDER_FILTERS - {"lastUpdated"}
PATHS = {DRAFTS: "orders/drafts", SENT: "orders/sent", ARCHIVED: "orders/archived"}


def _order_out(document: dict, state: str) -> dict:
    out = {k: v for k, v in document.items() if k != "lines"}
    n = document["orderNumber"]
    path = f"{g.eco_base}/{PATHS[state]}/{n}"
    out["soap"] = {"orderHandle": {"id": n}}
    if state != ARCHIVED:
        out["templates"] = {
            "upgradeInstructions": f"{path}/templates/upgrade-instructions/draftInvoice",
            "self": f"{path}/templates",
        }
    else:
        out.pop("lastUpdated", None)
    out["pdf"] = {"download": f"{path}/pdf"}
    out["lines"] = public_lines(document)
    out["self"] = path
    return out


def reserved(product_number: str) -> Decimal:
    """The quantity of a product on open orders (e-conomic's `inventory.orderedByCustomers`). The open
    orders are summed once per request: a product list asks for every product."""
    if "eco_reserved" not in g:
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for name in OPEN:
            for order in g.eco.all(name):
                for line in order["lines"]:
                    number = (line.get("product") or {}).get("productNumber")
                    if number:
                        totals[number] += Decimal(str(line.get("quantity") or 0))
        g.eco_reserved = totals
    return money(g.eco_reserved.get(product_number, Decimal("0")))


def _list(state: str, filters: set[str]):
    orders = [_order_out(d, state) for d in g.eco.all(state)]
    return collection(orders, filters, "orderNumber")


def _get(state: str, n: int):
    return _one(state, n, lambda d: _order_out(d, state))


def _delete(state: str, n: int):
    # Not idempotent at e-conomic (documented): a second DELETE answers 404.
    if not g.eco.delete(state, n):
        raise not_found()
    db.session.commit()
    return Response(status=204)


def _upgrade_instructions(state: str, n: int):
    """The draft invoice the order becomes: its document with the invoice's date (today, a guess)."""
    order = g.eco.get(state, n)
    if order is None:
        raise not_found()
    invoice = {
        k: v
        for k, v in order.items()
        if k not in ("orderNumber", "lastUpdated", "dueDate", "netAmountInBaseCurrency")
    }
    invoice["date"] = today()
    invoice["lines"] = public_lines(order)
    if state == SENT:
        g.eco.put(UPGRADES, n, {"orderNumber": n})
        db.session.commit()
    path = f"{g.eco_base}/{PATHS[state]}/{n}/templates/upgrade-instructions/draftInvoice"
    return json_response(link({"draftInvoice": invoice, "self": path}, g.eco_base))


def _templates(state: str, n: int):
    if g.eco.get(state, n) is None:
        raise not_found()
    path = f"{g.eco_base}/{PATHS[state]}/{n}/templates"
    return json_response({"upgradeInstructions": f"{path}/upgrade-instructions/draftInvoice", "self": path})


@bp.get("/orders")
def orders_root():
    base = g.eco_base
    return json_response(
        {
            "drafts": f"{base}/orders/drafts",
            "sent": f"{base}/orders/sent",
            "archived": f"{base}/orders/archived",
            "self": f"{base}/orders",
        }
    )


@bp.get("/orders/drafts")
def list_order_drafts():
    return _list(DRAFTS, ORDER_FILTERS)


@bp.post("/orders/drafts")
def create_order_draft():
    """A new draft order; or, given an order registered as sent (its orderNumber), cancel its sent status
    (documented: POST the full order document to /orders/drafts)."""
    body = request_json()
    number = body.get("orderNumber") if isinstance(body, dict) else None
    if number is not None:
        if g.eco.get(SENT, number) is None:
            raise bad_request(
                "The order is not registered as sent.", "POST an order without orderNumber to create one."
            )
        g.eco.delete(SENT, number)
    document = _validate_invoice(body)
    number = number if number is not None else g.eco.next("order", 1)
    document = {"orderNumber": number, **document, "lastUpdated": _now()}
    g.eco.put(DRAFTS, number, document)
    db.session.commit()
    return created(_order_out(document, DRAFTS), f"orders/drafts/{number}")


@bp.get("/orders/drafts/<int:n>")
def get_order_draft(n):
    return _get(DRAFTS, n)


@bp.put("/orders/drafts/<int:n>")
def replace_order_draft(n):
    if g.eco.get(DRAFTS, n) is None:
        raise not_found()
    document = {"orderNumber": n, **_validate_invoice(request_json()), "lastUpdated": _now()}
    g.eco.put(DRAFTS, n, document)
    db.session.commit()
    return json_response(link(_order_out(document, DRAFTS), g.eco_base))


@bp.delete("/orders/drafts/<int:n>")
def delete_order_draft(n):
    return _delete(DRAFTS, n)


@bp.get("/orders/drafts/<int:n>/templates")
def order_draft_templates(n):
    return _templates(DRAFTS, n)


@bp.get("/orders/drafts/<int:n>/templates/upgrade-instructions/draftInvoice")
def order_draft_upgrade(n):
    return _upgrade_instructions(DRAFTS, n)


@bp.get("/orders/sent")
def list_orders_sent():
    return _list(SENT, ORDER_FILTERS)


@bp.post("/orders/sent")
def register_order_sent():
    """Register a draft order as sent: the body is the order document (documented without a schema)."""
    body = request_json()
    problems = Problems()
    number = reference(body, "orderNumber") if isinstance(body, dict) else None
    if number is not None and not isinstance(number, int):
        problems.add(("orderNumber",), E_INVALID, "orderNumber must be a number.", number)
    else:
        number = check_ref(
            problems, ("orderNumber",), body or {}, "orderNumber", DRAFTS, hint_path="orders/drafts"
        )
    problems.raise_if_any()
    document = {**g.eco.get(DRAFTS, number), "lastUpdated": _now()}
    g.eco.delete(DRAFTS, number)
    g.eco.put(SENT, number, document)
    db.session.commit()
    return created(_order_out(document, SENT), f"orders/sent/{number}")


@bp.get("/orders/sent/<int:n>")
def get_order_sent(n):
    return _get(SENT, n)


@bp.delete("/orders/sent/<int:n>")
def delete_order_sent(n):
    return _delete(SENT, n)


@bp.get("/orders/sent/<int:n>/templates/upgrade-instructions/draftInvoice")
def order_sent_upgrade(n):
    return _upgrade_instructions(SENT, n)


@bp.get("/orders/archived")
def list_orders_archived():
    return _list(ARCHIVED, ARCHIVED_FILTERS)


@bp.get("/orders/archived/<int:n>")
def get_order_archived(n):
    return _get(ARCHIVED, n)


def archive_upgraded(invoice: dict) -> None:
    """Called when a draft invoice is created. e-conomic documents that a sent order is archived when it
    is upgraded to a draft invoice; the sandbox links the two by guess: a sent order whose upgrade
    instructions were fetched and whose customer and references.other the new draft carries. Draft
    orders stay where they are (what e-conomic does with them is undocumented)."""
    wanted = (invoice.get("references") or {}).get("other")
    if not wanted:
        return
    for order in g.eco.all(SENT):
        number = order["orderNumber"]
        if (
            g.eco.get(UPGRADES, number) is not None
            and (order.get("references") or {}).get("other") == wanted
            and order["customer"]["customerNumber"] == invoice["customer"]["customerNumber"]
        ):
            g.eco.delete(SENT, number)
            g.eco.delete(UPGRADES, number)
            g.eco.put(ARCHIVED, number, {k: v for k, v in order.items() if k != "lastUpdated"})
