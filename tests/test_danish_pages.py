"""Danish throughout: a customer with real data — transfers in every state with their step logs, a
preview, a change log, settings — fetches every customer page, and none shows English step names or reasons,
raw state names or `DKK`-style amounts. In English the same pages write `DKK 1,234.50` and day-month dates."""

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from portal.models import SupportSession, Transfer, utcnow
from portal.pipeline import source_links as pipeline_source_links
from tests.conftest import make_user
from tests.pipeline.conftest import feed, make_setup, make_source_link, order

# English the pipeline and the engine used to write into Danish pages, and raw keys that must be named
ENGLISH = [
    "Private customer",
    "Business customer",
    "matched on",
    "Domestic sale",
    "reverse charge",
    "Export outside",
    "The totals differ",
    "Totals differ",
    "Totals match",
    "Rounding line of",
    "Booked as",
    "retry requested",
    "Retry requested",
    "by reference",
    "The order's state",
    "not set to transfer",
    "registered",
    "refused",
    "the accounting system",
]
RAW_WORDS = re.compile(
    r"\b(customer|products|draft|book|booked|reused|skipped|needs_attention|processing|completed|"
    r"on-hold|pending|dynaccount|varegruppe \d+|None|True|False)\b"
)
# a step or outcome shown as its key (the accounting system's own error text may say "error": not checked)
RAW_CELL = re.compile(
    r"<td>\s*(?:<code>)?(decide|customer|products|order|draft|book|payment|mail|done|error|retry|"
    r"watchdog|ok|reused|skipped|waiting|sending|uncertain)(?:</code>)?\s*</td>"
)
DKK_AMOUNT = re.compile(r"\d\s?DKK\b|\bDKK\s?\d|\b\d+\.\d\d\s?(kr|DKK)")
SHORT_US_DATE = re.compile(r"\b\d{1,2}/\d{1,2}/\d{2}\b")
# the customer's pages (GET), with how to fill their ids; public pages of visitors are checked too
SKIPPED_ENDPOINTS = {
    "main.index",  # a redirect
    "main.healthz",
    "auth.login",  # redirects a signed-in user
    "auth.sign_up",  # redirects a signed-in user (tests/test_signup.py, in Danish)
    "auth.confirm_email",  # needs a mailed token (tests/test_signup.py)
    "metrics.metrics",  # for Prometheus, not a person (tests/test_metrics.py)
    "auth.forgot_password",
    "auth.reset_password",
    "auth.accept_invitation",
    "setups.connect",  # a handshake, answered by a redirect to the system
    "setups.callback",
    "shops.connect_shopify",
    "shops.shopify_callback",
    "calculator.request_quote",  # needs a calculation first (its own tests)
    "transfers.row",  # fragments of transfers.index / transfers.detail, checked there
    "transfers.live",
}


class _Text(HTMLParser):
    """The visible text of a page (what a person reads), without tags, attributes, scripts and styles."""

    def __init__(self):
        super().__init__()
        self.parts, self._hidden = [], 0

    def handle_starttag(self, tag, attrs):
        self._hidden += tag in ("script", "style", "pre", "code", "textarea")

    def handle_endtag(self, tag):
        self._hidden -= tag in ("script", "style", "pre", "code", "textarea") and self._hidden > 0

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


@pytest.fixture
def customer(app, db, account, owner, staff, owner_client, run_jobs):
    """An e-conomic setup and a WooCommerce shop with a transfer in every state, a change log and a
    support session that ended yesterday."""
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup)
    feed(source_link, order())  # done
    skipped = order(number="5002")
    skipped["status"] = "pending"
    feed(source_link, skipped)  # skipped: its state does not transfer
    feed(source_link, order(number="5003", total="560.00"))  # the totals differ
    run_jobs()
    goods = setup.template("goods")
    chosen = goods.values["product_group"]
    goods.values = {"product_group": "999"}  # deleted in e-conomic: a configuration error
    db.session.commit()
    feed(source_link, order(number="5004", items=[("Ny vare", "NY-01", 1, "100.00", "25.00")], shipping=[]))
    feed(source_link, order(number="5005", items=[("Ny vare", "NY-02", 1, "100.00", "25.00")], shipping=[]))
    run_jobs()
    goods.values = {"product_group": chosen}
    db.session.commit()
    retried = db.session.scalar(select(Transfer).where(Transfer.order_number == "5005"))
    assert owner_client.post(f"/transfers/{retried.id}/retry").status_code == 302  # pending again
    statuses = set(db.session.scalars(select(Transfer.status)))
    assert statuses == {"done", "skipped", "needs_attention", "pending"}, statuses

    # the change log: settings changed, the shop paused and resumed, an invitation
    settings = dict(source_link.settings, rounding_tolerance="0.25", oss=False)
    pipeline_source_links.update_settings(source_link, settings)
    pipeline_source_links.set_active(source_link, False)
    pipeline_source_links.set_active(source_link, True)
    owner_client.post("/settings", data={"name": "Kunde Omdøbt ApS", "cvr": "35 00 00 46"})
    visit = SupportSession(
        account_id=account.id, staff_user_id=staff.id, reason="Kunden ringede", started_at=utcnow()
    )
    visit.ended_at = utcnow() - timedelta(days=1)
    db.session.add(visit)
    make_user("kollega@kunde.dk", account, role="member", name="Karl Kollega")
    db.session.commit()
    return {"setup": setup, "source_link": source_link, "support": visit}


