"""The shops page lists webshops and subscription systems alike: named "Salgskilder" (menu, heading, back
links, dashboard), every system's connect link working."""

import re


def test_the_page_is_named_for_webshops_and_subscription_systems(owner_client):
    page = owner_client.get("/shops")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<h1>Salgskilder</h1>" in html and "<h2>Forbind en salgskilde</h2>" in html
    assert 'href="/shops">Salgskilder</a>' in html  # the menu entry
    assert "Forbind en webshop eller et abonnementssystem" in html
    links = set(re.findall(r'href="(/shops/connect/[a-z]+)(?:\?sandbox=1)?"', html))
    assert {f"/shops/connect/{key}" for key in ("woocommerce", "stripe", "frisbii")} <= links
    for link in links:
        answer = owner_client.get(link + "?sandbox=1")
        assert answer.status_code == 200, link
        assert "← Salgskilder" in answer.get_data(as_text=True), link
    assert "Salgskilder" in owner_client.get("/dashboard").get_data(as_text=True)
