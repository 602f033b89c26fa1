"""The staff side in the support console: the quote inbox and the price-catalogue editor, all audited."""

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, PriceRule, PriceSystem, PriceTier, QuoteRequest
from tests.calculator.test_public_calculator import text
from tests.calculator.test_quote_requests import PROSPECT, QUOTE
from tests.conftest import login
from tests.test_web import INLINE_HANDLER, INLINE_SCRIPT, INLINE_STYLE


@pytest.fixture
def quote(app, catalogue, db):
    prospect = app.test_client()
    assert prospect.post(QUOTE, data=PROSPECT).status_code == 302
    return db.session.scalar(select(QuoteRequest))


def system(db, slug) -> PriceSystem:
    return db.session.scalar(select(PriceSystem).where(PriceSystem.slug == slug))


def events(db, action):
    return db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    ).all()


STAFF_PAGES = [
    "/support/quotes",
    "/support/quotes/{id}",
    "/support/catalogue/systems",
    "/support/catalogue/tiers/new",
    "/support/catalogue/settings",
    "/support/catalogue/log",
]


def test_customers_get_403_and_visitors_are_sent_to_login(app, owner_client, quote, db):
    for path in STAFF_PAGES:
        assert owner_client.get(path.format(id=quote.id)).status_code == 403, path
    assert owner_client.post(f"/support/quotes/{quote.id}", data={"status": "won"}).status_code == 403
    assert owner_client.post("/support/catalogue/tiers/new", data={"max_orders": 1}).status_code == 403
    tier = db.session.scalar(select(PriceTier))
    assert owner_client.post(f"/support/catalogue/tiers/{tier.id}/delete").status_code == 403
    visitor = app.test_client()
    assert visitor.get("/support/quotes").headers["Location"] == "/login?next=/support/quotes"


def test_the_console_links_to_the_inbox_and_the_catalogue(staff_client, quote):
    page = staff_client.get("/support").get_data(as_text=True)
    assert 'href="/support/quotes"' in page and 'href="/support/catalogue"' in page
    assert "Tilbudsforespørgsler" in page and '<span class="count">1</span>' in page


def test_the_inbox_lists_requests_and_filters_by_status(staff_client, quote):
    page = text(staff_client.get("/support/quotes"))
    assert "Cykelbutikken ApS" in page and "e-conomic, Clearhaus" in page and "806,40 kr." in page
    response = staff_client.get(
        "/support/quotes?status=won", headers={"HX-Request": "true", "HX-Target": "quote-list"}
    )
    assert "<html" not in response.get_data(as_text=True)
    assert "Ingen tilbudsforespørgsler her." in text(response)


def test_status_and_notes_change_is_audited(staff_client, staff, quote, db):
    detail = text(staff_client.get(f"/support/quotes/{quote.id}"))
    assert "Mette Jensen" in detail and "Vi har to butikker." in detail and "7.828,40 kr." in detail
    response = staff_client.post(
        f"/support/quotes/{quote.id}", data={"status": "contacted", "notes": "Ringet op, sender tilbud."}
    )
    assert response.status_code == 302
    db.session.refresh(quote)
    assert quote.status == "contacted" and quote.updated_at is not None
    (event,) = events(db, "quote_request.updated")
    assert event.changes == {
        "status": {"before": "new", "after": "contacted"},
        "notes": {"before": "", "after": "Ringet op, sender tilbud."},
    }
    assert event.actor_id == staff.id and event.account_id is None
    staff_client.post(
        f"/support/quotes/{quote.id}", data={"status": "won", "notes": "Ringet op, sender tilbud."}
    )
    assert [e.changes for e in events(db, "quote_request.updated")][-1] == {
        "status": {"before": "contacted", "after": "won"}
    }
    assert "Vundet" in text(staff_client.get("/support/quotes?status=won"))


