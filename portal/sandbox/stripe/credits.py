"""Refunds (/v1/refunds) and credit notes (/v1/credit_notes): money back on a charge, and the document that
reduces a finalized invoice — before payment (pre_payment: less to pay) or after (post_payment: refunded,
credited to the customer's balance, or settled outside Stripe)."""

from decimal import Decimal

from portal.sandbox.stripe import billing, payments
from portal.sandbox.stripe.api import Call, expand, load, new_id, page, public, route
from portal.sandbox.stripe.customers import customer_of
from portal.sandbox.stripe.events import emit
from portal.sandbox.stripe.params import StripeError, choice, integer, invalid, metadata, required

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
CREDIT_REASONS = ("duplicate", "fraudulent", "order_change", "product_unsatisfactory")


def refund(call: Call, charge: dict, amount: int | None, reason: str | None, meta: dict, at: int) -> dict:
    refundable = charge["amount_captured"] - charge["amount_refunded"]
    if charge["status"] != "succeeded" or refundable <= 0:
        raise StripeError(
            400, f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = refundable if amount is None else amount
    if amount <= 0 or amount > refundable:
        raise StripeError(
            400,
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({refundable})",
            code="amount_too_large",
            param="amount",
        )
    document = {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn"),
        "charge": charge["id"],
        "created": at,
        "currency": charge["currency"],
        "customer": charge["customer"],
        "destination_details": {
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": meta,
        "payment_intent": charge["payment_intent"],
        "payment_method": charge["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
    call.store.put("refunds", document["id"], document)
    call.store.put("charges", charge["id"], charge)
    emit(call, "refund.created", document)
    emit(call, "charge.refunded", charge)
    return document


@route("refunds", methods=("POST",), allowed=("charge", "payment_intent", "amount", "reason", "metadata"))
def create_refund(call: Call):
    params = call.params
    if params.get("charge"):
        charge = load(call, params["charge"], "charge", "charge")
    elif params.get("payment_intent"):
        intent = load(call, params["payment_intent"], "payment_intent", "payment_intent")
        charge = load(call, intent["latest_charge"], "charge", "payment_intent")
    else:
        raise StripeError(
            400,
            "One of the following params should be provided for this request: payment_intent or charge.",
            saved=False,
        )
    at = payments.clock_now(call, charge["customer"])
    document = refund(
        call,
        charge,
        integer(params, "amount", minimum=1),
        choice(params, "reason", REASONS),
        metadata(params),
        at,
    )
    return expand(call, public(document))


@route("refunds/<refund_id>", methods=("GET",))
def get_refund(call: Call, refund_id):
    return expand(call, public(load(call, refund_id, "refund")))


@route("refunds", allowed=("charge", "payment_intent", "limit", "starting_after", "ending_before"))
def list_refunds(call: Call):
    refunds = call.store.all("refunds")
    for name in ("charge", "payment_intent"):
        if call.params.get(name):
            refunds = [r for r in refunds if r[name] == call.params[name]]
    return page(call, [public(r) for r in refunds], "/v1/refunds")


# --- credit notes ---------------------------------------------------------------------------------------


def _credit_line(call: Call, invoice: dict, entry: dict, index: int) -> dict:
    """One credit note line: part of an invoice line (by quantity or amount) or a custom line, with the
    discount and taxes that part carried."""
    param = f"lines[{index}]"
    kind = choice(entry, "type", ("invoice_line_item", "custom_line_item"), required=True)
    if kind == "invoice_line_item":
        line_id = required(entry, "invoice_line_item")
        source = next((item for item in invoice["lines"]["data"] if item["id"] == line_id), None)
        if source is None:
            raise invalid(f"{param}[invoice_line_item]", f"No such invoice line item: '{line_id}'")
        quantity = integer(entry, "quantity", minimum=1)
        amount = integer(entry, "amount", minimum=1)
        if quantity is not None:
            if quantity > source["quantity"]:
                raise invalid(f"{param}[quantity]", "The quantity is more than the invoice line's quantity.")
            share = Decimal(quantity) / Decimal(source["quantity"])
            amount = billing.whole(Decimal(source["amount"]) * share)
        elif amount is not None:
            share = Decimal(amount) / Decimal(source["amount"]) if source["amount"] else Decimal(0)
        else:
            raise StripeError(
                400,
                f"Missing required param: {param}[quantity] or {param}[amount].",
                code="parameter_missing",
                param=f"{param}[quantity]",
                saved=False,
            )
        discount = billing.whole(sum(Decimal(d["amount"]) for d in source["discount_amounts"]) * share)
        rate_ids, description, unit = source["_tax_rates"], source["description"], None
        discount_amounts = [
            {"amount": billing.whole(Decimal(d["amount"]) * share), "discount": d["discount"]}
            for d in source["discount_amounts"]
        ]
    else:
        quantity = integer(entry, "quantity", minimum=1) or 1
        unit = integer(entry, "unit_amount", required=True, minimum=0)
        amount, discount, line_id, discount_amounts = unit * quantity, 0, None, []
        rate_ids = [
            load(call, r, "tax rate", f"{param}[tax_rates]")["id"] for r in entry.get("tax_rates") or []
        ]
        description = required(entry, "description")
    taxes, exclusive = [], 0
    for rate_id in rate_ids:
        rate = load(call, rate_id, "tax rate")
        taxable, share_rate = amount - discount, billing.rate_percentage(rate) / 100
        if rate["inclusive"]:
            tax = taxable - billing.whole(Decimal(taxable) / (1 + share_rate))
            taxes.append(
                {
                    "amount": tax,
                    "tax_behavior": "inclusive",
                    "tax_rate_details": {"tax_rate": rate_id},
                    "taxability_reason": "standard_rated",
                    "taxable_amount": taxable - tax,
                    "type": "tax_rate_details",
                }
            )
        else:
            tax = billing.whole(Decimal(taxable) * share_rate)
            exclusive += tax
            taxes.append(
                {
                    "amount": tax,
                    "tax_behavior": "exclusive",
                    "tax_rate_details": {"tax_rate": rate_id},
                    "taxability_reason": "standard_rated",
                    "taxable_amount": taxable,
                    "type": "tax_rate_details",
                }
            )
    return {
        "id": new_id("cnli"),
        "object": "credit_note_line_item",
        "amount": amount,
        "description": description,
        "discount_amount": discount,
        "discount_amounts": discount_amounts,
        "invoice_line_item": line_id,
        "livemode": False,
        "metadata": metadata(entry),
        "pretax_credit_amounts": [],
        "quantity": quantity,
        "tax_rates": [public(load(call, r, "tax rate")) for r in rate_ids],
        "taxes": taxes,
        "type": kind,
        "unit_amount": unit,
        "unit_amount_decimal": None if unit is None else str(unit),
        "_exclusive_tax": exclusive,
    }


CREDIT_PARAMS = (
    "invoice",
    "lines",
    "credit_amount",
    "refund_amount",
    "refunds",
    "out_of_band_amount",
    "reason",
    "memo",
    "metadata",
    "effective_at",
    "email_type",
)


@route("credit_notes", methods=("POST",), allowed=CREDIT_PARAMS)
def create_credit_note(call: Call):
    params = call.params
    invoice = load(call, required(params, "invoice"), "invoice", "invoice")
    if invoice["status"] not in ("open", "paid"):
        raise invalid(
            "invoice",
            f"Credit notes can only be issued on open or paid invoices; {invoice['id']} is "
            f"{invoice['status']}.",
        )
    given = params.get("lines")
    if not isinstance(given, list) or not given:
        raise StripeError(
            400,
            "The sandbox issues credit notes by lines: give lines[] (invoice_line_item or custom_line_item).",
            param="lines",
            saved=False,
        )
    lines = [_credit_line(call, invoice, entry or {}, index) for index, entry in enumerate(given)]
    subtotal = sum(line["amount"] for line in lines)
    discount = sum(line["discount_amount"] for line in lines)
    inclusive = sum(t["amount"] for line in lines for t in line["taxes"] if t["tax_behavior"] == "inclusive")
    exclusive = sum(line["_exclusive_tax"] for line in lines)
    total = subtotal - discount + exclusive
    post_payment = invoice["status"] == "paid"
    at = payments.clock_now(call, invoice["customer"])
    refund_amount = integer(params, "refund_amount", minimum=0) or 0
    out_of_band = integer(params, "out_of_band_amount", minimum=0) or 0
    credit_amount = integer(params, "credit_amount", minimum=0)
    linked = []
    paid_by = {
        p["payment"].get("payment_intent")
        for _, p in call.store.items("invoice_payments", invoice=invoice["id"])
    }
    for index, entry in enumerate(params.get("refunds") or []):
        existing = load(call, required(entry or {}, "refund"), "refund", f"refunds[{index}][refund]")
        # a refund of another invoice's payment; the wording is the sandbox's (no source shows Stripe's)
        if existing["payment_intent"] not in paid_by:
            raise invalid(
                f"refunds[{index}][refund]", f"The refund {existing['id']} is not of this invoice's payment."
            )
        amount = integer(entry, "amount_refunded", minimum=1) or existing["amount"]
        if amount > existing["amount"]:
            raise invalid(
                f"refunds[{index}][amount_refunded]", "amount_refunded is more than the refund's amount."
            )
        linked.append(
            {
                "amount_refunded": amount,
                "refund": existing["id"],
                "payment_record_refund": None,
                "type": "refund",
            }
        )
    if credit_amount is None:
        credit_amount = (
            total - refund_amount - out_of_band - sum(r["amount_refunded"] for r in linked)
            if post_payment
            else 0
        )
    settled = refund_amount + out_of_band + credit_amount + sum(r["amount_refunded"] for r in linked)
    if post_payment:
        creditable = invoice["amount_paid"] - invoice["post_payment_credit_notes_amount"]
        if settled != total:
            raise StripeError(
                400,
                f"The sum of credit amount, refund amount and out of band amount ({settled}) "
                f"must equal the credit note amount ({total}).",
                saved=False,
            )
    else:
        creditable = invoice["amount_remaining"]
        if settled:
            raise StripeError(
                400,
                "refund_amount, credit_amount and out_of_band_amount apply to paid invoices only.",
                saved=False,
            )
    if total > creditable:
        raise StripeError(
            400,
            f"The credit note amount ({total}) exceeds the amount that can still be credited "
            f"on invoice {invoice['id']} ({creditable}).",
            param="lines",
            saved=False,
        )
    if refund_amount:
        payment = next((p for _, p in call.store.items("invoice_payments", invoice=invoice["id"])), None)
        if payment is None:
            raise invalid("refund_amount", "This invoice was not paid with a charge that can be refunded.")
        intent = load(call, payment["payment"]["payment_intent"])
        made = refund(call, load(call, intent["latest_charge"]), refund_amount, None, {}, at)
        linked.append(
            {
                "amount_refunded": refund_amount,
                "refund": made["id"],
                "payment_record_refund": None,
                "type": "refund",
            }
        )
    count = sum(1 for _, _ in call.store.items("credit_notes", invoice=invoice["id"])) + 1
    note_id = new_id("cn")
    note = {
        "id": note_id,
        "object": "credit_note",
        "amount": total,
        "amount_shipping": 0,
        "created": at,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "customer_balance_transaction": new_id("cbtxn") if credit_amount else None,
        "discount_amount": discount,
        "discount_amounts": [a for line in lines for a in line["discount_amounts"]],
        "effective_at": at,
        "invoice": invoice["id"],
        "lines": {
            "object": "list",
            "data": [public(line) for line in lines],
            "has_more": False,
            "url": f"/v1/credit_notes/{note_id}/lines",
        },
        "livemode": False,
        "memo": params.get("memo") or None,
        "metadata": metadata(params),
        "number": f"{invoice['number']}-CN-{count:02d}",
        "out_of_band_amount": out_of_band or None,
        "pdf": f"https://pay.stripe.com/credit_notes/{call.account}/test_{note_id}/pdf",
        "post_payment_amount": total if post_payment else 0,
        "pre_payment_amount": 0 if post_payment else total,
        "pretax_credit_amounts": [],
        "reason": choice(params, "reason", CREDIT_REASONS),
        "refunds": linked,
        "shipping_cost": None,
        "status": "issued",
        "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal - inclusive,
        "total": total,
        "total_excluding_tax": total - exclusive - inclusive,
        "total_taxes": [t for line in lines for t in line["taxes"]],
        "type": "post_payment" if post_payment else "pre_payment",
        "voided_at": None,
        "_credit_amount": credit_amount,
    }
    call.store.put("credit_notes", note_id, note)
    _apply(call, invoice, note, 1, at)
    emit(call, "credit_note.created", note)
    return expand(call, public(note))


def _apply(call: Call, invoice: dict, note: dict, sign: int, at: int) -> None:
    """The note's effect on its invoice and the customer's balance (sign -1 undoes it on void)."""
    if note["type"] == "post_payment":
        invoice["post_payment_credit_notes_amount"] += sign * note["total"]
        if note["_credit_amount"]:
            customer = customer_of(call, invoice["customer"], "customer")
            customer["balance"] -= sign * note["_credit_amount"]
            call.store.put("customers", customer["id"], customer)
    else:
        invoice["pre_payment_credit_notes_amount"] += sign * note["total"]
        invoice["amount_remaining"] -= sign * note["total"]
    call.store.put("invoices", invoice["id"], invoice)
    if invoice["status"] == "open" and invoice["amount_remaining"] == 0:
        payments.mark_paid(call, invoice, at, None)  # fully credited before payment: nothing left to pay


@route("credit_notes/<note_id>", methods=("GET",))
def get_credit_note(call: Call, note_id):
    return expand(call, public(load(call, note_id, "credit note")))


@route("credit_notes", allowed=("invoice", "customer", "limit", "starting_after", "ending_before"))
def list_credit_notes(call: Call):
    notes = call.store.all("credit_notes")
    for name in ("invoice", "customer"):
        if call.params.get(name):
            notes = [n for n in notes if n[name] == call.params[name]]
    return page(call, [public(n) for n in notes], "/v1/credit_notes")


@route("credit_notes/<note_id>/void", methods=("POST",))
def void_credit_note(call: Call, note_id):
    note = load(call, note_id, "credit note")
    if note["status"] == "void":
        raise StripeError(400, "This credit note is already voided.")
    if note["refunds"]:
        raise StripeError(400, "A credit note with a refund cannot be voided.")
    invoice = load(call, note["invoice"], "invoice")
    at = payments.clock_now(call, invoice["customer"])
    note.update(status="void", voided_at=at)
    call.store.put("credit_notes", note_id, note)
    _apply(call, invoice, note, -1, at)
    emit(call, "credit_note.voided", note)
    return expand(call, public(note))


@route("credit_notes/<note_id>/lines", allowed=("limit", "starting_after", "ending_before"))
def list_credit_note_lines(call: Call, note_id):
    note = load(call, note_id, "credit note")
    return {**note["lines"], "url": f"/v1/credit_notes/{note_id}/lines"}
