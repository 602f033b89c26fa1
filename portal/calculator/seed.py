"""A realistic Danish demo price catalogue for `flask seed-demo` (idempotent: what exists is left alone).

Prices are plausible DKK ex. VAT, in the shape of the Danish source_link hubs' price lists (a volume
subscription + a module per system + add-ons + paid set-up); they are demo data, not a price list.
"""

from decimal import Decimal

from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    PriceAddOn,
    PriceFeature,
    PriceFeatureNote,
    PriceRule,
    PriceSettings,
    PriceSystem,
    PriceTier,
)

D = Decimal

# slug, name, kind, per month, set-up, set-up required?, delivery days, description (da), description (en)
SYSTEMS = [
    ("e-conomic", "e-conomic", "accounting", D("99"), D("1495"), False, 3,
     "Fakturaer, kunder, varer og lager i Visma e-conomic.",
     "Invoices, customers, products and stock in Visma e-conomic."),
    ("dinero", "Dinero", "accounting", D("99"), D("1495"), False, 3,
     "Fakturaer, kunder og betalinger i Dinero.", "Invoices, customers and payments in Dinero."),
    ("dynaccount", "Dynaccount", "accounting", D("99"), D("1495"), False, 3,
     "Salg, refusioner og betalinger som bilag i en kassekladde, samt kunder, i Dynaccount.",
     "Sales, refunds and payments as vouchers in a journal, and customers, in Dynaccount."),
    ("billy", "Billy", "accounting", D("99"), D("1495"), False, 3, "", ""),
    ("uniconta", "Uniconta", "accounting", D("199"), D("4995"), True, 10,
     "Uniconta sættes altid op af os.", "We always set up Uniconta."),
    ("woocommerce", "WooCommerce", "webshop", D("99"), D("995"), False, 2,
     "Ordrer via webhooks, med det samme.", "Orders by webhook, at once."),
    ("shopify", "Shopify", "webshop", D("99"), D("995"), False, 2,
     "Ordrer, refusioner og Shopify Payments.", "Orders, refunds and Shopify Payments."),
    ("magento", "Magento", "webshop", D("199"), D("4995"), True, 15, "", ""),
    ("frisbii", "Frisbii (Reepay)", "subscription", D("149"), D("1995"), False, 5,
     "Abonnementsfakturaer og betalinger.", "Subscription invoices and payments."),
    ("clearhaus", "Clearhaus", "acquirer", D("49"), D("995"), True, 5,
     "Udbetalingsrapporter fra Clearhaus.", "Payout reports from Clearhaus."),
    ("stripe", "Stripe", "acquirer", D("49"), D("995"), True, 5,
     "Udbetalinger og gebyrer fra Stripe.", "Payouts and fees from Stripe."),
    ("nets", "Nets (Nexi)", "acquirer", D("49"), D("995"), True, 5,
     "Afregninger fra Nets.", "Settlements from Nets."),
    ("zettle", "Zettle", "pos", D("99"), D("995"), False, 3,
     "Dagens salg fra kassen som ét bilag.", "The day's till sales as one voucher."),
    ("ongoing-wms", "Ongoing WMS", "warehouse", D("149"), D("2495"), True, 10,
     "Forsendelser og lagertal fra lageret.", "Shipments and stock levels from the warehouse."),
    ("csv-xml", "CSV/XML-upload", "file", D("49"), D("995"), True, 5,
     "Upload salg som CSV- eller XML-filer; vi sætter formatet op.",
     "Upload sales as CSV or XML files; we set up the format."),
]  # fmt: skip

TIERS = [
    ("Start", 100, D("149")),
    ("Standard", 500, D("299")),
    ("Plus", 2000, D("549")),
    ("Pro", 10000, D("999")),
]

