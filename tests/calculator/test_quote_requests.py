"""Quote requests: frozen price, mail to the prospect and to sales, field errors, spam protection."""

from decimal import Decimal

from sqlalchemy import func, select

from portal.i18n import format_amount
from portal.models import PriceSystem, QuoteRequest
from portal.queue import get_queue
from tests.calculator.test_public_calculator import text

SELECTION = "systems=e-conomic&systems=clearhaus&orders=1500&addons=paymatch&billing=half-yearly"
QUOTE = "/priser/tilbud?" + SELECTION
PROSPECT = {
    "name": "Mette Jensen",
    "company": "Cykelbutikken ApS",
    "cvr": "35 00 00 46",
    "email": "Mette@Cykelbutikken.dk",
    "phone": "+45 12 34 56 78",
    "message": "Vi har to butikker.",
}


def count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(QuoteRequest))


def test_the_calculator_links_to_the_quote_form_with_the_selection(client, catalogue):
    page = client.get("/priser?" + SELECTION).get_data(as_text=True)
    assert f'href="{QUOTE.replace("&", "&amp;")}">Anmod om et uforpligtende tilbud' in page
    form = text(client.get(QUOTE))
    assert "Anmod om et uforpligtende tilbud" in form
    assert "Systemer e-conomic, Clearhaus" in form and "Ordrer pr. måned 1.500" in form
    assert "Om måneden ekskl. moms 806,40 kr." in form  # (549 + 99 + 49 + 199) x 90 %


def test_a_quote_request_freezes_the_price_and_mails_prospect_and_sales(
    client, catalogue, db, mailbox, run_jobs
):
    response = client.post(QUOTE, data=PROSPECT)
    assert response.status_code == 302
    assert response.headers["Location"] == "/priser/tak?kind=quote"
    assert "Vi har modtaget din forespørgsel" in text(client.get(response.headers["Location"]))

    quote = db.session.scalar(select(QuoteRequest))
    assert (quote.kind, quote.status, quote.language) == ("quote", "new", "da")
    assert (quote.name, quote.company, quote.cvr) == ("Mette Jensen", "Cykelbutikken ApS", "35000046")
    assert quote.email == "mette@cykelbutikken.dk" and quote.phone == "+45 12 34 56 78"
    assert quote.selection == {
        "systems": ["e-conomic", "clearhaus"],
        "orders": 1500,
        "addons": {"paymatch": 1},
        "billing": "half-yearly",
        "setup": False,
    }
    assert quote.breakdown["per_month"] == "806.40"
    assert quote.breakdown["setup_total"] == "2990.00"  # Clearhaus and PayMatch are set up by us
    assert quote.breakdown["first_invoice"] == "7828.40"  # 6 x 806,40 + 2.990

    # A later price change does not touch what the prospect was shown.
    system = db.session.scalar(select(PriceSystem).where(PriceSystem.slug == "e-conomic"))
    system.monthly_price = Decimal("500")
    db.session.commit()
    db.session.refresh(quote)
    assert quote.breakdown["per_month"] == "806.40"

    run_jobs()  # the mails go out from the RQ worker, after the commit
    confirmation = mailbox.last("mette@cykelbutikken.dk")
    assert confirmation["Subject"] == "Vi har modtaget din anmodning om et tilbud"
    body = confirmation.get_content()
    assert "Hej Mette Jensen" in body
    assert "Systemer: e-conomic, Clearhaus" in body
    assert "Om måneden ekskl. moms, betalt halvårligt: 806,40\xa0kr." in body
    assert "Første faktura ekskl. moms: 7.828,40\xa0kr." in body
    # each one-off amount named once: the set-up lines, and their total only when there are several
    setup = quote.breakdown["setup_lines"]
    assert ("Opsætning, engangsbeløb" in body) == (len(setup) > 1)
    for line in setup:
        assert body.count(": " + format_amount(line["amount"])) == 1, body
    assert "/priser?" + SELECTION in body

    notification = mailbox.last("salg@bogbro.dk")
    assert notification["Subject"] == "Ny anmodning om tilbud fra Cykelbutikken ApS"
    body = notification.get_content()
    assert "Mette Jensen" in body and "35000046" in body and "Vi har to butikker." in body
    assert f"/support/quotes/{quote.id}" in body


