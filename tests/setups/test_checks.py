"""The wizard's account checks as pure functions, on the metadata each connector's list_choices returns
(copied here in the shape the connectors give it; the wizard tests run them through the sandboxes)."""

from decimal import Decimal

import pytest

from portal.connectors.base import Choice
from portal.setups import checks

DK = Decimal("25")

# Dynaccount: accounts with type and their own code; VAT codes with rate and SALES/PURCHASE.
DYN_CODES = {
    code: Choice(code, f"{code} {text}", {"rate": Decimal(rate), "type": kind})
    for code, text, kind, rate in [
        ("U25", "Salgsmoms 25 %", "SALES", "25.00"),
        ("UEUV", "EU-salg af varer (0 %)", "SALES", "0.00"),
        ("UEUY", "EU-salg af ydelser (0 %)", "SALES", "0.00"),
        ("UEXP", "Eksport uden for EU (0 %)", "SALES", "0.00"),
        ("K25", "Købsmoms 25 %", "PURCHASE", "25.00"),
    ]
}
DYN_SALES = Choice("1010", "1010 Salg af varer, indland", {"vat_code": "U25", "type": "OPERATING"})
DYN_EU = Choice("1020", "1020 Salg af varer, EU", {"vat_code": "UEUV", "type": "OPERATING"})
DYN_BANK = Choice("5800", "5800 Bank", {"vat_code": None, "type": "BALANCE"})
DYN_FREE = Choice("1070", "1070 Momsfrit salg", {"vat_code": None, "type": "OPERATING"})


def dinero(number, name, code, rate, vat_name=""):
    return Choice(
        number,
        f"{number} {name}",
        {"type": "OPERATING", "vat_code": code, "vat_name": vat_name, "vat_rate": rate},
    )


DIN_SALES = dinero("1000", "Salg m/moms", "U25", "25", "Salgsmoms 25%")
DIN_FREE = dinero("1050", "Salg u/moms", None, "0")
DIN_EU = dinero("1100", "Salg af varer til EU-virksomheder", "UEUV", "0", "Salg af varer til andre EU-lande")
DIN_EU_SERVICES = dinero("1150", "Salg af ydelser til EU", "UEUY", "0", "Salg af ydelser til andre EU-lande")
DIN_EXPORT = dinero("1200", "Eksport", "UEXP", "0", "Salg til lande uden for EU (rubrik C)")


def dynaccount(zone, account=None, code=None):
    chosen = {}
    if account:
        chosen["account"] = ("accounts", account)
    if code:
        chosen["vat_code"] = ("vat_codes", DYN_CODES[code])
    return checks.check_template("goods", zone, chosen, DYN_CODES, DK)


def one(kind, zone, choice, source="accounts"):
    return checks.check_template(kind, zone, {"account": (source, choice)}, {}, DK).get("account")


def test_dynaccount_bank_with_purchase_vat_is_refused_for_sales_in_denmark():
    found = dynaccount("domestic", DYN_BANK, "K25")
    assert found["account"].refused and "balance account" in found["account"].message
    # With an operating account, the purchase code is refused beside the code.
    found = dynaccount("domestic", DYN_SALES, "K25")
    assert (
        list(found) == ["vat_code"]
        and found["vat_code"].refused
        and "purchase VAT" in found["vat_code"].message
    )
    assert dynaccount("domestic", DYN_SALES, "U25") == {}


def test_dynaccount_zone_codes_are_checked_and_an_account_without_a_chosen_code_is_judged_on_its_own():
    assert dynaccount("domestic", DYN_SALES, "UEUV")["vat_code"].refused
    assert dynaccount("eu", DYN_EU, "UEUV") == {}
    assert dynaccount("eu", DYN_EU, "U25")["vat_code"].refused  # Danish VAT on a reverse-charge sale
    assert dynaccount("eu", DYN_SALES)["account"].refused  # no code chosen: the account's U25 applies
    assert dynaccount("world", DYN_EU, "UEXP") == {}
    assert dynaccount("world", DYN_EU, "UEUV")["vat_code"].level == "warn"  # the wrong VAT-return box
    assert dynaccount("eu", DYN_EU, "UEXP")["vat_code"].level == "warn"
    assert dynaccount("eu", None, "K25")["vat_code"].refused  # only the code chosen so far


def test_dinero_vat_free_lines_refuse_a_sales_account_with_vat():
    found = one("no_vat", "", DIN_SALES)
    assert found.refused and "U25" in found.message
    assert one("no_vat", "", DIN_FREE) is None
    assert one("no_vat", "", DIN_EU).level == "warn"  # 0 %, but reported as an EU sale


