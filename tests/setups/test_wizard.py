"""The setup wizard over HTTP, against the real sandboxes: what a customer clicks, and what the
accounting system and the audit log end up with."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from portal.models import AccountingSetup, AuditEvent, Connection, SandboxRecord
from tests.conftest import connect_sandbox

HTMX = {"HX-Request": "true"}


def consent(client, location, answer):
    """Play the customer on the sandbox's consent page; returns our callback path with its query."""
    url = urlsplit(location)
    page = client.get(location)
    assert page.status_code == 200
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    granted = client.post(url.path, data={**query, **answer})
    assert granted.status_code == 302
    back = urlsplit(granted.headers["Location"])
    return f"{back.path}?{back.query}"


def connect_via_wizard(client, system_key):
    start = client.get(f"/setup/connect/{system_key}?sandbox=1")
    assert start.status_code == 302
    answer = {"e-conomic": {"agreement": "demo", "action": "accept"}, "dinero": {"answer": "accept"}}[
        system_key
    ]
    callback = consent(client, start.headers["Location"], answer)
    assert callback.startswith(f"/setup/connect/{system_key}/callback?")
    done = client.get(callback)
    assert done.status_code == 302, done.get_data(as_text=True)
    return done.headers["Location"]


def fill_every_template(client, db, setup):
    """Choose, field by field, the first offered value the wizard accepts, as a customer clicking through
    would (a refused one is not saved and says why; the customer picks the next)."""
    for template in setup.templates:
        card = client.get(f"/setup/{setup.id}/templates/{template.id}", headers=HTMX).get_data(as_text=True)
        assert "<html" not in card  # an HTMX partial
        values = {}
        for name in _field_names(card):
            for option in _options(card, name):
                data = {**values, name: option}
                response = client.post(f"/setup/{setup.id}/templates/{template.id}", data=data, headers=HTMX)
                assert response.status_code == 200, response.get_data(as_text=True)
                if 'class="error"' not in response.get_data(as_text=True):
                    values[name] = option
                    break
            else:
                raise AssertionError(f"{template.kind}/{template.zone}: no {name} is accepted")


def _field_names(card):
    return re.findall(r'<select id="[^"]+" name="([^"]+)"', card)


def _options(card, name):
    """The field's real options (not the empty one), in the order shown."""
    select = card.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
    return [value for value in re.findall(r'<option value="([^"]*)"', select) if value]


def test_economic_from_connect_to_activation(owner_client, owner, db):
    assert "Prøv med e-conomic-sandkassen" in owner_client.get("/setup").get_data(as_text=True)
    location = connect_via_wizard(owner_client, "e-conomic")
    connection = db.session.scalar(select(Connection))
    assert location == f"/setup/connections/{connection.id}"
    assert connection.credentials == {
        "agreement_grant_token": connection.credentials["agreement_grant_token"]
    }
    page = owner_client.get(location).get_data(as_text=True)
    assert "Nordlys Webshop ApS" in page and "Brug denne organisation" in page
    assert connection.credentials["agreement_grant_token"] not in page  # secrets are never shown

    setup = db.session.scalar(select(AccountingSetup))
    assert owner_client.post(f"/setup/{setup.id}/select", data={"selected": "on"}).status_code == 302
    db.session.expire_all()
    assert [(t.kind, t.values) for t in setup.templates] == [
        ("invoice", {}),
        ("goods", {}),
        ("freight", {}),
        ("no_vat", {}),
        ("oss", {}),
        ("payments", {}),
    ]

    # Activation is refused, with one message per missing value (the VAT-free template is optional).
    refused = owner_client.post(f"/setup/{setup.id}/activate", follow_redirects=True).get_data(as_text=True)
    assert "Bogføringsopsætningen kan ikke aktiveres endnu" in refused
    for message in ("Faktura: vælg layout.", "Varer: vælg varegruppe.", "Betalinger: vælg kassekladde."):
        assert message in refused
    assert "Momsfri linjer (gavekort, afrunding): vælg" not in refused
    db.session.expire_all()
    assert not setup.active

    fill_every_template(owner_client, db, setup)
    page = owner_client.get(f"/setup/{setup.id}/templates/{setup.template('goods').id}").get_data(
        as_text=True
    )
    assert "Salg af varer, indland" in page  # where the money lands, per zone, read-only
    activated = owner_client.post(f"/setup/{setup.id}/activate", follow_redirects=True).get_data(as_text=True)
    assert "Bogføringsopsætningen er aktiv." in activated
    db.session.expire_all()
    assert setup.active and not setup.auto_book

    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions[:2] == ["connection.created", "setup.selected"]
    # one audited save per field chosen (layout, then payment terms)
    assert actions.count("template.invoice.updated") == 2 and actions[-1] == "setup.activated"


