"""The completeness report's comparison alone: sales and ledger documents in, findings out (no systems)."""

from datetime import date
from decimal import Decimal

from portal.connectors.base import LedgerDocument
from portal.pipeline.completeness import Sale, SaleRefund, compare

NOV_1, NOV_30 = date(2026, 11, 1), date(2026, 11, 30)
TOLERANCE = Decimal("0.10")


def sale(number: str, gross: str = "100.00", expected: bool = True, refunds=()) -> Sale:
    return Sale(number, number, f"WC-12-{number}", date(2026, 11, 5), "Ida Holm", "DKK", Decimal(gross),
                expected, list(refunds))  # fmt: skip


def doc(reference: str, gross: str = "100.00", kind: str = "invoice", day: date = date(2026, 11, 5)):
    return LedgerDocument(reference, reference, "1", kind, True, day, Decimal(gross))


def kinds(findings) -> list[tuple[str, str]]:
    return [(f["kind"], f["reference"]) for f in findings if f["kind"] != "matched"]


def test_within_the_tolerance_is_a_match_beyond_it_a_difference():
    found = compare([sale("1"), sale("2")], [doc("WC-12-1", "100.10"), doc("WC-12-2", "100.11")], NOV_1,
                    NOV_30, TOLERANCE)  # fmt: skip
    assert kinds(found) == [("totals_differ", "WC-12-2")]


def test_an_open_order_stands_for_its_invoice_and_a_sale_not_expected_needs_none():
    found = compare([sale("1"), sale("2", expected=False)], [doc("WC-12-1", kind="order")], NOV_1, NOV_30,
                    TOLERANCE)  # fmt: skip
    assert kinds(found) == []


def test_refunds_their_credit_notes_and_documents_without_a_sale():
    refunded = sale("1", refunds=[SaleRefund("7", "WC-12-1-R7", Decimal("40.00")),
                                  SaleRefund("8", "WC-12-1-R8", Decimal("10.00"))])  # fmt: skip
    documents = [
        doc("WC-12-1"),
        doc("WC-12-1-R7", "45.00", "credit_note", date(2026, 12, 2)),  # dated after the period: still found
        doc("WC-12-9-R3", "20.00", "credit_note"),  # a refund this shop does not have
        doc("WC-12-77"),  # an order this shop does not have
        doc("WC-12-78", day=date(2026, 12, 1)),  # …dated after the period: another month's business
    ]
    found = compare([refunded], documents, NOV_1, NOV_30, TOLERANCE)
    assert kinds(found) == [
        ("totals_differ", "WC-12-1-R7"),
        ("refund_missing", "WC-12-1-R8"),
        ("unmatched", "WC-12-77"),
        ("credit_unmatched", "WC-12-9-R3"),
    ]
    assert found[2]["refund_id"] == "8" and found[2]["refund"] == "10.00"
