"""Invoices as Stripe makes them: lines from subscription items and pending invoice items, discounts, tax
rates, totals, the customer's credit balance; finalizing (number, customer snapshot) and paying (a
PaymentIntent and a Charge on the default payment method, an InvoicePayment, the events).

Amounts are integers in the currency's minor unit; fractions (percentages, prorations) are Decimal and
rounded half up to a whole minor unit, per line.
"""

from decimal import ROUND_HALF_UP, Decimal

from portal.sandbox.stripe.api import Call, StripeError, load, new_id, now, public
from portal.sandbox.stripe.customers import customer_of, tax_ids_of
from portal.sandbox.stripe.events import emit

HOUR = 3600


def whole(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def rate_percentage(rate: dict) -> Decimal:
    return Decimal(rate.get("_percentage") or str(rate["percentage"]))


def coupon_percentage(coupon: dict) -> Decimal | None:
    return (
        None
        if coupon["percent_off"] is None
        else Decimal(coupon.get("_percent_off") or str(coupon["percent_off"]))
    )


# --- lines --------------------------------------------------------------------------------------------


def line(
    invoice_id: str,
    *,
    amount: int,
    currency: str,
    description: str,
    price: dict | None,
    quantity: int,
    period: dict,
    tax_rates: list[dict],
    parent: dict,
    discountable: bool,
    subscription: str | None,
) -> dict:
    """A line_item before discounts and taxes (apply_totals fills those in)."""
    return {
        "id": new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": description,
        "discount_amounts": [],
        "discountable": discountable,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": period,
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]} if price else None,
            "type": "price_details",
            "unit_amount_decimal": price["unit_amount_decimal"] if price else str(amount),
        },
        "quantity": quantity,
        "subscription": subscription,
        "subtotal": amount,
        "taxes": [],
        "_tax_rates": [rate["id"] for rate in tax_rates],
    }


def item_line(invoice_id: str, item: dict, subscription: dict, product_name: str) -> dict:
    """The line a subscription item bills for its current period."""
    price = item["price"]
    interval = price["recurring"]["interval"]
    return line(
        invoice_id,
        amount=price["unit_amount"] * item["quantity"],
        currency=price["currency"],
        description=f"{item['quantity']} × {product_name} (at {_money(price)} / {interval})",
        price=price,
        quantity=item["quantity"],
        period={"start": item["current_period_start"], "end": item["current_period_end"]},
        tax_rates=item["tax_rates"] or subscription["default_tax_rates"],
        parent={
            "type": "subscription_item_details",
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": subscription["id"],
                "subscription_item": item["id"],
            },
            "invoice_item_details": None,
        },
        discountable=True,
        subscription=subscription["id"],
    )


def invoice_item_line(invoice_id: str, item: dict, default_rates: list[dict]) -> dict:
    parent_sub = (item.get("parent") or {}).get("subscription_details") or {}
    if parent_sub.get("subscription_item"):
        parent = {
            "type": "subscription_item_details",
            "subscription_item_details": {
                "invoice_item": item["id"],
                "proration": item["proration"],
                "proration_details": {"credited_items": None},
                "subscription": parent_sub["subscription"],
                "subscription_item": parent_sub["subscription_item"],
            },
            "invoice_item_details": None,
        }
    else:
        parent = {
            "type": "invoice_item_details",
            "invoice_item_details": {
                "invoice_item": item["id"],
                "proration": item["proration"],
                "proration_details": {"credited_items": None},
                "subscription": parent_sub.get("subscription"),
            },
            "subscription_item_details": None,
        }
    price = item["_price"]
    return line(
        invoice_id,
        amount=item["amount"],
        currency=item["currency"],
        description=item["description"],
        price=price,
        quantity=item["quantity"],
        period=item["period"],
        tax_rates=item["tax_rates"] or default_rates,
        parent=parent,
        discountable=item["discountable"],
        subscription=parent_sub.get("subscription"),
    )


def _money(price: dict) -> str:
    amount = Decimal(price["unit_amount"]) / 100
    return f"{amount:.2f} {price['currency'].upper()}"


# --- totals -------------------------------------------------------------------------------------------