def _paths(app, customer) -> list[str]:
    setup, source_link = customer["setup"], customer["source_link"]
    ids = {
        "setup_id": [setup.id],
        "connection_id": [setup.connection_id],
        "shop_id": [source_link.connection_id],
        "source_link_id": [source_link.id],
        "session_id": [customer["support"].id],
        "transfer_id": [t.id for t in Transfer.query.order_by(Transfer.id)],
    }
    paths = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if "GET" not in rule.methods or rule.endpoint in SKIPPED_ENDPOINTS:
                continue
            if rule.rule.startswith(("/sandbox", "/static", "/support", "/webhooks")):
                continue
            if rule.arguments - set(ids) - {"template_id"}:
                continue
            if "template_id" in rule.arguments:
                paths += [
                    url_for(rule.endpoint, setup_id=setup.id, template_id=t.id) for t in setup.templates
                ]
                continue
            combos = [{}]
            for name in sorted(rule.arguments):
                combos = [{**c, name: value} for c in combos for value in ids[name]]
            paths += [url_for(rule.endpoint, **values) for values in combos]
    # the log filtered by every status, and the preview of a shop's order
    paths += [f"/transfers?status={status}" for status in ("done", "skipped", "needs_attention", "pending")]
    return sorted(set(paths))


def test_every_customer_page_is_danish(app, owner_client, customer):
    paths = _paths(app, customer)
    assert len(paths) > 20 and any(p.endswith("/preview") and p != "/transfers/preview" for p in paths)
    problems = []
    for path in paths:
        response = owner_client.get(path)
        if response.status_code != 200:
            problems.append(f"{path}: {response.status_code}")
            continue
        html = response.get_data(as_text=True)
        text = visible_text(html)
        found = [word for word in ENGLISH if word in text]
        found += sorted({m.group(0) for m in RAW_CELL.finditer(html)})
        found += sorted({m.group(0) for m in RAW_WORDS.finditer(text)})
        found += sorted({m.group(0) for m in DKK_AMOUNT.finditer(text)})
        if found:
            problems.append(f"{path}: {found}")
    assert not problems, "\n".join(problems)

    # what the pages say, in Danish: the steps, a reason, an amount, the change log, support's visit
    done = Transfer.query.filter_by(order_number="5001").one()
    detail = visible_text(owner_client.get(f"/transfers/{done.id}").get_data(as_text=True))
    assert "Kunde" in detail and "Bogføring" in detail and "Bogført som faktura" in detail
    differs = Transfer.query.filter_by(order_number="5003").one()
    detail = visible_text(owner_client.get(f"/transfers/{differs.id}").get_data(as_text=True))
    assert "salgskilden siger 560,00 kr." in detail and "549,00 kr." in detail
    preview = visible_text(owner_client.get(f"/transfers/{done.id}/preview").get_data(as_text=True))
    assert "Privatkunde, fundet ud fra e-mail." in preview and "Indenlandsk salg (DK)." in preview
    log = visible_text(owner_client.get("/settings/audit").get_data(as_text=True))
    assert "Salgskildens indstillinger ændret" in log and "Afrundingstolerance : – → 0,25 kr." in log
    assert "Navn : Kunde ApS → Kunde Omdøbt ApS" in log and "Aktiv : Ja → Nej" in log
    assert "Layout : – → Standard faktura" in log and "Finland : – → OSS Finland" in log  # names, not ids
    assert "Layout : – → 19" not in log
    assert "SourceLink" not in log and "source_link" not in log and "{" not in log
    dashboard = visible_text(owner_client.get("/dashboard").get_data(as_text=True))
    assert "Bogbros support (Agnes Agent) arbejdede i jeres konto" in dashboard


def test_english_pages_write_amounts_and_dates_the_danish_way_round(app, db, owner, owner_client, customer):
    owner.language = "en"
    db.session.commit()
    differs = Transfer.query.filter_by(order_number="5003").one()
    for path in _paths(app, customer):
        text = visible_text(owner_client.get(path).get_data(as_text=True))
        assert not SHORT_US_DATE.search(text), (path, SHORT_US_DATE.search(text).group(0))
        assert not re.search(r"DKK\d|\d\s?kr\.", text), path
    detail = visible_text(owner_client.get(f"/transfers/{differs.id}").get_data(as_text=True))
    assert "the sales source says DKK 560.00" in detail and "Steps" in detail and "Booking" not in detail
    today = utcnow()
    assert f"{today.day} {today:%b} {today.year}" in detail  # 7 Dec 2026, never 12/7/26