def test_a_value_the_system_does_not_offer_is_refused(owner_client, account, owner, db):
    setup = connect_sandbox(account, "e-conomic").setups[0]
    owner_client.post(f"/setup/{setup.id}/select", data={"selected": "on"})
    template = setup.template("goods")
    response = owner_client.post(f"/setup/{setup.id}/templates/{template.id}", data={"product_group": "999"})
    assert response.status_code == 400
    assert "e-conomic har ikke (længere) dette valg." in response.get_data(as_text=True)
    db.session.expire_all()
    assert template.values == {}


def test_a_choice_deleted_in_the_system_is_flagged_and_blocks_activation(owner_client, account, owner, db):
    setup = connect_sandbox(account, "dynaccount").setups[0]
    owner_client.post(f"/setup/{setup.id}/select", data={"selected": "on"})
    fill_every_template(owner_client, db, setup)
    db.session.expire_all()
    chosen = setup.template("goods", "domestic").values["account"]
    # Someone deletes that account in Dynaccount itself.
    record = db.session.scalar(
        select(SandboxRecord)
        .where(SandboxRecord.system == "dynaccount", SandboxRecord.collection == "account")
        .where(SandboxRecord.document["account_id_"].as_string() == chosen)
    )
    assert record is not None
    db.session.delete(record)
    db.session.commit()
    owner_client.post(f"/setup/{setup.id}/refresh")

    card = owner_client.get(f"/setup/{setup.id}/templates/{setup.template('goods', 'domestic').id}")
    assert "findes ikke længere i Dynaccount" in card.get_data(as_text=True)
    refused = owner_client.post(f"/setup/{setup.id}/activate", follow_redirects=True).get_data(as_text=True)
    assert "findes ikke længere i Dynaccount; vælg en anden." in refused
    db.session.expire_all()
    assert not setup.active


def test_dinero_explains_the_unpaid_organisation_at_connect_time_and_makes_no_setup_for_it(
    owner_client, owner, db
):
    location = connect_via_wizard(owner_client, "dinero")
    setups = db.session.scalars(select(AccountingSetup)).all()
    assert [(s.name, s.unusable_reason) for s in setups] == [("Demo Webshop ApS", None)]
    # Explained where the customer lands, in Danish; nothing for it on the dashboard.
    page = owner_client.get(location).get_data(as_text=True)
    assert (
        "Hobbyklubben i Dinero kan ikke bruges, så der er ikke oprettet en bogføringsopsætning til den"
        in page
    )
    assert (
        "Dinero giver kun integrationer adgang til virksomheder med et betalt abonnement (Dinero Pro)" in page
    )
    dashboard = owner_client.get("/dashboard").get_data(as_text=True)
    assert "Demo Webshop ApS" in dashboard and "Hobbyklubben" not in dashboard
    assert "Kan ikke bruges" not in dashboard