def apply_totals(call: Call, invoice: dict) -> dict:
    """Discounts, then tax per line and rate, then the invoice's totals (Stripe's order of operations)."""
    lines = invoice["lines"]["data"]
    discounts = [call.store.get("discounts", discount_id) for discount_id in invoice["discounts"]]
    for item in lines:
        item["discount_amounts"], item["discounts"] = [], []
    for discount in discounts:
        _apply_discount(
            call, discount, [item for item in lines if item["discountable"] and item["amount"] > 0]
        )
    total_taxes: dict[tuple, dict] = {}
    exclusive_tax = inclusive_tax = inclusive_undiscounted = 0
    for item in lines:
        taxable = item["amount"] - sum(d["amount"] for d in item["discount_amounts"])
        item["taxes"] = []
        for rate_id in item["_tax_rates"]:
            rate = load(call, rate_id, "tax rate")
            share = rate_percentage(rate) / 100
            if rate["inclusive"]:
                tax = taxable - whole(Decimal(taxable) / (1 + share))
                inclusive_tax += tax
                inclusive_undiscounted += item["amount"] - whole(Decimal(item["amount"]) / (1 + share))
            else:
                tax = whole(Decimal(taxable) * share)
                exclusive_tax += tax
            behavior = "inclusive" if rate["inclusive"] else "exclusive"
            entry = {
                "amount": tax,
                "tax_behavior": behavior,
                "tax_rate_details": {"tax_rate": rate_id},
                "taxability_reason": "standard_rated",
                "taxable_amount": taxable - tax if rate["inclusive"] else taxable,
                "type": "tax_rate_details",
            }
            item["taxes"].append(entry)
            summed = total_taxes.setdefault((rate_id, behavior), {**entry, "amount": 0, "taxable_amount": 0})
            summed["amount"] += entry["amount"]
            summed["taxable_amount"] += entry["taxable_amount"]
    subtotal = sum(item["amount"] for item in lines)
    discount_total = {}
    for item in lines:
        for entry in item["discount_amounts"]:
            discount_total[entry["discount"]] = discount_total.get(entry["discount"], 0) + entry["amount"]
    total = subtotal - sum(discount_total.values()) + exclusive_tax
    invoice.update(
        subtotal=subtotal,
        subtotal_excluding_tax=subtotal - inclusive_undiscounted,
        total=total,
        total_excluding_tax=total - exclusive_tax - inclusive_tax,
        total_discount_amounts=[{"amount": amount, "discount": d} for d, amount in discount_total.items()],
        total_taxes=list(total_taxes.values()),
        amount_due=max(total, 0),
        amount_remaining=max(total, 0) - invoice["amount_paid"],
    )
    return invoice


def _apply_discount(call: Call, discount: dict, lines: list[dict]) -> None:
    coupon = call.store.get("coupons", discount["source"]["coupon"])
    if not lines or coupon is None:
        return
    remaining = [item["amount"] - sum(d["amount"] for d in item["discount_amounts"]) for item in lines]
    percent = coupon_percentage(coupon)
    if percent is not None:
        amounts = [whole(Decimal(left) * percent / 100) for left in remaining]
    else:  # amount_off: spread over the lines by their share, the last line takes what rounding left
        off = min(coupon["amount_off"], sum(remaining))
        base = sum(remaining) or 1
        amounts = [whole(Decimal(off) * left / base) for left in remaining[:-1]]
        amounts.append(off - sum(amounts))
    for item, amount in zip(lines, amounts, strict=True):
        item["discount_amounts"].append({"amount": amount, "discount": discount["id"]})
        item["discounts"].append(discount["id"])


# --- the invoice --------------------------------------------------------------------------------------


