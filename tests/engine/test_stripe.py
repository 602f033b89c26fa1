"""Stripe invoices → the canonical SalesDocument / Refund, in both invoice shapes (endive and before basil),
with minor units read by the currency (zero-decimal currencies have none)."""

from decimal import Decimal

import pytest

from portal.engine.settings import SourceLinkSettings
from portal.engine.sources.stripe import money, normalise_order, normalise_refund
from portal.sources.stripe import SOURCE

SETTINGS = SourceLinkSettings(shop_id="7")


def invoice(**changes) -> dict:
    """A renewal before basil: a plan line and an unused-time proration, 25 % VAT exclusive, EUR, B2B."""
    values = {
        "id": "in_1",
        "object": "invoice",
        "number": "ABC-0002",
        "currency": "eur",
        "created": 1782685600,
        "status": "paid",
        "collection_method": "charge_automatically",
        "billing_reason": "subscription_cycle",
        "status_transitions": {"finalized_at": 1782689200, "paid_at": 1782689300},
        "customer": "cus_1",
        "customer_name": "Kaffee GmbH",
        "customer_email": "Einkauf@Kaffee.de",
        "customer_address": {
            "line1": "Hauptstr. 1",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
        },
        "customer_tax_ids": [{"type": "eu_vat", "value": "DE136695976"}],
        "payment_intent": "pi_1",
        "lines": {
            "has_more": False,
            "data": [
                {
                    "id": "il_1",
                    "amount": 10000,
                    "quantity": 2,
                    "description": "2 × Kaffe",
                    "discount_amounts": [{"amount": 1000}],
                    "tax_amounts": [
                        {"amount": 2250, "inclusive": False, "tax_rate": "txr_1", "taxable_amount": 9000}
                    ],
                },
                {
                    "id": "il_2",
                    "amount": -2000,
                    "quantity": 1,
                    "description": "Unused time",
                    "discount_amounts": [],
                    "tax_amounts": [
                        {"amount": -500, "inclusive": False, "tax_rate": "txr_1", "taxable_amount": -2000}
                    ],
                },
            ],
        },
        "total_excluding_tax": 7000,
        "total": 8750,
    }
    values.update(changes)
    return values


def test_a_renewal_before_basil_with_a_proration():
    document = normalise_order(invoice(), SETTINGS)
    assert (document.reference, document.number, document.currency) == ("ST-7-ABC-0002", "ABC-0002", "EUR")
    assert [(line.net_total, line.vat_total, line.vat_rate) for line in document.lines] == [
        (Decimal("90"), Decimal("22.5"), Decimal("25.00")),
        (Decimal("-20"), Decimal("-5"), Decimal("25.00")),
    ]
    assert document.line_totals().gross == document.shop_totals.gross == Decimal("87.5")
    assert (document.customer.type, document.customer.vat_number) == ("b2b", "DE136695976")
    assert document.customer.email == "einkauf@kaffee.de"
    assert (document.payment.method, document.payment.transaction_id) == ("stripe", "pi_1")
    assert SOURCE.sale_state(invoice()) == "paid"


def test_inclusive_tax_in_endive_and_a_zero_decimal_currency():
    line = {
        "id": "il_1",
        "amount": 14900,
        "quantity": 1,
        "description": "Kaffe",
        "discount_amounts": [],
        "taxes": [
            {
                "amount": 2980,
                "tax_behavior": "inclusive",
                "taxable_amount": 11920,
                "tax_rate_details": {"tax_rate": "txr_1"},
            }
        ],
    }
    payload = invoice(
        currency="jpy", lines={"has_more": False, "data": [line]}, total=14900, total_excluding_tax=11920
    )
    document = normalise_order(payload, SETTINGS)
    assert document.prices_include_tax
    assert (document.lines[0].net_total, document.lines[0].vat_total) == (Decimal(11920), Decimal(2980))
    assert money(14900, "DKK") == Decimal("149") and money(14900, "JPY") == Decimal(14900)
    with pytest.raises(TypeError):
        money("149.00", "DKK")  # a Stripe amount is never a string


def test_open_invoices_and_failed_payments_have_states_of_their_own():
    assert SOURCE.sale_state(invoice(status="open", collection_method="send_invoice")) == "open"
    assert SOURCE.sale_state(invoice(status="open", attempt_count=0)) == "payment_due"
    assert SOURCE.sale_state(invoice(status="open", attempt_count=2)) == "payment_failed"
    document = normalise_order(invoice(status="open", collection_method="send_invoice"), SETTINGS)
    assert document.payment.method == "bank_transfer"


def test_a_credit_note_is_a_refund_of_its_total():
    note = {
        "id": "cn_1",
        "created": 1782700000,
        "total": 5000,
        "reason": "product_unsatisfactory",
        "lines": {
            "data": [
                {
                    "id": "cnli_1",
                    "amount": 4000,
                    "quantity": 1,
                    "description": "Kaffe",
                    "discount_amounts": [],
                    "taxes": [
                        {
                            "amount": 1000,
                            "tax_behavior": "exclusive",
                            "taxable_amount": 4000,
                            "tax_rate_details": {},
                        }
                    ],
                }
            ]
        },
    }
    refund = normalise_refund(invoice(), note, SETTINGS)
    assert (refund.amount, refund.unallocated, refund.reference) == (
        Decimal("50"),
        Decimal(0),
        "ST-7-ABC-0002-Rcn_1",
    )
    assert refund.lines[0].gross_total == Decimal("50")


def test_an_invoice_with_more_lines_than_it_carries_is_not_read_as_whole():
    with pytest.raises(ValueError, match="more lines"):
        normalise_order(invoice(lines={"has_more": True, "data": []}), SETTINGS)