def test_a_grant_reaching_only_unusable_organisations_is_refused_with_the_reason(
    owner_client, account, owner, db
):
    from portal.sandbox import dinero as dinero_sandbox

    pro = dinero_sandbox.ORGANIZATIONS[dinero_sandbox.PRO_ORG]  # Dinero Pro cancelled, as it were
    pro["IsPro"] = False
    try:
        start = owner_client.get("/setup/connect/dinero?sandbox=1")
        callback = consent(owner_client, start.headers["Location"], {"answer": "accept"})
        refused = owner_client.get(callback, follow_redirects=True).get_data(as_text=True)
    finally:
        pro["IsPro"] = True
    assert "Demo Webshop ApS, Hobbyklubben i Dinero kan ikke bruges" in refused
    assert "Dinero Pro" in refused
    assert db.session.scalars(select(Connection)).all() == []
    assert db.session.scalars(select(AccountingSetup)).all() == []


def test_the_dynaccount_sandbox_shows_its_demo_keys_on_its_own_connect_form(app, owner_client, owner, db):
    from portal.sandbox import dynaccount as dynaccount_sandbox

    sandbox_form = owner_client.get("/setup/connect/dynaccount?sandbox=1").get_data(as_text=True)
    assert "Dens demovirksomhed har disse nøgler" in sandbox_form
    assert (
        dynaccount_sandbox.DEMO_API_KEY in sandbox_form and dynaccount_sandbox.DEMO_API_SECRET in sandbox_form
    )
    real_form = owner_client.get("/setup/connect/dynaccount").get_data(as_text=True)
    assert "API-hemmelighed" in real_form and dynaccount_sandbox.DEMO_API_KEY not in real_form
    app.config["SANDBOX_ENABLED"] = False
    try:
        assert owner_client.get("/setup/connect/dynaccount?sandbox=1").status_code == 404
    finally:
        app.config["SANDBOX_ENABLED"] = True


def test_dynaccount_keys_are_checked_and_never_shown_again(owner_client, owner, db):
    form = owner_client.get("/setup/connect/dynaccount?sandbox=1").get_data(as_text=True)
    assert "API-hemmelighed" in form
    wrong = owner_client.post(
        "/setup/connect/dynaccount",
        data={"sandbox": "1", "api_id": "1000", "api_key": "0" * 40, "api_secret": "nope"},
    )
    assert wrong.status_code == 200 and "Dynaccount afviste forbindelsen" in wrong.get_data(as_text=True)
    assert db.session.scalars(select(Connection)).all() == []
    from tests.conftest import sandbox_connect_params

    keys = sandbox_connect_params("dynaccount")
    right = owner_client.post("/setup/connect/dynaccount", data={"sandbox": "1", **keys})
    assert right.status_code == 302
    page = owner_client.get(right.headers["Location"]).get_data(as_text=True)
    assert keys["api_key"] not in page and keys["api_secret"] not in page


def test_reconnecting_renews_the_same_connection(owner_client, owner, db):
    connect_via_wizard(owner_client, "e-conomic")
    connection = db.session.scalar(select(Connection))
    owner_client.post(f"/setup/connections/{connection.id}/disconnect")
    db.session.expire_all()
    assert connection.status == "disabled" and connection.credentials == {}
    connect_via_wizard(owner_client, "e-conomic")
    db.session.expire_all()
    assert db.session.scalars(select(Connection)).all() == [connection]
    assert connection.status == "active" and connection.credentials


def test_auto_book_is_off_by_default_and_audited(owner_client, account, owner, db):
    setup = connect_sandbox(account, "e-conomic").setups[0]
    assert not setup.auto_book
    owner_client.post(f"/setup/{setup.id}/select", data={"selected": "on"})
    page = owner_client.get(f"/setup/{setup.id}").get_data(as_text=True)
    assert "som kladder" in page  # the page explains why drafts come first
    owner_client.post(f"/setup/{setup.id}/auto-book", data={"auto_book": "on"})
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "setup.auto_book"))
    assert event.changes == {"auto_book": {"before": False, "after": True}}


