"""Prorations (docs.stripe.com/billing/subscriptions/prorations): a change of an item's quantity or price
mid-period makes two invoice items at the change's time — a credit for the unused time at the old terms and
a debit for the rest of the period at the new — that wait for the subscription's next invoice."""

from datetime import UTC, datetime
from decimal import Decimal

from portal.sandbox.stripe import billing
from portal.sandbox.stripe.api import Call, load, new_id, public
from portal.sandbox.stripe.params import StripeError, integer, invalid


def product_name(call: Call, price: dict) -> str:
    return load(call, price["product"], "product")["name"]


def change_items(call: Call, subscription: dict, given, at: int, behavior: str) -> None:
    """`items[][id]` with a new `quantity` and/or `price`, each prorated unless `behavior` is "none"."""
    if not isinstance(given, list):
        raise invalid("items", "Invalid array")
    by_id = {item["id"]: item for item in subscription["items"]["data"]}
    for index, entry in enumerate(given):
        entry = entry or {}
        item = by_id.get(entry.get("id"))
        if item is None:
            raise StripeError(
                400,
                "The sandbox changes existing items only: give items[][id].",
                param=f"items[{index}][id]",
                saved=False,
            )
        change_item(call, subscription, item, entry, at, behavior, f"items[{index}]")


def change_item(call: Call, subscription: dict, item: dict, entry: dict, at: int, behavior: str, where: str):
    old_price, old_quantity = item["price"], item["quantity"]
    param = f"{where}[price]" if where else "price"
    price = public(load(call, entry["price"], "price", param)) if entry.get("price") else old_price
    if (price["currency"], price["recurring"] and price["recurring"]["interval"]) != (
        old_price["currency"],
        old_price["recurring"]["interval"],
    ):
        raise invalid(
            param,
            "The sandbox changes to a price of the same currency and interval only (a new interval "
            "would start a new period).",
        )
    quantity = integer(entry, "quantity", minimum=0)
    quantity = old_quantity if quantity is None else quantity
    if (price["id"], quantity) == (old_price["id"], old_quantity):
        return
    if behavior != "none":
        _prorate(call, subscription, item, at, old_price, old_quantity, price, quantity)
    item.update(price=price, quantity=quantity)


def _prorate(call, subscription, item, at, old_price, old_quantity, price, quantity) -> None:
    start, end = item["current_period_start"], item["current_period_end"]
    share = Decimal(max(end - at, 0)) / Decimal(end - start)
    day = datetime.fromtimestamp(at, UTC).strftime("%d %b %Y")
    for sign, used_price, used_quantity, words in (
        (-1, old_price, old_quantity, "Unused time on"),
        (1, price, quantity, "Remaining time on"),
    ):
        if used_quantity == 0:
            continue
        amount = sign * billing.whole(Decimal(used_price["unit_amount"] * used_quantity) * share)
        name = product_name(call, used_price)
        item_id = new_id("ii")
        call.store.put(
            "invoiceitems",
            item_id,
            {
                "id": item_id,
                "object": "invoiceitem",
                "amount": amount,
                "currency": used_price["currency"],
                "customer": subscription["customer"],
                "date": at,
                "description": f"{words} {used_quantity} × {name} after {day}",
                "discountable": False,
                "discounts": [],
                "invoice": None,
                "livemode": False,
                "metadata": {},
                "net_amount": amount,
                "parent": {
                    "type": "subscription_details",
                    "subscription_details": {
                        "subscription": subscription["id"],
                        "subscription_item": item["id"],
                    },
                },
                "period": {"start": at, "end": end},
                "pricing": {
                    "price_details": {"price": used_price["id"], "product": used_price["product"]},
                    "type": "price_details",
                    "unit_amount_decimal": used_price["unit_amount_decimal"],
                },
                "proration": True,
                "quantity": used_quantity,
                "tax_rates": item["tax_rates"],
                "test_clock": subscription["test_clock"],
                "_price": used_price,
            },
        )
