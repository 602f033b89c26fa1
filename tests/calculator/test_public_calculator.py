"""The public calculator at /priser: no login, Danish first, HTMX recompute, works without JavaScript."""

import re

import pytest

from tests.test_web import INLINE_HANDLER, INLINE_SCRIPT, INLINE_STYLE

SHARED = "/priser?systems=e-conomic&systems=woocommerce&orders=500&addons=paymatch&billing=half-yearly"
HTMX = {"HX-Request": "true", "HX-Target": "result"}


def visible(html: str) -> str:
    """The visible text, whitespace collapsed (amounts carry a no-break space)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html).replace("\xa0", " "))


def text(response) -> str:
    return visible(response.get_data(as_text=True))


def result(response) -> str:
    """The visible text of the price panel only."""
    body = response.get_data(as_text=True)
    start = body.index('id="result"')
    return visible(body[start : body.index("</section>", start)])


def test_the_page_is_public_danish_and_linked_from_login_and_nav(client, catalogue):
    response = client.get("/priser")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Hvad koster din integration?" in page
    assert "Hvilke systemer vil du forbinde?" in page
    for group in ("Regnskab", "Webshop", "Abonnement", "Indløser", "Kasse", "Lager (WMS)", "Filupload"):
        assert f"<legend>{group}</legend>" in page, group
    assert 'href="/priser"' in client.get("/login").get_data(as_text=True)  # nav and the login page
    assert "Se hvad din integration koster" in client.get("/login").get_data(as_text=True)
    assert (
        not INLINE_SCRIPT.search(page) and not INLINE_HANDLER.search(page) and not INLINE_STYLE.search(page)
    )


def test_english_is_selectable(client, catalogue):
    client.post("/language", data={"language": "en", "next": "/priser"})
    page = text(client.get("/priser?systems=e-conomic&systems=shopify&orders=100&addons=mapping"))
    assert "What does your integration cost?" in page
    assert "Mapping module" in page and "Your own field mappings and filters" in page


def test_a_shared_address_shows_its_selection_and_price(client, catalogue):
    response = client.get(SHARED)
    page = response.get_data(as_text=True)
    assert re.search(r'value="e-conomic" checked', page) and re.search(r'value="woocommerce" checked', page)
    assert 'value="half-yearly" checked' in page and 'value="paymatch" checked' in page
    assert 'id="orders-number" name="orders"' in page and 'value="500"' in page
    visible = text(response)
    # Standard 299 + e-conomic 99 + WooCommerce 99 = 497; minus 10 % half-yearly = 447,30 a month.
    assert "447,30 kr. om måneden ekskl. moms" in visible
    assert "Abonnement Standard, op til 500 ordrer om måneden 299,00 kr." in visible
    assert "I alt pr. måned ved månedlig betaling 497,00 kr." in visible
    assert "(2.683,80 kr. hvert halve år)" in visible
    # PayMatch needs an acquirer: it is explained and left out of the price, not silently added.
    assert "PayMatch kræver et system af typen “Indløser”: Clearhaus, Stripe, Nets (Nexi)." in visible
    # The share link is the same canonical address.
    assert f'href="{SHARED.replace("&", "&amp;")}"' in page


def test_htmx_recompute_answers_with_the_result_only_and_pushes_the_address(client, catalogue):
    response = client.get(SHARED + "&orders_was=500&slider=17", headers=HTMX)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in body and 'id="result"' in body
    assert response.headers["HX-Push-Url"] == SHARED
    assert "HX-Request" in response.headers["Vary"]
    # The volume did not move: neither control is swapped; the state the form keeps is.
    assert 'id="orders-slider"' not in body and 'id="orders-number"' not in body
    assert 'id="orders-was" name="orders_was" value="500" hx-swap-oob="true"' in body


def test_moving_the_slider_updates_the_number_field_and_vice_versa(client, catalogue):
    base = "/priser?systems=e-conomic&systems=woocommerce"
    # Slider position 20 is 1.000 orders (the stops: 10…100, 150…500, 600…2.000, 3.000…).
    body = client.get(base + "&orders=500&orders_was=500&slider=20", headers=HTMX).get_data(as_text=True)
    assert re.search(r'id="orders-number"[^>]*value="1000"[^>]*hx-swap-oob', body, re.S)
    assert 'id="orders-slider"' not in body  # the prospect's hand is on it
    assert "Plus" in body
    body = client.get(base + "&orders=90&orders_was=500&slider=17", headers=HTMX).get_data(as_text=True)
    assert re.search(r'id="orders-slider"[^>]*value="8"[^>]*hx-swap-oob', body, re.S)
    assert 'id="orders-number"' not in body
    assert "Start" in body


def test_without_javascript_the_submit_button_recomputes_onto_the_clean_address(client, catalogue):
    response = client.get(
        "/priser?systems=e-conomic&systems=shopify&orders=250&slider=20&orders_was=250&billing=monthly&vat="
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/priser?systems=e-conomic&systems=shopify&orders=1000"
    page = text(client.get(response.headers["Location"]))
    assert "Abonnement Plus" in page


def test_the_total_incl_vat_is_one_click_away(client, catalogue):
    page = client.get("/priser?systems=e-conomic&systems=shopify&orders=100").get_data(as_text=True)
    link = re.search(r'<a href="([^"]+)" hx-get="[^"]+"[^>]*>Vis totalen inkl. moms</a>', page)
    assert link and "vat=incl" in link.group(1)
    response = client.get(link.group(1).replace("&amp;", "&"))
    visible = text(response)
    # 149 + 99 + 99 = 347 ex. VAT; 25 % VAT = 86,75; 433,75 incl.
    assert "Moms (25 %) 86,75 kr." in visible and "Første faktura inkl. moms 433,75 kr." in visible
    assert "433,75 kr. om måneden inkl. moms" in visible
    assert 'id="vat-state" name="vat" value="incl"' in response.get_data(as_text=True)


def test_fewer_than_two_systems_says_so(client, catalogue):
    assert "Vælg mindst to systemer for at se en pris" in text(client.get("/priser"))
    page = result(client.get("/priser?systems=dinero"))
    assert "Vælg mindst to systemer" in page and "Du har valgt ét." in page
    assert "kr. om måneden" not in page
    assert "Vælg det, du bruger." in text(client.get("/priser?systems=shopify&systems=stripe"))


@pytest.mark.parametrize(
    ("query", "heading", "button", "reason"),
    [
        ("systems=uniconta&systems=shopify", "Denne kombination er lidt speciel",
         "Kontakt os om denne kombination", "Uniconta sættes op efter en kort snak"),
        ("systems=dinero&systems=ongoing-wms", "Denne kombination er lidt speciel",
         "Kontakt os om denne kombination", "Dinero fører ikke lager, så vi skal aftale"),
        ("systems=e-conomic&systems=shopify&orders=25000", "Denne kombination er lidt speciel",
         "Kontakt os om denne kombination", "Mere end 10.000 ordrer om måneden"),
        ("systems=billy&systems=shopify", "Ikke muligt endnu", "Giv mig besked, når det er muligt",
         "Vi er ved at bygge forbindelsen til Billy."),
    ],
)  # fmt: skip
def test_special_and_unavailable_combinations_show_no_price(
    client, catalogue, query, heading, button, reason
):
    page = result(client.get("/priser?" + query))
    assert heading in page and button in page and reason in page
    assert "kr. om måneden" not in page and "Anmod om et uforpligtende tilbud" not in page


def test_features_show_the_caveats_of_the_chosen_systems(client, catalogue):
    page = text(client.get("/priser?systems=dinero&systems=shopify&orders=100"))
    assert "Lagersynkronisering til webshoppen Dinero: Dinero fører ikke lager" in page
    assert "Dinero: Dinero understøtter ikke OSS" in page
    page = text(client.get("/priser?systems=e-conomic&systems=shopify&orders=100"))
    assert "Dinero" not in page.split("Det får du")[1]


def test_going_back_in_history_gets_the_full_page(client, catalogue):
    response = client.get(SHARED, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in response.get_data(as_text=True)


def test_garbage_in_the_address_is_ignored(client, catalogue):
    response = client.get(
        "/priser?systems=nope&systems=e-conomic&systems=shopify&orders=lots&qty-extra-economic=x"
    )
    assert response.status_code == 200
    assert "Abonnement Standard" in text(response)  # the default volume: 250 orders


def test_an_empty_catalogue_is_explained(client):
    assert "Prislisten bliver opdateret" in text(client.get("/priser"))


def test_a_system_priced_by_agreement_shows_no_price_on_its_tile(client, catalogue):
    page = client.get("/priser").get_data(as_text=True)
    tile = page[page.index('value="uniconta"') :].split("</label>", 1)[0]
    assert "efter aftale" in tile and "kr./md." not in tile
    other = page[page.index('value="e-conomic"') :].split("</label>", 1)[0]
    assert "kr./md." in other  # the others keep theirs