def test_the_callback_needs_the_session_that_started_it(app, owner_client, owner, db):
    assert "ikke startet fra denne browsersession" in owner_client.get(
        "/setup/connect/e-conomic/callback?token=demo", follow_redirects=True
    ).get_data(as_text=True)
    owner_client.get("/setup/connect/dinero?sandbox=1")
    assert "hører ikke til den forbindelse" in owner_client.get(
        "/setup/connect/dinero/callback?code=x&state=forged", follow_redirects=True
    ).get_data(as_text=True)
    assert db.session.scalars(select(Connection)).all() == []


def test_members_can_look_but_not_change(member_client, account, owner, db):
    setup = connect_sandbox(account, "e-conomic").setups[0]
    assert member_client.get(f"/setup/connections/{setup.connection_id}").status_code == 200
    assert member_client.post(f"/setup/{setup.id}/select", data={"selected": "on"}).status_code == 403
    assert member_client.get("/setup/connect/e-conomic?sandbox=1").status_code == 403


def test_real_systems_need_bogbro_registered(owner_client, owner):
    response = owner_client.get("/setup/connect/e-conomic", follow_redirects=True)
    assert "Bogbro er endnu ikke registreret hos e-conomic" in response.get_data(as_text=True)


@pytest.mark.parametrize("system_key", ["e-conomic", "dinero", "dynaccount"])
def test_a_slow_or_failing_system_shows_its_message_in_the_card(
    owner_client, account, owner, db, redis, system_key
):
    setup = next(s for s in connect_sandbox(account, system_key).setups if s.unusable_reason is None)
    owner_client.post(f"/setup/{setup.id}/select", data={"selected": "on"})
    prefix = {"e-conomic": "e-conomic", "dinero": "dinero", "dynaccount": "dynaccount"}[system_key]
    owner_client.put(f"/sandbox/{prefix}/_faults", json={"next": ["500"] * 10}, csrf=False)
    card = owner_client.get(f"/setup/{setup.id}/templates/{setup.templates[0].id}", headers=HTMX)
    body = card.get_data(as_text=True)
    assert "svarede ikke" in body and "Prøv igen" in body


@pytest.mark.parametrize(
    ("system", "offered"),
    [
        ("e-conomic", "Momsfrit salg (gavekort, afrunding)"),
        ("dinero", "1050 Salg af varer/ydelser u/moms · ingen momskode"),
        ("dynaccount", "1070 Momsfrit salg (gavekort, afrunding) · ingen momskode"),
    ],
)
def test_the_vat_free_template_is_optional_and_explained(owner_client, account, owner, db, system, offered):
    """Gift cards and the rounding line need a VAT-free target; the wizard offers it in every system, says
    what it is for, and does not hold activation back for it."""
    setup = next(s for s in connect_sandbox(account, system).setups if not s.unusable_reason)
    owner_client.post(f"/setup/{setup.id}/select", data={"selected": "on"})
    template = setup.template("no_vat")
    card = owner_client.get(f"/setup/{setup.id}/templates/{template.id}", headers=HTMX).get_data(as_text=True)
    assert "Momsfri linjer (gavekort, afrunding)" in card and "valgfri" in card
    assert "Kun nødvendig for ordrer med gavekort eller en afrundingslinje" in card
    assert f">{offered}</option>" in card
    page = owner_client.get(f"/setup/{setup.id}").get_data(as_text=True)
    assert "Momsfri linjer (gavekort, afrunding)" in page