def new_invoice(
    call: Call,
    customer: dict,
    *,
    billing_reason: str,
    subscription: dict | None,
    created: int,
    collection_method="charge_automatically",
    days_until_due=None,
    auto_advance=True,
    default_tax_rates=(),
    discounts=(),
    description=None,
    metadata=None,
    currency=None,
) -> dict:
    """A draft invoice (no lines yet)."""
    invoice_id = new_id("in")
    due = created + days_until_due * 86400 if collection_method == "send_invoice" and days_until_due else None
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "DK",
        "account_name": "Bogbro Demo ApS",
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": auto_advance,
        "automatic_tax": {
            "enabled": False,
            "liability": None,
            "disabled_reason": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": created + HOUR if auto_advance else None,
        "billing_reason": billing_reason,
        "collection_method": collection_method,
        "created": created,
        "currency": currency or (subscription or {}).get("currency") or customer.get("currency") or "dkk",
        "custom_fields": None,
        "customer": customer["id"],
        "customer_address": customer["address"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": customer["phone"],
        "customer_shipping": None,
        "customer_tax_exempt": customer["tax_exempt"],
        "customer_tax_ids": [
            {"type": t["type"], "value": t["value"]} for t in tax_ids_of(call, customer["id"])
        ],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": list(default_tax_rates),
        "description": description,
        "discounts": list(discounts),
        "due_date": due,
        "effective_at": None,
        "ending_balance": None,
        "footer": customer["invoice_settings"].get("footer"),
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {"object": "list", "data": [], "has_more": False, "url": f"/v1/invoices/{invoice_id}/lines"},
        "livemode": False,
        "metadata": metadata or {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": subscription["metadata"],
                "subscription": subscription["id"],
            },
        }
        if subscription
        else None,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": created,
        "period_start": created,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": customer["balance"],
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": customer["test_clock"],
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


def take_pending_items(call: Call, invoice: dict, customer_id: str, subscription_id: str | None) -> None:
    """Pull the customer's pending invoice items in the invoice's currency (for a subscription invoice:
    that subscription's) in."""
    rates = [load(call, r, "tax rate") for r in invoice["default_tax_rates"]]
    for _, item in call.store.items("invoiceitems", customer=customer_id):
        if item["invoice"] is not None or item["currency"] != invoice["currency"]:
            continue
        item_subscription = ((item.get("parent") or {}).get("subscription_details") or {}).get("subscription")
        if item_subscription != subscription_id:
            continue
        item["invoice"] = invoice["id"]
        call.store.put("invoiceitems", item["id"], item)
        invoice["lines"]["data"].append(invoice_item_line(invoice["id"], item, rates))


def save(call: Call, invoice: dict) -> dict:
    apply_totals(call, invoice)
    call.store.put("invoices", invoice["id"], invoice)
    return invoice


def render(call: Call, invoice: dict, payments=False) -> dict:
    """The API shape: the sandbox's keys dropped, lines without theirs; `payments` (an includable field)
    only when asked for."""
    document = public(invoice)
    document["lines"] = {**invoice["lines"], "data": [public(item) for item in invoice["lines"]["data"]]}
    if payments:
        payments = [public(p) for _, p in call.store.items("invoice_payments", invoice=invoice["id"])]
        document["payments"] = {
            "object": "list",
            "data": payments,
            "has_more": False,
            "url": f"/v1/invoice_payments?invoice={invoice['id']}",
        }
    return document


def finalize(call: Call, invoice: dict, at: int) -> dict:
    """draft → open: a number, the customer's details as they are now, the credit balance applied; a
    zero amount due is paid at once (a 100 % coupon)."""
    if invoice["status"] != "draft":
        raise StripeError(
            400,
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
            code="invoice_not_editable",
        )
    customer = customer_of(call, invoice["customer"], "customer")
    apply_totals(call, invoice)
    balance = customer["balance"]
    applied = min(-balance, invoice["total"]) if balance < 0 and invoice["total"] > 0 else 0
    if invoice["total"] < 0:
        applied = invoice["total"]  # a credit: goes onto the customer's balance
    customer["balance"] = balance + applied
    customer["currency"] = customer["currency"] or invoice["currency"]  # set by its first invoice
    customer["next_invoice_sequence"] += 1
    call.store.put("customers", customer["id"], customer)
    number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence'] - 1:04d}"
    invoice.update(
        status="open",
        number=number,
        starting_balance=balance,
        ending_balance=customer["balance"],
        amount_due=max(invoice["total"] - applied, 0),
        effective_at=at,
        automatically_finalizes_at=None,
        customer_address=customer["address"],
        customer_email=customer["email"],
        customer_name=customer["name"],
        customer_phone=customer["phone"],
        customer_tax_exempt=customer["tax_exempt"],
        customer_tax_ids=[{"type": t["type"], "value": t["value"]} for t in tax_ids_of(call, customer["id"])],
        hosted_invoice_url=f"https://invoice.stripe.com/i/{call.account}/test_{invoice['id']}",
        invoice_pdf=f"https://pay.stripe.com/invoice/{call.account}/test_{invoice['id']}/pdf",
        webhooks_delivered_at=at,
    )
    invoice["amount_remaining"] = invoice["amount_due"]
    invoice["status_transitions"] = {**invoice["status_transitions"], "finalized_at": at}
    call.store.put("invoices", invoice["id"], invoice)
    emit(call, "invoice.finalized", render(call, invoice))
    if invoice["amount_due"] == 0:
        mark_paid(call, invoice, at, None)
    return invoice


def payment_method_for(call: Call, invoice: dict) -> dict | None:
    chosen = invoice["default_payment_method"]
    subscription_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    if not chosen and subscription_id:
        chosen = call.store.get("subscriptions", subscription_id)["default_payment_method"]
    if not chosen:
        chosen = customer_of(call, invoice["customer"], "customer")["invoice_settings"][
            "default_payment_method"
        ]
    return call.store.get("payment_methods", chosen) if chosen else None


def charge(call: Call, invoice: dict, at: int, method: dict | None) -> bool:
    """Charge the invoice's amount due on `method`: True when paid. A decline leaves the invoice open with
    the attempt counted and fires the failure events."""
    invoice["attempted"], invoice["attempt_count"] = True, invoice["attempt_count"] + 1
    if method is None:
        call.store.put("invoices", invoice["id"], invoice)
        emit(call, "invoice.payment_failed", render(call, invoice))
        return False
    declined = method.get("_declines") == "charge"
    intent_id, charge_id = new_id("pi"), new_id("ch")
    card = method["card"]
    error = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "generic_decline",
        "message": "Your card was declined.",
        "charge": charge_id,
        "payment_method": public(method),
    }
    charge_doc = {
        "id": charge_id,
        "object": "charge",
        "amount": invoice["amount_due"],
        "amount_captured": 0 if declined else invoice["amount_due"],
        "amount_refunded": 0,
        "balance_transaction": None if declined else new_id("txn"),
        "billing_details": method["billing_details"],
        "captured": not declined,
        "created": at,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "description": "Subscription update"
        if invoice["billing_reason"] == "subscription_update"
        else "Subscription creation"
        if invoice["billing_reason"] == "subscription_create"
        else None,
        "disputed": False,
        "failure_code": "card_declined" if declined else None,
        "failure_message": "Your card was declined." if declined else None,
        "livemode": False,
        "metadata": {},
        "outcome": {
            "network_status": "declined_by_network" if declined else "approved_by_network",
            "reason": "generic_decline" if declined else None,
            "risk_level": "normal",
            "seller_message": "The bank did not return any further details with this decline."
            if declined
            else "Payment complete.",
            "type": "issuer_declined" if declined else "authorized",
        },
        "paid": not declined,
        "payment_intent": intent_id,
        "payment_method": method["id"],
        "payment_method_details": {
            "card": {
                "brand": card["brand"],
                "country": card["country"],
                "exp_month": card["exp_month"],
                "exp_year": card["exp_year"],
                "funding": card["funding"],
                "last4": card["last4"],
                "network": card["brand"],
            },
            "type": "card",
        },
        "receipt_url": None,
        "refunded": False,
        "status": "failed" if declined else "succeeded",
    }
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": invoice["amount_due"],
        "amount_received": 0 if declined else invoice["amount_due"],
        "canceled_at": None,
        "capture_method": "automatic",
        "confirmation_method": "automatic",
        "created": at,
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "description": charge_doc["description"],
        "last_payment_error": error if declined else None,
        "latest_charge": charge_id,
        "livemode": False,
        "metadata": {},
        "payment_method": None if declined else method["id"],
        "payment_method_types": ["card"],
        "status": "requires_payment_method" if declined else "succeeded",
    }
    call.store.put("charges", charge_id, charge_doc)
    call.store.put("payment_intents", intent_id, intent)
    if declined:
        call.store.put("invoices", invoice["id"], invoice)
        emit(call, "charge.failed", charge_doc)
        emit(call, "payment_intent.payment_failed", intent)
        emit(call, "invoice.payment_failed", render(call, invoice))
        return False
    emit(call, "charge.succeeded", charge_doc)
    emit(call, "payment_intent.succeeded", intent)
    mark_paid(call, invoice, at, intent)
    return True