def test_a_price_change_is_audited_and_on_the_public_page_at_once(app, staff_client, staff, catalogue, db):
    public = app.test_client()
    url = "/priser?systems=e-conomic&systems=shopify&orders=100"
    assert "Modul: e-conomic 99,00 kr." in text(public.get(url))
    economic = system(db, "e-conomic")
    form = text(staff_client.get(f"/support/catalogue/systems/{economic.id}"))
    assert "Forbehold for e-conomic" in form and "Kun når fakturaen bogføres automatisk." in form
    response = staff_client.post(
        f"/support/catalogue/systems/{economic.id}",
        data={
            "name": "e-conomic",
            "slug": "e-conomic",
            "kind": "accounting",
            "monthly_price": "129,50",
            "setup_price": "1.495",
            "setup": "optional",
            "delivery_days": "3",
            "description": economic.description,
            "description_en": economic.description_en,
            "position": "0",
            "active": "y",
        },
    )
    assert response.status_code == 302, text(response)
    (event,) = events(db, "catalogue.system.updated")
    assert event.changes == {"monthly_price": {"before": "99.00", "after": "129.50"}}
    assert event.actor_id == staff.id
    assert "Modul: e-conomic 129,50 kr." in text(public.get(url))
    assert "catalogue.system.updated" in text(staff_client.get("/support/catalogue/log"))


def test_switching_a_system_off_hides_it(app, staff_client, catalogue, db):
    zettle = system(db, "zettle")
    form = {
        c.key: getattr(zettle, c.key) for c in PriceSystem.__table__.columns if c.key not in ("id", "active")
    }
    form = {key: str(value) for key, value in form.items()}
    assert staff_client.post(f"/support/catalogue/systems/{zettle.id}", data=form).status_code == 302
    assert 'value="zettle"' not in app.test_client().get("/priser").get_data(as_text=True)
    (event,) = events(db, "catalogue.system.updated")
    assert event.changes == {"active": {"before": True, "after": False}}


def test_tiers_are_added_checked_and_deleted(app, staff_client, catalogue, db):
    response = staff_client.post(
        "/support/catalogue/tiers/new",
        data={"name": "Enterprise", "max_orders": "50000", "monthly_price": "500"},
    )
    assert response.status_code == 400
    assert "Et trin til flere ordrer må ikke koste mindre end et til færre" in text(response)
    response = staff_client.post(
        "/support/catalogue/tiers/new",
        data={"name": "Enterprise", "max_orders": "50000", "monthly_price": "1.999"},
    )
    assert response.status_code == 302
    (event,) = events(db, "catalogue.tier.created")
    assert event.changes["max_orders"] == {"before": None, "after": 50000}
    page = text(app.test_client().get("/priser?systems=e-conomic&systems=shopify&orders=25000"))
    assert "Abonnement Enterprise, op til 50.000 ordrer om måneden 1.999,00 kr." in page

    tier = db.session.scalar(select(PriceTier).where(PriceTier.max_orders == 50000))
    assert staff_client.post(f"/support/catalogue/tiers/{tier.id}/delete").status_code == 302
    (event,) = events(db, "catalogue.tier.deleted")
    assert event.changes["monthly_price"] == {"before": "1999.00", "after": None}
    assert "Denne kombination er lidt speciel" in text(
        app.test_client().get("/priser?systems=e-conomic&systems=shopify&orders=25000")
    )


def test_a_rule_can_be_removed_and_added(app, staff_client, catalogue, db):
    billy = system(db, "billy")
    rule = db.session.scalar(select(PriceRule).where(PriceRule.system_id == billy.id))
    staff_client.post(f"/support/catalogue/rules/{rule.id}/delete")
    assert events(db, "catalogue.rule.deleted")
    public = app.test_client()
    assert "Din pris" in text(public.get("/priser?systems=billy&systems=shopify&orders=100"))

    shopify = system(db, "shopify")
    response = staff_client.post(
        "/support/catalogue/rules/new",
        data={
            "system_id": billy.id,
            "other_system_id": shopify.id,
            "outcome": "special",
            "note": "Kun via aftale",
        },
    )
    assert response.status_code == 302
    page = text(public.get("/priser?systems=billy&systems=shopify&orders=100"))
    assert "Denne kombination er lidt speciel" in page and "Kun via aftale" in page
    assert "Din pris" in text(public.get("/priser?systems=billy&systems=woocommerce&orders=100"))
    same = staff_client.post(
        "/support/catalogue/rules/new",
        data={"system_id": billy.id, "other_system_id": billy.id, "outcome": "special"},
    )
    assert same.status_code == 400 and "Vælg et andet system, eller intet." in text(same)