def test_a_setup_from_before_the_vat_free_template_gets_it(owner_client, account, owner, db):
    """A setup selected before the template existed has no row for it: the pipeline's setup values and the
    wizard page cope, and the page (or selecting again) adds the row, empty."""
    from portal.pipeline.settings import setup_values
    from portal.setups import operations

    setup = connect_sandbox(account, "dinero").setups[0]
    operations.select_setup(setup, True)
    db.session.delete(setup.template("no_vat"))
    db.session.commit()
    db.session.expire_all()
    assert "no_vat" not in setup_values(setup) and setup.template("no_vat") is None

    operations.select_setup(setup, True)  # selected again
    assert setup.template("no_vat") is not None
    db.session.delete(setup.template("no_vat"))
    db.session.commit()

    page = owner_client.get(f"/setup/{setup.id}")
    assert page.status_code == 200
    db.session.expire_all()
    assert setup.template("no_vat").values == {}
    assert f"template-{setup.template('no_vat').id}" in page.get_data(as_text=True)


# --- OSS: a product group per EU country --------------------------------------------------------------------


def _oss_card(client, setup, template):
    return client.get(f"/setup/{setup.id}/templates/{template.id}", headers=HTMX).get_data(as_text=True)


def _set_sandbox_vat_rate(setup, code, rate):
    """What someone does in e-conomic itself: change a VAT code's rate (e.g. Finland still at 24 %)."""
    from decimal import Decimal

    from portal.extensions import db as _db
    from portal.sandbox.economic import Agreement

    agreement = Agreement(int(setup.external_id))
    vat_account = agreement.get("vat-accounts", code)
    agreement.put("vat-accounts", code, {**vat_account, "ratePercentage": Decimal(rate)})
    _db.session.commit()


def test_the_oss_template_is_optional_one_group_per_country_and_warns_about_a_wrong_rate(
    owner_client, account, owner, db
):
    setup = connect_sandbox(account, "e-conomic").setups[0]
    owner_client.post(f"/setup/{setup.id}/select", data={"selected": "on"})
    template = setup.template("oss")
    assert template is not None and template.values == {}

    card = _oss_card(owner_client, setup, template)
    assert "EU-salg til forbrugere (OSS)" in card and "valgfri" in card
    assert "Kun nødvendig, når OSS er slået til" in card and "OSS-SE, OSS-DE osv." in card
    assert '<details class="compact-template">' in card  # folded away: 26 rows
    assert len(_field_names(card)) == 26 and "Sverige" in card and "Danmark</label>" not in card
    assert ">OSS Finland</option>" in card and "– ingen –" in card

    # Choosing groups saves them; each row says where the money lands and at which VAT.
    groups = {c.label: c.value for c in operations_choices(setup, "product_groups")}
    url = f"/setup/{setup.id}/templates/{template.id}"
    saved = owner_client.post(
        url, data={"SE": groups["OSS Sverige"], "FI": groups["OSS Finland"]}, headers=HTMX
    )
    answer = saved.get_data(as_text=True)
    assert saved.status_code == 200 and "2 af 26 valgt" in answer
    assert "1230 Salg OSS Finland · Moms FI255 25,5 %" in answer and 'class="warning"' not in answer
    db.session.expire_all()
    assert template.values == {"SE": groups["OSS Sverige"], "FI": groups["OSS Finland"]}
    assert template.labels == {"SE": "OSS Sverige", "FI": "OSS Finland"}

    # Activation never waits for it.
    refused = owner_client.post(f"/setup/{setup.id}/activate", follow_redirects=True).get_data(as_text=True)
    assert "EU-salg til forbrugere (OSS): vælg" not in refused

    # Finland's group still carries 24 % in e-conomic (IEX's most common failure): the card says so.
    _set_sandbox_vat_rate(setup, "FI255", "24.00")
    owner_client.post(f"/setup/{setup.id}/refresh")
    card = _oss_card(owner_client, setup, template)
    assert '<details class="compact-template" open>' in card  # opened: there is something to see
    assert (
        "Varegruppens EU-salgskonto 1230 Salg OSS Finland har 24 % moms, men satsen i Finland er 25,5 % "
        "(siden 1. sep. 2024). Ret kontoens momskode i e-conomic"
    ) in card

    # The goods group for Sweden: its EU account is the reverse-charge one, no VAT. Saved, with a warning.
    saved = owner_client.post(url, data={"SE": groups["Varer"], "FI": groups["OSS Finland"]}, headers=HTMX)
    answer = saved.get_data(as_text=True)
    assert saved.status_code == 200
    assert (
        "Varegruppens EU-salgskonto 1020 Salg af varer, EU har ingen momskode, så salg til Sverige" in answer
    )
    db.session.expire_all()
    assert template.values["SE"] == groups["Varer"]

    # A group e-conomic does not offer is refused, and nothing changes.
    refused = owner_client.post(url, data={"SE": "999", "DE": groups["OSS Tyskland"]})
    assert refused.status_code == 400 and "e-conomic har ikke (længere) dette valg." in refused.get_data(
        as_text=True
    )
    db.session.expire_all()
    assert "DE" not in template.values


