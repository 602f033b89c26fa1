"""Invoices as Stripe makes them: lines from subscription items and pending invoice items, discounts, tax
rates, totals (payments.py finalizes and pays them).

Amounts are integers in the currency's minor unit; fractions (percentages, prorations) are Decimal and
rounded half up to a whole minor unit, per line.
"""

from decimal import ROUND_HALF_UP, Decimal

from portal.sandbox.stripe.api import Call, load, new_id, public
from portal.sandbox.stripe.customers import tax_ids_of

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
