"""Fixtures for the calculator: the demo price catalogue in the database, and a pure one in memory."""

from decimal import Decimal

import pytest

from portal.calculator.pricing import AddOn, Catalogue, Feature, Rule, System, Tier
from portal.calculator.seed import seed_catalogue

D = Decimal


@pytest.fixture
def catalogue(db):
    """The demo catalogue `flask seed-demo` loads (10 % half-yearly discount, 25 % VAT)."""
    seed_catalogue()


def make_catalogue(**changes) -> Catalogue:
    """A small catalogue for the pure pricing function, shaped like the demo one."""
    values = {
        "systems": (
            System("e-conomic", "e-conomic", "accounting", D("99"), D("1495"), False, 3),
            System("dinero", "Dinero", "accounting", D("99"), D("1495"), False, 3),
            System("uniconta", "Uniconta", "accounting", D("199"), D("4995"), True, 10),
            System("billy", "Billy", "accounting", D("99"), D("1495"), False, 3),
            System("shopify", "Shopify", "webshop", D("99"), D("995"), False, 2),
            System("woocommerce", "WooCommerce", "webshop", D("99"), D("995"), False, 2),
            System("clearhaus", "Clearhaus", "acquirer", D("49"), D("995"), True, 5),
            System("ongoing", "Ongoing WMS", "warehouse", D("149"), D("2495"), True, 10),
        ),
        "tiers": (
            Tier(500, D("299"), "Standard"),  # deliberately out of order: the function sorts
            Tier(100, D("149"), "Start"),
            Tier(2000, D("549"), "Plus"),
            Tier(10000, D("999"), "Pro"),
        ),
        "addons": (
            AddOn("paymatch", "PayMatch", D("199"), D("1995"), 10, requires_kind="acquirer"),
            AddOn("mapping", "Mapningsmodul", D("149"), D("995"), 5),
            AddOn("historic-import", "Historisk import", D("0"), D("1495"), 5),
            AddOn(
                "extra-economic", "Ekstra e-conomic", D("100"), max_quantity=20, requires_system="e-conomic"
            ),
        ),
        "features": (
            Feature("invoices", "Fakturaer"),
            Feature("stock", "Lagersynkronisering", requires_kind="webshop", notes={"dinero": "Intet lager"}),
            Feature("oss", "OSS", notes={"dinero": "Ingen OSS"}),
            Feature("payouts", "Udbetalinger afstemt", requires_addon="paymatch"),
        ),
        "rules": (
            Rule(frozenset({"billy"}), "unavailable", "Billy kommer snart"),
            Rule(frozenset({"uniconta"}), "special", "Uniconta efter aftale"),
            Rule(frozenset({"ongoing", "dinero"}), "special", "Lager uden lager"),
        ),
        "half_yearly_discount_percent": D("10"),
        "vat_percent": D("25"),
    }
    values.update(changes)
    return Catalogue(**values)
