"""An invoice's way from draft to paid: finalizing (a number, the customer as they are now, their credit
balance) and paying — a PaymentIntent and a Charge on the default payment method, an InvoicePayment, and
the events Stripe sends for each outcome."""

from portal.sandbox.stripe import billing
from portal.sandbox.stripe.api import Call, new_id, now, public
from portal.sandbox.stripe.customers import customer_of, tax_ids_of
from portal.sandbox.stripe.events import emit
from portal.sandbox.stripe.params import StripeError


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
    billing.apply_totals(call, invoice)
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
    emit(call, "invoice.finalized", billing.render(call, invoice))
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
        emit(call, "invoice.payment_failed", billing.render(call, invoice))
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
        emit(call, "invoice.payment_failed", billing.render(call, invoice))
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
    rendered = billing.render(call, invoice)
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


def close(call: Call, invoice: dict, at: int, status: str) -> None:
    """An open invoice voided ("void") or written off ("uncollectible"): nothing more is collected."""
    invoice.update(status=status, auto_advance=False, next_payment_attempt=None)
    if status == "void":
        invoice["amount_remaining"] = 0
    stamp = "voided_at" if status == "void" else "marked_uncollectible_at"
    invoice["status_transitions"] = {**invoice["status_transitions"], stamp: at}
    call.store.put("invoices", invoice["id"], invoice)
    emit(
        call,
        "invoice.voided" if status == "void" else "invoice.marked_uncollectible",
        billing.render(call, invoice),
    )
