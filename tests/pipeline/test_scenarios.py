"""The scenario matrix: each kind of order through the whole pipeline (webhook event → RQ job → documents)
into the e-conomic, Dinero and Dynaccount sandboxes, each checked in the accounting sandbox itself — its
totals and VAT as the system computed them, its lines, and the customer the document is on.

One table, one test body. A scenario is a WooCommerce order (tests/engine/factories.py wc_order), what the
accounting system must end up with (gross, VAT, lines, customer), and what differs per system. Where a
system cannot do something (OSS on Dinero and Dynaccount), the source link's settings refuse it and the
case asserts the refusal. OSS on e-conomic books on the sandbox agreement's per-country groups (OSS
Sverige, Tyskland, Finland, Frankrig: portal.sandbox.economic.OSS_SETUP), chosen in the setup's OSS
template by tests/pipeline/conftest.py; tests/pipeline/test_oss.py checks the rest (products, ledger, the
rate mismatch).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.models import Transfer
from portal.pipeline import source_links
from tests.engine.factories import wc_order
from tests.pipeline.conftest import feed, make_setup, make_source_link, remote
from tests.pipeline.test_economic_pipeline import feed_refund, refund_event

SYSTEMS = ["e-conomic", "dinero", "dynaccount"]
DATE = "2026-11-20T10:00:00"
EAN = "5790000000012"  # a valid GLN (GS1 check digit)
CVR = "13585628"


def order(number, items=(("Keramikkrus", "KRUS-01", 2, "160.00", "40.00"),), **kwargs):
    """A paid WooCommerce order (prices incl. 25 % VAT) from a Danish private customer, unless told."""
    return wc_order(list(items), number=str(number), date_gmt=DATE, **kwargs)


@dataclass(frozen=True)
class Line:
    """An invoice line as the accounting system holds it: product (where the system has products),
    description, quantity and unit price ex VAT (credit notes: as positive amounts)."""

    product: str | None
    description: str
    quantity: str
    unit: str


@dataclass(frozen=True)
class Scenario:
    order: Callable[[], dict]
    gross: str | None = None  # the document in the accounting system (a credit note: what it credits)
    vat: str | None = None
    lines: tuple[Line, ...] = ()  # expected among the document's lines
    outcome: str = "booked"  # booked | totals_differ | skipped | refused | configuration
    message: str | None = None  # configuration: what the transfer says to fix (English)
    settings: dict = field(default_factory=dict)
    customer: tuple[str, str] = ("email", "anna@example.dk")  # matched in the accounting system on
    refund: Callable[[dict], dict] | None = None  # a refund event for the booked order → credit note
    per_system: dict[str, dict] = field(default_factory=dict)  # what differs per system

    def for_system(self, system: str) -> "Scenario":
        from dataclasses import replace

        return replace(self, **self.per_system.get(system, {}))


def _refund_mugs(quantity, net, tax):
    def make(payload):
        mugs = payload["line_items"][0]["id"]
        items = [("Keramikkrus", "KRUS-01", quantity, net, tax, mugs)]
        amount = str(Decimal(net) + Decimal(tax))
        return refund_event(payload, amount=amount, items=items)

    return make


def _refund_everything(payload):
    """Both mugs and the shipping, as WooCommerce lists a full refund."""
    event = _refund_mugs(2, "160.00", "40.00")(payload)
    shipping = payload["shipping_lines"][0]
    event["refund"]["shipping_lines"] = [
        {
            "id": 801,
            "method_title": shipping["method_title"],
            "total": "-39.20",
            "total_tax": "-9.80",
            "taxes": [{"id": 1, "total": "-9.80", "subtotal": ""}],
            "meta_data": [{"key": "_refunded_item_id", "value": str(shipping["id"])}],
        }
    ]
    event["refund"]["amount"] = "249.00"
    return event


MUGS = Line("KRUS-01", "Keramikkrus", "2", "80.00")
SHIPPING = [("GLS Pakkeshop", "39.20", "9.80")]
NO_OSS = {"outcome": "refused"}  # Dinero and Dynaccount cannot book OSS: the settings refuse it
OSS_ON = {"oss": True}


def oss_order(number, country, rate, net, tax, shipping=()):
    """Two mugs to a private customer in another EU country, priced with that country's VAT."""
    items = [("Keramikkrus", "KRUS-01", 2, net, tax)]
    return order(number, items, country=country, rate_percent=rate, shipping=shipping)