def test_bad_input_gets_field_errors_and_nothing_is_saved(client, catalogue, db, redis):
    response = client.post(
        QUOTE, data={**PROSPECT, "name": " ", "cvr": "12345678", "email": "mette@", "phone": "12"}
    )
    assert response.status_code == 400
    page = text(response)
    assert "Udfyld dette felt." in page
    assert "Dette er ikke et gyldigt CVR-nummer" in page
    assert "Skriv en gyldig e-mailadresse." in page
    assert "Skriv et telefonnummer med mindst 8 cifre." in page
    assert 'value="Cykelbutikken ApS"' in response.get_data(as_text=True)  # what was typed is kept
    assert count(db) == 0
    assert get_queue().count == 0
    assert not list(redis.scan_iter("bogbro:quote-requests:*"))  # typos do not use up the limit


def test_cvr_and_phone_are_optional(client, catalogue, db):
    response = client.post(QUOTE, data={**PROSPECT, "cvr": "", "phone": "", "message": ""})
    assert response.status_code == 302
    assert db.session.scalar(select(QuoteRequest.cvr)) is None


def test_the_form_needs_its_csrf_token(client, catalogue, db):
    assert client.post(QUOTE, data=PROSPECT, csrf=False).status_code == 400
    assert count(db) == 0


def test_a_filled_honeypot_is_dropped_without_a_word(client, catalogue, db, run_jobs, mailbox):
    response = client.post(QUOTE, data={**PROSPECT, "website": "http://spam.example"})
    assert response.status_code == 302 and response.headers["Location"] == "/priser/tak?kind=quote"
    assert count(db) == 0
    run_jobs()
    assert mailbox.messages == []


def test_quote_requests_are_limited_per_ip(app, client, catalogue, db, redis):
    for _ in range(app.config["QUOTE_REQUESTS_PER_IP_PER_HOUR"]):
        assert client.post(QUOTE, data=PROSPECT).status_code == 302
    response = client.post(QUOTE, data=PROSPECT)
    assert response.status_code == 429
    page = text(response)
    assert "Du har sendt flere forespørgsler på kort tid. Prøv igen om 60 minutter" in page
    assert "salg@bogbro.dk" in page and 'value="Mette Jensen"' in response.get_data(as_text=True)
    assert count(db) == 5
    assert list(redis.scan_iter("bogbro:quote-requests:ip:*"))
    other = client.post(QUOTE, data=PROSPECT, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 302 and count(db) == 6


def test_a_special_combination_sends_a_contact_request(client, catalogue, db, mailbox, run_jobs):
    url = "/priser/tilbud?systems=uniconta&systems=shopify&orders=300"
    assert "Fortæl os om jeres opsætning" in text(client.get(url))
    assert client.post(url, data=PROSPECT).status_code == 302
    quote = db.session.scalar(select(QuoteRequest))
    assert quote.kind == "contact" and quote.breakdown["status"] == "special"
    assert quote.breakdown["per_month"] is None
    run_jobs()
    assert (
        mailbox.last("salg@bogbro.dk")["Subject"]
        == "Speciel kombination: Cykelbutikken ApS vil gerne tale med os"
    )


def test_an_unavailable_combination_offers_notify_me_with_an_e_mail_only(
    client, catalogue, db, mailbox, run_jobs
):
    url = "/priser/tilbud?systems=billy&systems=shopify"
    page = client.get(url).get_data(as_text=True)
    assert "Få besked, når det er muligt" in page
    assert 'name="email"' in page and 'name="company"' not in page
    response = client.post(url, data={"email": "ole@butik.dk"})
    assert response.headers["Location"] == "/priser/tak?kind=notify"
    quote = db.session.scalar(select(QuoteRequest))
    assert (quote.kind, quote.email, quote.name) == ("notify", "ole@butik.dk", "")
    run_jobs()
    assert mailbox.last("ole@butik.dk")["Subject"] == "Vi giver dig besked"
    assert "Vi er ved at bygge forbindelsen til Billy." in mailbox.last("ole@butik.dk").get_content()


def test_a_selection_without_a_price_cannot_be_requested(client, catalogue, db):
    response = client.post("/priser/tilbud?systems=e-conomic", data=PROSPECT)
    assert (
        response.status_code == 302 and response.headers["Location"] == "/priser?systems=e-conomic&orders=250"
    )
    assert count(db) == 0


def test_an_english_prospect_gets_an_english_confirmation(client, catalogue, db, mailbox, run_jobs):
    client.post("/language", data={"language": "en", "next": "/priser"})
    assert client.post(QUOTE, data=PROSPECT).status_code == 302
    assert db.session.scalar(select(QuoteRequest.language)) == "en"
    run_jobs()
    message = mailbox.last("mette@cykelbutikken.dk")
    assert message["Subject"] == "We have received your request for a quote"
    assert "A month ex. VAT, billed half-yearly: DKK\xa0806.40" in message.get_content()
    assert mailbox.last("salg@bogbro.dk")["Subject"].startswith(
        "Ny anmodning om tilbud"
    )  # sales reads Danish