def test_a_caveat_added_to_a_system_shows_under_what_you_get(app, staff_client, catalogue, db):
    from portal.models import PriceFeature

    woo = system(db, "woocommerce")
    feature = db.session.scalar(select(PriceFeature).where(PriceFeature.slug == "stock"))
    prefilled = staff_client.get(f"/support/catalogue/caveats/new?system_id={woo.id}").get_data(as_text=True)
    assert f'<option selected value="{woo.id}">' in prefilled
    response = staff_client.post(
        "/support/catalogue/caveats/new",
        data={"feature_id": feature.id, "system_id": woo.id, "note": "Kun for simple varer.", "note_en": ""},
    )
    assert response.status_code == 302
    assert events(db, "catalogue.caveat.created")
    page = text(app.test_client().get("/priser?systems=e-conomic&systems=woocommerce&orders=100"))
    assert "Lagersynkronisering til webshoppen WooCommerce: Kun for simple varer." in page
    twice = staff_client.post(
        "/support/catalogue/caveats/new", data={"feature_id": feature.id, "system_id": woo.id, "note": "Igen"}
    )
    assert "Denne funktion har allerede et forbehold for dette system." in text(twice)


def test_add_on_and_discount_changes(app, staff_client, catalogue, db):
    response = staff_client.post(
        "/support/catalogue/addons/new",
        data={
            "name": "Ekstra shop",
            "name_en": "Extra shop",
            "slug": "extra-shop",
            "monthly_price": "99",
            "setup_price": "0",
            "delivery_days": "0",
            "max_quantity": "5",
            "requires_kind": "webshop",
            "requires_system_id": "",
            "description": "Endnu en webshop på samme abonnement.",
            "position": "9",
            "active": "y",
        },
    )
    assert response.status_code == 302, text(response)
    response = staff_client.post(
        "/support/catalogue/settings", data={"half_yearly_discount_percent": "15", "vat_percent": "25"}
    )
    assert response.status_code == 302
    (event,) = events(db, "catalogue.settings.updated")
    assert event.changes == {"half_yearly_discount_percent": {"before": "10.00", "after": "15.00"}}
    page = text(
        app.test_client().get(
            "/priser?systems=e-conomic&systems=shopify&orders=100&qty-extra-shop=2&billing=half-yearly"
        )
    )
    assert "Ekstra shop × 2 198,00 kr." in page
    assert "Rabat ved halvårlig betaling (15 %) -81,75 kr." in page  # (149 + 99 + 99 + 198) x 15 %


def test_editor_refuses_bad_input_in_danish(staff_client, catalogue, db):
    response = staff_client.post(
        "/support/catalogue/systems/new",
        data={"name": "", "slug": "Shopify Plus", "kind": "webshop", "monthly_price": "12,345",
              "setup_price": "", "setup": "optional", "delivery_days": "to", "position": "0"},
    )  # fmt: skip
    assert response.status_code == 400
    page = text(response)
    assert "Udfyld dette felt." in page
    assert "Brug små bogstaver, tal og bindestreger" in page
    assert "Skriv et beløb som 1.495 eller 99,50." in page
    assert "Skriv et helt tal." in page
    response = staff_client.post(
        "/support/catalogue/systems/new",
        data={"name": "Shopify 2", "slug": "shopify", "kind": "webshop", "monthly_price": "1",
              "setup_price": "0", "setup": "optional", "delivery_days": "1", "position": "0"},
    )  # fmt: skip
    assert "Denne nøgle bruges allerede af Shopify." in text(response)
    assert events(db, "catalogue.system.created") == []


def test_every_staff_page_renders_without_inline_script_or_style(staff_client, quote, db):
    paths = [
        f"/support/quotes/{quote.id}",
        "/support/quotes",
        "/support/catalogue/settings",
        "/support/catalogue/log",
    ]
    for section in ("systems", "tiers", "addons", "features", "caveats", "rules"):
        paths += [
            f"/support/catalogue/{section}",
            f"/support/catalogue/{section}/new",
            f"/support/catalogue/{section}/1",
        ]
    for path in paths:
        response = staff_client.get(path)
        assert response.status_code == 200, path
        page = response.get_data(as_text=True)
        assert not INLINE_SCRIPT.search(page) and not INLINE_HANDLER.search(page), path
        assert not INLINE_STYLE.search(page), path
    assert staff_client.get("/support/catalogue").headers["Location"] == "/support/catalogue/systems"
    assert staff_client.get("/support/catalogue/nope").status_code == 404
    assert staff_client.post("/support/catalogue/systems/1/delete").status_code == 405


def test_staff_login_lands_in_the_console(client, staff):
    login(client, staff.email)
    assert client.get("/").headers["Location"] == "/support"