def test_dinero_goods_in_denmark_refuse_the_eu_business_account():
    found = one("goods", "domestic", DIN_EU)
    assert found.refused and "UEUV" in found.message and "25" in found.message
    assert one("goods", "domestic", DIN_SALES) is None
    assert one("goods", "domestic", DIN_FREE).level == "warn"  # right only for a VAT-exempt company
    assert one("goods", "domestic", dinero("1001", "Salg 12 %", "U12", "12")).refused  # not the DK rate


def test_eu_and_export_accounts():
    assert one("goods", "eu", DIN_EU) is None
    assert one("goods", "eu", DIN_SALES).refused
    assert one("goods", "eu", DIN_EU_SERVICES).level == "warn"  # services code on goods
    assert one("freight", "eu", DIN_EU_SERVICES) is None
    assert one("goods", "eu", DIN_EXPORT).level == "warn"
    assert one("goods", "world", DIN_EXPORT) is None
    assert one("goods", "world", DIN_FREE) is None
    assert one("goods", "world", DIN_SALES).refused
    assert one("goods", "world", DIN_EU).level == "warn"


def test_payments_need_a_balance_account_without_vat():
    bank = Choice("5820", "5820 Bank", {"type": "status", "vat_code": None})  # e-conomic
    sales = Choice("1010", "1010 Salg", {"type": "profitAndLoss", "vat_code": "U25"})
    assert one("payments", "", bank) is None
    assert one("payments", "", sales).refused
    assert one("payments", "", Choice("5830", "5830 x", {"type": "status", "vat_code": "I25"})).refused
    deposit = Choice("55000", "55000 Bank", {"default": True, "type": "BALANCE"})  # Dinero
    assert one("payments", "", deposit, "deposit_accounts") is None


def economic_group(zones):
    """A product group choice as e-conomic's connector gives it: zone -> (account, code, rate, VAT type)."""
    details = {"sales_accounts": {}, "vat_codes": {}, "vat_rates": {}, "vat_types": {}}
    for zone, (account, code, rate, kind) in zones.items():
        details["sales_accounts"][zone] = account
        if code:
            details["vat_codes"][zone], details["vat_rates"][zone] = code, rate
            details["vat_types"][zone] = kind
    return Choice("1", "Varer", details)


def group(kind, choice):
    return checks.check_template(kind, "", {"product_group": ("product_groups", choice)}, {}, DK).get(
        "product_group"
    )


def test_economic_product_groups_are_checked_per_zone():
    goods = economic_group({
        "domestic": ("1010 Salg af varer, indland", "U25", "25.00", "Salgsmoms"),
        "eu": ("1020 Salg af varer, EU", None, None, None),
        "world": ("1030 Salg af varer, udland", None, None, None),
    })  # fmt: skip
    assert group("goods", goods) is None
    found = group("no_vat", goods)
    assert found.refused and found.message.startswith("Denmark:")
    oss = economic_group({
        "domestic": ("1010 Salg af varer, indland", "U25", "25.00", "Salgsmoms"),
        "eu": ("1230 Salg OSS Finland", "FI255", "25.50", "Salgsmoms"),
    })  # fmt: skip
    found = group("goods", oss)
    assert found.refused and "EU:" in found.message and "reverse charge" in found.message
    purchase = economic_group({"domestic": ("1310 Varekøb", "I25", "25.00", "Købsmoms")})
    assert group("freight", purchase).refused


def test_unknown_metadata_passes_and_the_reason_is_danish(app):
    assert one("goods", "domestic", Choice("1", "1 Salg", {})).level == "warn"  # no code known
    assert one("payments", "", Choice("1", "1 Konto", {})) is None  # type unknown: not held against it
    with app.test_request_context(headers={"Accept-Language": "da"}):
        found = one("no_vat", "", DIN_SALES)
        assert "gavekort" in found.message, found.message


@pytest.mark.parametrize(
    ("code", "name", "kind", "direction", "treatment"),
    [
        ("U25", "Salgsmoms 25%", None, "sales", None),
        ("I25", "Købsmoms 25%", None, "purchase", None),
        ("EUV", "Moms af varekøb i EU", "Moms af varekøb i udlandet (EU)", "purchase", "eu_goods"),
        ("UEXP", "Salg til lande uden for EU (rubrik C)", None, "sales", "export"),
        ("UEUY", "Salg af ydelser til andre EU-lande", None, "sales", "eu_services"),
        ("K25", "Købsmoms", "PURCHASE", "purchase", None),
    ],
)
def test_vat_codes_are_read_from_the_systems_naming(code, name, kind, direction, treatment):
    vat = checks.vat_of(code, "0", name, kind)
    assert (vat.direction, vat.treatment) == (direction, treatment)
    assert checks.vat_of("none") is None and checks.vat_of(None) is None