def operations_choices(setup, kind):
    from portal.setups import operations

    return operations.choices(setup, kind)


def test_a_setup_from_before_the_oss_template_gets_it_empty(owner_client, account, owner, db):
    """Existing e-conomic setups gain the row (empty) when the wizard shows them; nothing required breaks."""
    from portal.pipeline.settings import setup_values
    from portal.setups import operations

    setup = connect_sandbox(account, "e-conomic").setups[0]
    operations.select_setup(setup, True)
    db.session.delete(setup.template("oss"))
    db.session.commit()
    db.session.expire_all()
    assert setup.template("oss") is None and "oss" not in setup_values(setup)

    page = owner_client.get(f"/setup/{setup.id}")
    assert page.status_code == 200
    db.session.expire_all()
    assert setup.template("oss").values == {}
    text = page.get_data(as_text=True)
    assert f"template-{setup.template('oss').id}" in text and "EU-salg til forbrugere (OSS): vælg" not in text


# --- the payments journal --------------------------------------------------------------------------------


def test_the_payments_journal_lists_the_journals_and_warns_about_the_bookkeepers_entries(
    owner_client, account, owner, db
):
    from portal.setups.connections import connector_for

    setup = connect_sandbox(account, "e-conomic").setups[0]
    owner_client.post(f"/setup/{setup.id}/select", data={"selected": "on"})
    template = setup.template("payments")
    url = f"/setup/{setup.id}/templates/{template.id}"
    card = owner_client.get(url, headers=HTMX).get_data(as_text=True)
    assert ">Indbetalinger fra webshop</option>" in card  # e-conomic's existing journals to pick from
    assert "aldrig resten af kassekladden" in card  # the help says what is booked

    saved = owner_client.post(url, data={"journal": "2", "account": "5820"}, headers=HTMX)
    assert saved.status_code == 200 and 'class="warning"' not in saved.get_data(as_text=True)

    # The bookkeeper starts typing in that journal in e-conomic: the card warns once choices are re-read.
    connector = connector_for(setup.connection, setup.external_id)
    connector._send(
        "POST",
        "/journals/2/vouchers",
        {
            "accountingYear": {"year": connector._accounting_year(_today())},
            "journal": {"journalNumber": 2},
            "entries": {
                "financeVouchers": [
                    {"account": {"accountNumber": 5820}, "amount": 100, "date": _today().isoformat()}
                ]
            },
        },
    )
    owner_client.post(f"/setup/{setup.id}/refresh")
    card = owner_client.get(url, headers=HTMX).get_data(as_text=True)
    assert "Kassekladden indeholder 1 posteringer, som Bogbro ikke har lavet" in card
    assert "opret en i e-conomic" in card


def _today():
    from datetime import date

    return date.today()