SCENARIOS = {
    "domestic B2C incl. VAT": Scenario(
        lambda: order(7001, shipping=SHIPPING),
        gross="249.00",
        vat="49.80",
        lines=(MUGS, Line("FRAGT", "GLS Pakkeshop", "1", "39.20")),
    ),
    "B2B matched by CVR": Scenario(
        lambda: order(7002, company="Firma ApS", meta=[("_billing_vat_number", "DK 13 58 56 28")]),
        gross="200.00",
        vat="40.00",
        lines=(MUGS,),
        customer=("vat_number", CVR),
    ),
    "EAN customer (public sector)": Scenario(
        lambda: order(7003, company="Aarhus Kommune", meta=[("_billing_ean", EAN)]),
        gross="200.00",
        vat="40.00",
        lines=(MUGS,),
        customer=("ean", EAN),
    ),
    "invalid EAN falls back to the e-mail": Scenario(
        lambda: order(7004, company="Aarhus Kommune", meta=[("_billing_ean", "5790000000013")]),
        gross="200.00",
        vat="40.00",
        customer=("email", "anna@example.dk"),
    ),
    "EU B2C without OSS: Danish VAT": Scenario(
        lambda: order(7005, country="SE", shipping=SHIPPING),
        gross="249.00",
        vat="49.80",
        lines=(MUGS,),
    ),
    "EU B2C with OSS: Sweden's VAT on OSS-SE": Scenario(
        lambda: oss_order(7006, "SE", 25, "160.00", "40.00", shipping=SHIPPING),
        settings=OSS_ON,
        gross="249.00",
        vat="49.80",
        # on the country's product in its OSS group; the shop's SKU stays in the text; the shipping too
        lines=(
            Line("OSS-SE", "KRUS-01 Keramikkrus", "2", "80.00"),
            Line("OSS-SE", "GLS Pakkeshop", "1", "39.20"),
        ),
        per_system={"dinero": NO_OSS, "dynaccount": NO_OSS},
    ),
    "EU B2C with OSS: Germany at 19 %": Scenario(
        lambda: oss_order(7018, "DE", 19, "160.00", "30.40"),
        settings=OSS_ON,
        gross="190.40",
        vat="30.40",
        lines=(Line("OSS-DE", "KRUS-01 Keramikkrus", "2", "80.00"),),
        per_system={"dinero": NO_OSS, "dynaccount": NO_OSS},
    ),
    "EU B2C with OSS: Finland at 25.5 %": Scenario(
        lambda: oss_order(7019, "FI", 25.5, "160.00", "40.80"),
        settings=OSS_ON,
        gross="200.80",
        vat="40.80",
        lines=(Line("OSS-FI", "KRUS-01 Keramikkrus", "2", "80.00"),),
        per_system={"dinero": NO_OSS, "dynaccount": NO_OSS},
    ),
    "EU B2C with OSS to a country without a group": Scenario(
        lambda: oss_order(7020, "NL", 21, "160.00", "33.60"),
        settings=OSS_ON,
        outcome="configuration",
        message=(
            "No product group is chosen for Netherlands in the template “EU sales to consumers (OSS)”: OSS "
            "sales to Netherlands are booked at its VAT rate of 21 %."
        ),
        per_system={"dinero": NO_OSS, "dynaccount": NO_OSS},
    ),
    "coupon inside the line total": Scenario(
        lambda: order(
            7007, items=[("Tekande", "TE-02", 1, "160.00", "40.00", "200.00")], coupons=["SOMMER20"]
        ),
        gross="200.00",
        vat="40.00",
        lines=(Line("TE-02", "Tekande", "1", "160.00"),),
    ),
    "discount as a negative fee": Scenario(
        lambda: order(7008, fees=[("Rabat", "-40.00", "-10.00")]),
        gross="150.00",
        vat="30.00",
        lines=(MUGS, Line("RABAT", "Rabat", "1", "-40.00")),
    ),
    "fee": Scenario(
        lambda: order(7009, fees=[("Ekspeditionsgebyr", "20.00", "5.00")]),
        gross="225.00",
        vat="45.00",
        lines=(MUGS, Line("GEBYR", "Ekspeditionsgebyr", "1", "20.00")),
    ),
    "free shipping": Scenario(
        lambda: order(7010, shipping=[("Gratis fragt", "0.00", "0")]),
        gross="200.00",
        vat="40.00",
        lines=(MUGS, Line("FRAGT", "Gratis fragt", "1", "0.00")),
    ),
    "3 × 33.33 incl. VAT (unit price needs 3 decimals)": Scenario(
        lambda: order(7011, items=[("Te, løs", "TE-LOES", 3, "79.99", "20.00")]),
        gross="99.99",
        vat="20.00",
        # 79.99 / 3 = 26.663…: two cent prices, 2 × 26.66 + 1 × 26.67
        lines=(Line("TE-LOES", "Te, løs", "2", "26.66"), Line("TE-LOES", "Te, løs", "1", "26.67")),
    ),
    "a few øre off: rounding line on the VAT-free template": Scenario(
        lambda: order(7012, total="200.03"),
        gross="200.03",
        vat="40.00",
        lines=(MUGS, Line("AFRUND", "Øreafrunding", "1", "0.03")),
    ),
    "beyond the tolerance: a draft that needs attention": Scenario(
        lambda: order(7013, total="210.00"),
        gross="200.00",  # what the accounting system computes; the shop says 210.00
        vat="40.00",
        outcome="totals_differ",
    ),
    "full refund": Scenario(
        lambda: order(7014, shipping=SHIPPING),
        refund=_refund_everything,
        gross="249.00",
        vat="49.80",
        lines=(MUGS, Line("FRAGT", "GLS Pakkeshop", "1", "39.20")),
    ),
    "partial refund": Scenario(
        lambda: order(7015, shipping=SHIPPING),
        refund=_refund_mugs(1, "80.00", "20.00"),
        gross="100.00",
        vat="20.00",
        lines=(Line("KRUS-01", "Keramikkrus", "1", "80.00"),),
    ),
    "gift-card redemption (no VAT)": Scenario(
        lambda: order(7016, fees=[("Gavekort", "-50.00", "0")]),
        gross="150.00",
        vat="40.00",  # the mugs' VAT only: the gift card carries none
        lines=(MUGS, Line("GAVEKORT", "Gavekort", "1", "-50.00")),
    ),
    "a state that does not transfer": Scenario(
        lambda: {**order(7017), "status": "pending"},
        outcome="skipped",
    ),
}