def mark_paid(call: Call, invoice: dict, at: int, intent: dict | None, out_of_band=False) -> None:
    paid = invoice["amount_due"] if intent is not None or out_of_band else 0
    invoice.update(
        status="paid",
        amount_paid=paid,
        amount_remaining=0,
        attempted=True,
        next_payment_attempt=None,
        auto_advance=False,
    )
    invoice["status_transitions"] = {**invoice["status_transitions"], "paid_at": at}
    if intent is not None:
        payment = {
            "id": new_id("inpay"),
            "object": "invoice_payment",
            "amount_paid": paid,
            "amount_requested": paid,
            "created": at,
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
            "status": "paid",
            "status_transitions": {"canceled_at": None, "paid_at": at},
        }
        call.store.put("invoice_payments", payment["id"], payment)
        emit(call, "invoice_payment.paid", payment)
    call.store.put("invoices", invoice["id"], invoice)
    rendered = render(call, invoice)
    emit(call, "invoice.paid", rendered)
    emit(call, "invoice.payment_succeeded", rendered)


def collect(call: Call, invoice: dict, at: int) -> bool:
    """After finalizing: charge an open charge_automatically invoice; True when it ends paid."""
    if invoice["status"] == "paid":
        return True
    if invoice["collection_method"] != "charge_automatically" or invoice["status"] != "open":
        return False
    return charge(call, invoice, at, payment_method_for(call, invoice))


def clock_now(call: Call, customer_id: str) -> int:
    return now(call, customer_of(call, customer_id, "customer")["test_clock"])