def test_dinero_payments_offer_only_deposit_accounts_and_are_optional(owner_client, app, account, owner, db):
    """The deposit account a paid order's payment is booked to (DepositAccountNumber on "Add payment to
    invoice"): Dinero's own list of deposit accounts, never a revenue account; optional, so a shop without
    paid payment methods can activate without it."""
    from portal.setups import operations

    setup = next(s for s in connect_sandbox(account, "dinero").setups if not s.unusable_reason)
    owner_client.post(f"/setup/{setup.id}/select", data={"selected": "on"})
    template = setup.template("payments")
    url = f"/setup/{setup.id}/templates/{template.id}"
    card = owner_client.get(url, headers=HTMX).get_data(as_text=True)
    assert "Betalinger" in card and "Indbetalingskonto" in card and "valgfri" in card
    assert "Kun nødvendig, når en salgskildes indstillinger markerer betalingsmetoder som betalt" in card
    options = re.findall(r'<option value="(\d+)"', card.split('name="account"', 1)[1].split("</select>")[0])
    assert options == ["55000", "55010", "55020", "55030", "55100"]  # GET /v1/{org}/accounts/deposit

    refused = owner_client.post(url, data={"account": "1000"})  # a revenue account
    assert refused.status_code == 400
    assert "Dinero har ikke (længere) dette valg." in refused.get_data(as_text=True)
    assert owner_client.post(url, data={"account": "55010"}, headers=HTMX).status_code == 200
    db.session.expire_all()
    assert template.values == {"account": "55010"}
    assert owner_client.post(url, data={"account": ""}, headers=HTMX).status_code == 200  # emptied again
    db.session.expire_all()
    assert template.values == {}
    with app.test_request_context():
        assert not any("Betalinger" in message for message in operations.missing_values(setup))


def test_the_wizard_names_what_no_public_source_shows(owner_client, owner, db):
    """e-conomic's refund payout is unverified (portal/connectors/evidence/economic.py): its card says so,
    in Danish; Dinero's is documented, so its card names no guess."""

    page = owner_client.get("/setup").get_data(as_text=True)
    cards = re.findall(r'<section class="card system-card">(.*?)</section>', page, re.S)
    by_name = {re.search(r"<h3>(.*?)</h3>", card).group(1): card for card in cards}
    assert (
        "Registrering af udbetalingen af en refundering på kreditnotaen i e-conomic" in by_name["e-conomic"]
    )
    assert "gæt" in by_name["e-conomic"]
    assert "unverified-calls" not in by_name["Dinero"]


# --- the account checks (issue 14 §2), through the real sandboxes' charts ---------------------------------


def _setup_of(account, client, system):
    setup = next(s for s in connect_sandbox(account, system).setups if not s.unusable_reason)
    client.post(f"/setup/{setup.id}/select", data={"selected": "on"})
    return setup


