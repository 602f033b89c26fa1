"""Stripe: which refunds and credit notes become credit notes (each krone once), a refund as an amount, and
the product a subscription line is booked on."""

from decimal import Decimal

import pytest

from portal.engine.sources import PRODUCT_NUMBER_MAX, product_number
from portal.engine.sources.frisbii import normalise_order as frisbii_order
from portal.engine.sources.stripe import credit_documents, normalise_order, normalise_refund
from portal.sources.stripe import SOURCE
from tests.engine.test_stripe import SETTINGS, invoice


def refund(refund_id="re_1", amount=3000, status="succeeded", created=1782700000) -> dict:
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "created": created,
        "currency": "eur",
        "payment_intent": "pi_1",
        "reason": "requested_by_customer",
        "status": status,
    }


def note(note_id="cn_1", total=5000, refunds=(), status="issued") -> dict:
    return {
        "id": note_id,
        "object": "credit_note",
        "created": 1782700000,
        "total": total,
        "status": status,
        "refunds": [{"refund": r, "amount_refunded": a, "type": "refund"} for r, a in refunds],
        "lines": {
            "data": [
                {
                    "id": "cnli_1",
                    "invoice_line_item": "il_1",
                    "amount": 4000,
                    "quantity": 1,
                    "description": "Kaffe",
                    "discount_amounts": [],
                    "taxes": [{"amount": 1000, "tax_behavior": "exclusive", "taxable_amount": 4000}],
                }
            ]
        },
    }


def ids(documents) -> list[str]:
    return [d["id"] for d in documents]


def test_a_refund_without_a_credit_note_is_credited_by_its_amount():
    [found] = credit_documents([], [refund()])
    credit = normalise_refund(invoice(), found, SETTINGS)
    assert (credit.amount, credit.unallocated, credit.lines, credit.kind) == (
        Decimal(30),
        Decimal(30),
        (),
        "amount",
    )
    assert credit.reference == "ST-7-ABC-0002-Rre_1" and credit.reason == "requested_by_customer"


def test_a_credit_note_made_with_its_refund_is_credited_once_as_the_refund():
    """The note names the refund; the refund is what is credited, with the note's lines (its VAT split). Read
    before the note was seen, it is the same refund (the same transfer), by amount: never a second credit."""
    listed = credit_documents([note(refunds=[("re_1", 5000)])], [refund(amount=5000)])
    assert ids(listed) == ["re_1"]
    credit = normalise_refund(invoice(), listed[0], SETTINGS)
    assert credit.amount == Decimal(50) and credit.unallocated == 0
    assert [(line.net_total, line.vat_total) for line in credit.lines] == [(Decimal(40), Decimal(10))]
    [alone] = credit_documents([], [refund(amount=5000)])
    assert normalise_refund(invoice(), alone, SETTINGS).reference == credit.reference


def test_a_credit_note_credits_only_what_its_refunds_did_not():
    """A refund linked afterwards (or part of a note refunded, the rest onto the balance): the refund by its
    amount, the note by the rest, without lines — 55,00 in all, as the note says."""
    listed = credit_documents([note(total=5500, refunds=[("re_1", 3000)])], [refund()])
    assert sorted(ids(listed)) == ["cn_1", "re_1"]
    credits = {d["id"]: normalise_refund(invoice(), d, SETTINGS) for d in listed}
    assert (credits["re_1"].amount, credits["re_1"].lines) == (Decimal(30), ())
    assert (credits["cn_1"].amount, credits["cn_1"].unallocated, credits["cn_1"].lines) == (
        Decimal(25),
        Decimal(25),
        (),
    )


def test_failed_refunds_and_void_credit_notes_credit_nothing():
    listed = credit_documents(
        [note(status="void")], [refund(status="failed"), refund("re_2", status="pending")]
    )
    assert listed == []
    with pytest.raises(ValueError, match="credits nothing"):
        normalise_refund(invoice(), note(total=3000, refunds=[("re_1", 3000)]), SETTINGS)


def test_refund_events_name_the_payment_intent_and_credit_notes_the_invoice():
    def event(kind, obj):
        return {"object": "event", "type": kind, "data": {"object": obj}}

    assert SOURCE.refunded_sale(event("refund.created", refund())) == "pi_1"
    assert SOURCE.refunded_sale(event("charge.refunded", {"id": "ch_1", "payment_intent": "pi_1"})) == "pi_1"
    assert SOURCE.refunded_sale(event("charge.refunded", {"id": "ch_1", "payment_intent": None})) is None
    assert SOURCE.refunded_sale(event("credit_note.created", note() | {"invoice": "in_1"})) == "in_1"
    assert SOURCE.refunded_sale(event("invoice.paid", invoice())) is None


def test_lines_are_booked_on_the_stripe_product_and_credit_lines_on_the_line_they_credit():
    endive = invoice()
    endive["lines"]["data"][0]["pricing"] = {
        "type": "price_details",
        "price_details": {"price": "price_1", "product": "prod_Kaffe"},
    }
    endive["lines"]["data"][1]["price"] = {"id": "price_0", "product": {"id": "prod_Old"}}  # before basil
    endive["lines"]["data"][0]["description"] = "2 × Kaffe (at 50,00 € / month)"
    endive["lines"]["data"][1]["description"] = "Unused time on Kaffe after 12 Jun 2026"
    lines = normalise_order(endive, SETTINGS).lines
    assert [(line.sku, line.product_name) for line in lines] == [
        ("prod_Kaffe", "Kaffe"),
        ("prod_Old", "Kaffe"),
    ]
    credit = normalise_refund(endive, note(), SETTINGS)
    assert credit.lines[0].sku == "prod_Kaffe"
    no_price = invoice()  # an invoice item by amount: the default product
    assert normalise_order(no_price, SETTINGS).lines[0].sku is None


def test_product_numbers_fit_every_ledger_and_stay_the_same():
    assert product_number("prod_QXg1hqf4jFNsqG") == "prod_QXg1hqf4jFNsqG"
    assert product_number(" ") is None and product_number(None) is None
    long = product_number("kaffeabonnement-premium-maanedlig")
    assert len(long) == PRODUCT_NUMBER_MAX and long == product_number("kaffeabonnement-premium-maanedlig")
    assert long != product_number("kaffeabonnement-premium-aarlig")


def test_frisbii_plan_lines_carry_their_handle_other_lines_the_default_product():
    def line(origin, handle, amount=10000):
        return {
            "origin": origin,
            "origin_handle": handle,
            "ordertext": origin,
            "amount": amount,
            "amount_vat": amount // 5,
            "amount_ex_vat": amount - amount // 5,
            "vat": 0.25,
            "quantity": 1,
        }

    payload = {
        "id": "inv_1",
        "handle": "inv-1",
        "created": "2026-06-01T10:00:00Z",
        "currency": "DKK",
        "amount": 50000,
        "order_lines": [
            line("plan", "kaffeabonnement"),
            line("plan", "kaffeabonnement-til-kontoret-hver-maaned"),
            line("add_on", None),
            line("additional_cost", "ac-7f3e"),
            line("ondemand", None),
        ],
    }
    skus = [line.sku for line in frisbii_order(payload, SETTINGS).lines]
    assert skus[0] == "kaffeabonnement" and skus[2:] == [None, None, None]
    assert len(skus[1]) == PRODUCT_NUMBER_MAX and skus[1].startswith("kaffeabonnement-")