# slug, name, name_en, per month, one-off, delivery, max quantity, needs kind, needs system, read more
ADDONS = [
    ("paymatch", "PayMatch", "PayMatch", D("199"), D("1995"), 10, 1, "acquirer", None,
     "Udbetalinger fra indløseren afstemmes mod fakturaerne: udbetalingen på en mellemregningskonto, "
     "gebyrerne på en gebyrkonto, og hver betaling matchet til sin faktura. Kræver en indløser.",
     "Payouts from the acquirer are matched to the invoices: the payout to a clearing account, the fees to "
     "a fee account, and each payment to its invoice. Needs an acquirer."),
    ("mapping", "Mapningsmodul", "Mapping module", D("149"), D("995"), 5, 1, None, None,
     "Egne feltmapninger og filtre: præfikser, egne felter, ordrer der springes over.",
     "Your own field mappings and filters: prefixes, custom fields, orders to skip."),
    ("historic-import", "Historisk import", "Historic import", D("0"), D("1495"), 5, 1, None, None,
     "Vi overfører ordrer fra før aktiveringsdatoen. Lukkede regnskabsår kan ikke bogføres i.",
     "We transfer orders from before the activation date. Closed accounting years cannot be posted to."),
    ("extra-economic", "Ekstra e-conomic-forbindelse", "Extra e-conomic connection", D("100"), D("0"), 0, 20,
     None, "e-conomic",
     "Flere e-conomic-aftaler (fx ét selskab pr. land) på samme abonnement. 100 kr. pr. måned pr. stk.",
     "More e-conomic agreements (e.g. one company per country) on one subscription. 100 kr. a month each."),
]  # fmt: skip

# slug, name, name_en, needs kind, needs add-on
FEATURES = [
    ("invoices", "Ordrer bliver til fakturaer automatisk", "Orders become invoices automatically",
     None, None),
    ("credit-notes", "Kreditnotaer ved refusioner", "Credit notes for refunds", None, None),
    ("payments", "Betalinger registreres på fakturaen", "Payments registered on the invoice",
     None, None),
    ("email-invoice", "Faktura på e-mail til kunden", "Invoice e-mailed to the customer", None, None),
    ("customers-products", "Kunder og varer oprettes og matches",
     "Customers and products created and matched", None, None),
    ("oss", "EU-moms (OSS) for salg til forbrugere i EU", "EU VAT (OSS) for sales to EU consumers", "webshop",
     None),
    ("stock", "Lagersynkronisering til webshoppen", "Stock sync to the webshop", "webshop", None),
    ("subscriptions", "Abonnementsbetalinger bogføres", "Subscription payments booked", "subscription", None),
    ("pos-totals", "Dagsopgørelser fra kassen", "Daily till totals", "pos", None),
    ("wms", "Forsendelser og lagertal fra lageret", "Shipments and stock levels from the warehouse",
     "warehouse", None),
    ("file-import", "Salg fra CSV- og XML-filer", "Sales from CSV and XML files", "file", None),
    ("payouts", "Udbetalinger afstemt med fakturaerne (PayMatch)", "Payouts matched to invoices (PayMatch)",
     None, "paymatch"),
    ("mappings", "Egne feltmapninger og filtre", "Your own field mappings and filters", None, "mapping"),
    ("historic", "Ældre ordrer importeres", "Older orders imported", None, "historic-import"),
    ("log", "Overførselslog og besked ved fejl", "Transfer log and alerts on errors", None, None),
]  # fmt: skip

# feature, system, caveat (da), caveat (en)
NOTES = [
    ("stock", "dinero", "Dinero fører ikke lager, så der er intet lagertal at synkronisere.",
     "Dinero keeps no stock, so there are no stock levels to sync."),
    ("stock", "billy", "Billy fører ikke lager.", "Billy keeps no stock."),
    ("oss", "dinero", "Dinero understøtter ikke OSS; EU-salg til forbrugere må bogføres på anden vis.",
     "Dinero does not support OSS; EU sales to consumers must be booked another way."),
    ("email-invoice", "dinero", "Kun når fakturaen bogføres automatisk.",
     "Only when invoices are booked automatically."),
    ("email-invoice", "e-conomic", "Kun når fakturaen bogføres automatisk.",
     "Only when invoices are booked automatically."),
    ("credit-notes", "e-conomic", "Fakturaen skal være bogført, før den kan krediteres.",
     "The invoice must be booked before it can be credited."),
]  # fmt: skip