# --- reading the document back from the accounting sandbox -------------------------------------------------


def document_of(system, connector, found):
    """(the customer's number or id, [Line]) of a document, read from the accounting system."""
    if system == "e-conomic":
        path = "booked" if found.booked else "drafts"
        document = connector._get(f"/invoices/{path}/{found.id}")
        lines = [
            Line(
                line["product"]["productNumber"],
                line["description"],
                str(abs(Decimal(str(line["quantity"])))),
                str(Decimal(str(line["unitNetPrice"]))),
            )
            for line in document["lines"]
        ]
        return str(document["customer"]["customerNumber"]), lines
    if system == "dinero":
        document = connector._read(found.id, found.is_credit_note)
        lines = [
            Line(None, line["Description"], str(Decimal(str(line["Quantity"]))), str(line["BaseAmountValue"]))
            for line in document["ProductLines"]
        ]
        return document["ContactGuid"], lines
    raise AssertionError(f"{system} has no document lines")


def same_line(expected: Line, actual: Line, system: str) -> bool:
    return (
        (system == "dinero" or expected.product == actual.product)
        and expected.description in actual.description
        and Decimal(expected.quantity) == Decimal(actual.quantity)
        and Decimal(expected.unit) == Decimal(actual.unit)
    )


# --- the test ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(db, account, run_jobs, system, name):
    scenario = SCENARIOS[name].for_system(system)
    setup = make_setup(account, system, auto_book=True)
    source_link = make_source_link(db, account, setup)
    if scenario.settings:
        if scenario.outcome == "refused":
            with pytest.raises(source_links.SettingsError) as refused:
                source_links.update_settings(source_link, {**source_link.settings, **scenario.settings})
            assert "cannot book OSS" in refused.value.errors["oss"]
            return
        source_links.update_settings(source_link, {**source_link.settings, **scenario.settings})

    payload = scenario.order()
    feed(source_link, payload)
    run_jobs()
    invoice = db.session.scalar(select(Transfer).where(Transfer.kind == "invoice"))
    connector = remote(setup)
    reference = f"WC-12-{payload['number']}"

    if scenario.outcome == "configuration":  # stopped before anything was sent, saying what to fix
        assert (invoice.status, invoice.error_kind) == ("needs_attention", "configuration")
        assert scenario.message in invoice.error_message, invoice.error_message
        assert connector.find_invoice(reference) is None
        return
    if scenario.outcome == "skipped":
        assert invoice.status == "skipped" and "not set to transfer" in invoice.reason
        assert connector.find_invoice(reference) is None
        return
    if scenario.outcome == "totals_differ":
        assert (invoice.status, invoice.error_kind) == ("needs_attention", "totals_differ")
        shop = payload["total"]
        assert shop in invoice.error_message and scenario.gross in invoice.error_message
        found = connector.find_invoice(reference)
        # a draft only; Dynaccount's voucher waits in the kladde for the bookkeeper either way
        assert found is not None and (not found.booked or system == "dynaccount")
        assert (found.totals.gross, found.totals.vat) == (Decimal(scenario.gross), Decimal(scenario.vat))
        return

    assert invoice.status == "done", invoice.error_message
    found = connector.find_invoice(reference)
    assert found is not None and found.booked and not found.is_credit_note
    if scenario.refund is not None:
        feed_refund(source_link, scenario.refund(payload))
        run_jobs()
        credit = db.session.scalar(select(Transfer).where(Transfer.kind == "credit_note"))
        assert credit.status == "done", credit.error_message
        found = connector.find_invoice(credit.reference)
        assert found is not None and found.booked and found.is_credit_note
    assert (abs(found.totals.gross), abs(found.totals.vat)) == (
        Decimal(scenario.gross),
        Decimal(scenario.vat),
    ), f"{system} computed {found.totals}"

    if system == "dynaccount":
        # A voucher (Webshop.php put_enclosure) carries account rows, not lines or a customer: it balances,
        # the receivable carries the gross, the VAT account the VAT, the sales accounts the net.
        rows = [(str(r["account_id_"]), abs(Decimal(r["amount"]))) for r in found.raw["rows"]]
        assert sum(Decimal(r["amount"]) for r in found.raw["rows"]) == 0
        assert rows[0] == ("5600", Decimal(scenario.gross))
        assert sum((a for account, a in rows if account == "6910"), Decimal(0)) == Decimal(scenario.vat)
        return
    customer_number, lines = document_of(system, connector, found)
    for expected in scenario.lines:
        assert any(same_line(expected, actual, system) for actual in lines), (expected, lines)
    how, value = scenario.customer
    customer = connector.find_customer(how, value)
    assert customer is not None, f"no customer with {how} {value} in {system}"
    assert customer_number in (customer.id, customer.number)
    if how == "ean" and system == "e-conomic":  # the invoice itself carries the EAN for e-invoicing
        assert connector._get(f"/invoices/booked/{found.id}")["recipient"]["ean"] == EAN


def test_an_empty_vat_free_template_is_named_in_danish_on_the_transfer_page(
    owner_client, db, account, run_jobs
):
    setup = make_setup(account, "e-conomic", auto_book=True)
    setup.template("no_vat").values = {}
    db.session.commit()
    source_link = make_source_link(db, account, setup)
    feed(source_link, SCENARIOS["gift-card redemption (no VAT)"].order())
    run_jobs()
    transfer = db.session.scalar(select(Transfer))
    assert transfer.status == "needs_attention" and transfer.error_kind == "configuration"
    assert "VAT-free lines (gift cards, rounding)" in transfer.error_message  # named, never "no_vat"
    page = owner_client.get(f"/transfers/{transfer.id}").get_data(as_text=True)
    assert "Momsfri linjer (gavekort, afrunding)" in page
