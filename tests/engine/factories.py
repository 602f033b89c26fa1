"""Small hand-written shop payloads and accounting setups for the engine tests (Danish shop, DKK)."""

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from portal.connectors.base import Capabilities

SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs"


def spec_path(*parts: str) -> Path:
    path = SPECS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared spec file not available: {path} (the ../shared checkout is absent)")
    return path


def _r2(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def wc_item(name, total, tax, qty=1, sku="", subtotal=None, item_id=None, rate_id=1):
    return {
        "id": item_id,
        "name": name,
        "quantity": qty,
        "sku": sku,
        "subtotal": subtotal if subtotal is not None else total,
        "total": total,
        "total_tax": str(_r2(Decimal(tax))),
        "taxes": [{"id": rate_id, "total": tax, "subtotal": tax}] if Decimal(tax) else [],
        "price": float(Decimal(total) / qty) if qty else 0,
        "meta_data": [],
    }


def wc_order(
    items=(),
    shipping=(),
    fees=(),
    *,
    country="DK",
    ship_country=None,
    ship_postcode=None,
    meta=(),
    total=None,
    total_tax=None,
    coupons=(),
    number="1001",
    date_gmt="2025-03-10T12:00:00",
    rate_percent=25,
    company="",
    email="anna@example.dk",
    prices_include_tax=True,
    payment_method="quickpay",
):
    """A WooCommerce REST v3 order. items: (name, sku, qty, total, tax[, subtotal]); shipping and fees:
    (title, total, tax). Order total and tax default to the sums (tax rounded per line, like WooCommerce)."""
    next_id = iter(range(100, 200))
    line_items = []
    for item in items:
        name, sku, qty, line_total, tax, *rest = item
        line_items.append(wc_item(name, line_total, tax, qty, sku, rest[0] if rest else None, next(next_id)))
    shipping_lines = [
        {
            "id": next(next_id),
            "method_title": t,
            "method_id": "flat_rate",
            "total": tot,
            "total_tax": str(_r2(Decimal(tx))),
            "taxes": [{"id": 1, "total": tx, "subtotal": ""}] if Decimal(tx) else [],
        }
        for t, tot, tx in shipping
    ]
    fee_lines = [
        {
            "id": next(next_id),
            "name": n,
            "tax_class": "",
            "tax_status": "taxable" if Decimal(tx) else "none",
            "total": tot,
            "total_tax": str(_r2(Decimal(tx))),
            "taxes": [{"id": 1, "total": tx, "subtotal": ""}] if Decimal(tx) else [],
        }
        for n, tot, tx in fees
    ]
    all_lines = line_items + shipping_lines + fee_lines
    tax_sum = sum((Decimal(x["total_tax"]) for x in all_lines), Decimal(0))
    net_sum = sum((Decimal(x["total"]) for x in all_lines), Decimal(0))
    return {
        "id": int(number),
        "number": number,
        "status": "processing",
        "currency": "DKK",
        "date_created": date_gmt,
        "date_created_gmt": date_gmt,
        "date_paid_gmt": date_gmt,
        "prices_include_tax": prices_include_tax,
        "customer_id": 7,
        "total": total if total is not None else str(net_sum + tax_sum),
        "total_tax": total_tax if total_tax is not None else str(tax_sum),
        "billing": {
            "first_name": "Anna",
            "last_name": "Jensen",
            "company": company,
            "address_1": "Vestergade 1",
            "address_2": "",
            "city": "Aarhus",
            "postcode": "8000",
            "country": country,
            "email": email,
            "phone": "+4512345678",
        },
        "shipping": {
            "first_name": "Anna",
            "last_name": "Jensen",
            "company": company,
            "address_1": "Vestergade 1",
            "city": "Aarhus",
            "postcode": ship_postcode or "8000",
            "country": ship_country or country,
        },
        "payment_method": payment_method,
        "payment_method_title": "Kort",
        "transaction_id": "tx-1",
        "meta_data": [{"id": i, "key": k, "value": v} for i, (k, v) in enumerate(meta)],
        "line_items": line_items,
        "shipping_lines": shipping_lines,
        "fee_lines": fee_lines,
        "coupon_lines": [
            {"id": 900 + i, "code": c, "discount": "0", "discount_tax": "0"} for i, c in enumerate(coupons)
        ],
        "tax_lines": [
            {
                "id": 99,
                "rate_code": f"{country}-MOMS-1",
                "rate_id": 1,
                "label": "Moms",
                "compound": False,
                "tax_total": str(tax_sum),
                "shipping_tax_total": "0",
                "rate_percent": rate_percent,
            }
        ],
        "refunds": [],
    }


def wc_refund(refund_id, amount, items=(), shipping=(), date_gmt="2025-03-20T09:00:00", reason=""):
    """items / shipping: (refunded order line id, qty, net, tax), positive; the payload is negative."""
    return {
        "id": refund_id,
        "date_created_gmt": date_gmt,
        "amount": amount,
        "reason": reason,
        "line_items": [
            {
                "id": 500 + i,
                "name": "",
                "quantity": -qty,
                "subtotal": f"-{net}",
                "total": f"-{net}",
                "total_tax": f"-{tax}",
                "taxes": [{"id": 1, "total": f"-{tax}", "subtotal": f"-{tax}"}],
                "sku": "",
                "price": -float(Decimal(net) / qty),
                "meta_data": [{"id": 1, "key": "_refunded_item_id", "value": str(ref)}],
            }
            for i, (ref, qty, net, tax) in enumerate(items)
        ],
        "shipping_lines": [
            {
                "id": 600 + i,
                "method_title": "Fragt",
                "total": f"-{net}",
                "total_tax": f"-{tax}",
                "taxes": [{"id": 1, "total": f"-{tax}", "subtotal": ""}],
                "meta_data": [{"id": 2, "key": "_refunded_item_id", "value": str(ref)}],
            }
            for i, (ref, _qty, net, tax) in enumerate(shipping)
        ],
    }


# --- accounting systems ----------------------------------------------------------------------------------

ECONOMIC = Capabilities("product_group", True, True, False, True, False, "negative_draft")
DINERO = Capabilities("account", False, False, True, False, True, "endpoint")
DYNACCOUNT = Capabilities("line_code", True, True, True, False, False, "table")

ECONOMIC_SETUP = {
    "invoice": {"layout": "19", "payment_terms": "1"},
    "goods": {
        "product_group": "1",
        "oss": {
            "SE": {"product_group": "21", "product": "OSS-SE"},
            "DE": {"product_group": "22", "product": "OSS-DE"},
            "FI": {"product_group": "23", "product": "OSS-FI"},
        },
    },
    "freight": {
        "product_group": "2",
        "oss": {
            "SE": {"product_group": "21", "product": "OSS-SE-FRAGT"},
            "DE": {"product_group": "22", "product": "OSS-DE-FRAGT"},
            "FI": {"product_group": "23", "product": "OSS-FI-FRAGT"},
        },
    },
    "no_vat": {"product_group": "9"},
}
DINERO_SETUP = {
    "invoice": {"layout": "b3c1e0c2-0000-4000-8000-000000000001", "payment_terms": "Netto 8"},
    "goods": {"domestic": {"account": "1000"}, "eu": {"account": "1100"}, "world": {"account": "1200"}},
    "freight": {"domestic": {"account": "1010"}, "eu": {"account": "1110"}, "world": {"account": "1210"}},
    "no_vat": {"account": "1900"},
}
DYNACCOUNT_SETUP = {
    # the sale's voucher: kladde, receivable and output VAT account (Webshop.php put_enclosure)
    "invoice": {"journal": "1", "receivable": "5600", "vat_account": "6910"},
    "goods": {"domestic": {"account": "1000"}, "eu": {"account": "1100"}, "world": {"account": "1200"}},
    "no_vat": {"account": "1900"},
}
SYSTEMS = {
    "e-conomic": (ECONOMIC, ECONOMIC_SETUP),
    "dinero": (DINERO, DINERO_SETUP),
    "dynaccount": (DYNACCOUNT, DYNACCOUNT_SETUP),
}


def plan_for(document, settings, system="e-conomic", rates=None):
    """Decide the VAT zone and build the draft plan, as the pipeline will."""
    from portal.engine.invoice import build_draft
    from portal.engine.vat import TEST_RATES, decide_zone

    rates = rates or TEST_RATES
    capabilities, setup = SYSTEMS[system]
    decision = decide_zone(document.customer, settings, rates, document.invoice_date)
    return build_draft(document, decision, setup, capabilities, settings, rates)


def lines_of(plan):
    """(product, quantity, unit price) per invoice line, for compact assertions."""
    return [(line.product_number, line.quantity, line.unit_net_price) for line in plan.invoice.lines]