# system, other system, outcome, note (da), note (en)
RULES = [
    ("billy", None, "unavailable", "Vi er ved at bygge forbindelsen til Billy.",
     "We are building the connection to Billy."),
    ("uniconta", None, "special", "Uniconta sættes op efter en kort snak om jeres moduler og kontoplan.",
     "Uniconta is set up after a short talk about your modules and chart of accounts."),
    ("magento", None, "special",
     "Magento-butikker er meget forskellige, så vi ser på jeres, før vi giver en pris.",
     "Magento shops differ a lot, so we look at yours before we give a price."),
    ("ongoing-wms", "dinero", "special",
     "Dinero fører ikke lager, så vi skal aftale, hvordan lagerbevægelser fra lageret bogføres.",
     "Dinero keeps no stock, so we need to agree how warehouse movements are booked."),
]  # fmt: skip


def _get(model, **keys):
    return db.session.scalar(select(model).filter_by(**keys))


def seed_catalogue() -> None:
    """Create the demo catalogue's missing rows; existing rows (and staff's edits) are left alone."""
    if _get(PriceSettings) is None:
        db.session.add(PriceSettings(half_yearly_discount_percent=D("10"), vat_percent=D("25")))
    systems = {}
    for position, (slug, name, kind, monthly, setup, required, days, text, text_en) in enumerate(SYSTEMS):
        systems[slug] = _get(PriceSystem, slug=slug) or PriceSystem(
            slug=slug,
            name=name,
            kind=kind,
            monthly_price=monthly,
            setup_price=setup,
            setup="required" if required else "optional",
            delivery_days=days,
            description=text,
            description_en=text_en,
            position=position,
            active=True,
        )
        db.session.add(systems[slug])
    for name, limit, monthly in TIERS:
        if _get(PriceTier, max_orders=limit) is None:
            db.session.add(PriceTier(name=name, max_orders=limit, monthly_price=monthly))
    db.session.flush()
    addons = {}
    for position, row in enumerate(ADDONS):
        slug, name, name_en, monthly, setup, days, most, kind, system, text, text_en = row
        addons[slug] = _get(PriceAddOn, slug=slug) or PriceAddOn(
            slug=slug,
            name=name,
            name_en=name_en,
            monthly_price=monthly,
            setup_price=setup,
            delivery_days=days,
            max_quantity=most,
            requires_kind=kind,
            requires_system_id=systems[system].id if system else None,
            description=text,
            description_en=text_en,
            position=position,
            active=True,
        )
        db.session.add(addons[slug])
    db.session.flush()
    features = {}
    for position, (slug, name, name_en, kind, addon) in enumerate(FEATURES):
        features[slug] = _get(PriceFeature, slug=slug) or PriceFeature(
            slug=slug,
            name=name,
            name_en=name_en,
            requires_kind=kind,
            requires_addon_id=addons[addon].id if addon else None,
            position=position,
            active=True,
        )
        db.session.add(features[slug])
    db.session.flush()
    for feature, system, note, note_en in NOTES:
        keys = {"feature_id": features[feature].id, "system_id": systems[system].id}
        if _get(PriceFeatureNote, **keys) is None:
            db.session.add(PriceFeatureNote(**keys, note=note, note_en=note_en))
    for system, other, outcome, note, note_en in RULES:
        keys = {
            "system_id": systems[system].id,
            "other_system_id": systems[other].id if other else None,
            "outcome": outcome,
        }
        if _get(PriceRule, **keys) is None:
            db.session.add(PriceRule(**keys, note=note, note_en=note_en))
    db.session.commit()