DINERO_CASES = [
    # "Varer, Danmark" with the EU-business account (UEUV, 0 %)
    ("goods", "domestic", {"account": "1100"}, "UEUV", {"account": "1000"}),
    # "Momsfri linjer" with a sales account with VAT
    ("no_vat", "", {"account": "1000"}, "gavekort og afrunding må ikke have moms", {"account": "1900"}),
]
DYNACCOUNT_CASES = [
    # "Varesalg i Danmark" with 5800 Bank
    ("goods", "domestic", {"account": "5800"}, "statuskonto", {"account": "1010"}),
    # EU goods on the debtors' account
    ("goods", "eu", {"account": "5600"}, "statuskonto", {"account": "1020"}),
    # freight outside the EU on a purchase account (K25)
    ("freight", "world", {"account": "1310"}, "købsmoms", {"account": "1060"}),
    # the sales vouchers' receivable on a sales account
    (
        "invoice",
        "",
        {"journal": "1", "receivable": "1010", "vat_account": "6910"},
        "driftskonto",
        {"journal": "1", "receivable": "5600", "vat_account": "6910"},
    ),
]
ECONOMIC_CASES = [
    # payments on a revenue account; goods on an OSS group (25 % on reverse-charge EU sales)
    ("payments", "", {"journal": "2", "account": "1010"}, "driftskonto", {"journal": "2", "account": "5830"}),
    ("goods", "", {"product_group": "11"}, "EU:", {"product_group": "1"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("system", "kind", "zone", "wrong", "reason", "right"),
    [("dinero", *case) for case in DINERO_CASES]
    + [("dynaccount", *case) for case in DYNACCOUNT_CASES]
    + [("e-conomic", *case) for case in ECONOMIC_CASES],
)
def test_a_wrong_account_is_refused_with_the_reason_and_not_saved(
    owner_client, account, owner, db, system, kind, zone, wrong, reason, right
):
    setup = _setup_of(account, owner_client, system)
    template = setup.template(kind, zone)
    url = f"/setup/{setup.id}/templates/{template.id}"
    refused = owner_client.post(url, data=wrong)
    assert refused.status_code == 400
    assert reason in refused.get_data(as_text=True)
    card = owner_client.post(url, data=wrong, headers=HTMX).get_data(as_text=True)
    assert reason in card and "Ikke gemt" in card
    db.session.expire_all()
    assert template.values == {}
    saved = owner_client.post(url, data=right, headers=HTMX).get_data(as_text=True)
    assert 'class="error"' not in saved and "Gemt" in saved
    db.session.expire_all()
    assert template.values == right


def test_a_doubtful_account_is_saved_with_a_warning(owner_client, account, owner, db):
    setup = _setup_of(account, owner_client, "dinero")
    template = setup.template("goods", "domestic")
    url = f"/setup/{setup.id}/templates/{template.id}"
    card = owner_client.post(url, data={"account": "1050"}, headers=HTMX).get_data(as_text=True)  # no VAT
    assert 'class="warning"' in card and "momsfritaget" in card and "Gemt" in card
    db.session.expire_all()
    assert template.values == {"account": "1050"}


def test_every_system_shows_the_accounts_vat_code_beside_it(owner_client, account, owner, db):
    dinero = _setup_of(account, owner_client, "dinero")
    card = owner_client.get(
        f"/setup/{dinero.id}/templates/{dinero.template('goods', 'domestic').id}", headers=HTMX
    ).get_data(as_text=True)
    assert "1000 Salg af varer/ydelser m/moms · Moms U25 25 %" in card
    assert "1050 Salg af varer/ydelser u/moms · ingen momskode" in card
    dynaccount = _setup_of(account, owner_client, "dynaccount")
    card = owner_client.get(
        f"/setup/{dynaccount.id}/templates/{dynaccount.template('goods', 'domestic').id}", headers=HTMX
    ).get_data(as_text=True)
    assert "5800 Bank · ingen momskode" in card and "1010 Salg af varer, indland · Moms U25" in card
    economic = _setup_of(account, owner_client, "e-conomic")
    card = owner_client.get(
        f"/setup/{economic.id}/templates/{economic.template('payments').id}", headers=HTMX
    ).get_data(as_text=True)
    assert (
        "1010 Salg af varer, indland · Moms U25" in card
        and "5830 Betalingsformidler (clearing) · ingen" in card
    )


def test_a_refused_value_saved_before_the_checks_blocks_activation(owner_client, account, owner, db):
    setup = _setup_of(account, owner_client, "dinero")
    fill_every_template(owner_client, db, setup)
    db.session.expire_all()
    template = setup.template("no_vat")
    template.values = {"account": "1000"}  # as the wizard let it through before
    db.session.commit()
    refused = owner_client.post(f"/setup/{setup.id}/activate", follow_redirects=True).get_data(as_text=True)
    assert "Bogføringsopsætningen kan ikke aktiveres endnu" in refused
    assert "Momsfri linjer (gavekort, afrunding): 1000 Salg af varer/ydelser m/moms har momskoden" in refused
    db.session.expire_all()
    assert not setup.active
    card = owner_client.get(f"/setup/{setup.id}/templates/{template.id}", headers=HTMX).get_data(as_text=True)
    assert 'class="error"' in card and "har momskoden U25" in card  # the card says what to correct
    assert '<span class="tag error">skal rettes</span>' in card
