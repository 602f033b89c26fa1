"""The bill before it happens: the account's plan priced by the calculator's own function, this month's
documents against the tier, the pace's projection, and the owner's own, audited change of plan."""

import re
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.account import plan
from portal.calculator import pricing
from portal.calculator.forms import query_string
from portal.calculator.operations import load_catalogue
from portal.calculator.seed import seed_catalogue
from portal.cli import seed_demo
from portal.models import (
    Account,
    AccountingSetup,
    AuditEvent,
    Connection,
    QuoteRequest,
    SourceLink,
    Transfer,
)
from tests.calculator.conftest import make_catalogue

D = Decimal
SHOP = ("e-conomic", "woocommerce")


# --- the pure outlook (today passed in) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("documents", "today", "pace"),
    [
        (40, date(2026, 12, 10), 124),  # 40 / 10 days × 31 days
        (0, date(2026, 12, 1), 0),
        (1, date(2026, 12, 31), 1),
        (10, date(2028, 2, 15), 20),  # 10 / 15 × 29 = 19.33: a part of a document is one more
        (10, date(2026, 2, 14), 20),  # 10 / 14 × 28 = 20 exactly
    ],
)
def test_the_pace_is_so_far_per_day_elapsed_times_the_days_of_the_month(documents, today, pace):
    assert plan.month_pace(documents, today) == pace


def test_a_pace_that_will_cross_the_tier_prices_the_next_tier_and_says_when():
    catalogue = make_catalogue()
    start = pricing.Selection(systems=SHOP, orders=100)  # the Start tier: 149 + 99 + 99
    outlook = plan.outlook(catalogue, start, 40, date(2026, 12, 10))
    assert outlook.breakdown.per_month == D("347.00") and outlook.limit == 100
    assert outlook.projected == 124 and not outlook.crossed and not outlook.beyond_largest
    assert outlook.next.tier.name == "Standard" and outlook.next.per_month == D("497.00")
    assert outlook.next.per_month == pricing.price(catalogue, replace(start, orders=124)).per_month
    assert outlook.crossing_day == date(2026, 12, 26)  # 101 documents at 4 a day


def test_a_pace_within_the_tier_says_nothing_and_one_past_it_is_crossed():
    catalogue = make_catalogue()
    start = pricing.Selection(systems=SHOP, orders=100, billing="half-yearly")
    calm = plan.outlook(catalogue, start, 30, date(2026, 12, 10))  # 93 by the 31st
    assert calm.next is None and calm.crossing_day is None
    assert calm.breakdown.per_month == D("312.30")  # 347 less 10 %
    crossed = plan.outlook(catalogue, start, 101, date(2026, 12, 31))
    assert crossed.crossed and crossed.crossing_day is None
    assert crossed.next.per_month == D("447.30")  # Standard, half-yearly: 497 less 49,70


def test_a_pace_beyond_the_largest_tier_has_no_price_but_a_talk():
    catalogue = make_catalogue()
    pro = pricing.Selection(systems=SHOP, orders=10000)
    outlook = plan.outlook(catalogue, pro, 5000, date(2026, 12, 10))
    assert outlook.projected == 15500 and outlook.beyond_largest and not outlook.next.priced


# --- the page ---------------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(db):
    """The demo catalogue `flask seed-demo` loads (10 % half-yearly discount, 25 % VAT)."""
    seed_catalogue()


@pytest.fixture
def quoted(db, account, catalogue):
    """The account was made from a quote: e-conomic + WooCommerce, 300 orders, the mapping module,
    half-yearly."""
    selection = pricing.Selection(SHOP, 300, (("mapping", 1),), "half-yearly")
    quote = QuoteRequest(
        kind="quote",
        email="owner@kunde.dk",
        selection=pricing.selection_as_json(selection),
        breakdown={"status": "priced"},
    )
    db.session.add(quote)
    db.session.flush()
    account.quote_request_id = quote.id
    db.session.commit()
    return selection


def _price_on(html: str, marker: str) -> str:
    return re.search(marker + r"[^>]*>([^<]+)<", html).group(1).strip()


def test_the_account_page_and_priser_show_the_same_price_for_the_same_selection(owner_client, quoted):
    page = owner_client.get("/settings/subscription").get_data(as_text=True)
    priser = owner_client.get("/priser?" + query_string(quoted)).get_data(as_text=True)
    # (299 Standard + 99 + 99 + 149 mapping) less the 10 % half-yearly discount
    assert _price_on(page, 'id="plan-price"') == _price_on(priser, 'class="price"') == "581,40\xa0kr."
    assert "Abonnement" in page and "Standard" in page and "Mapningsmodul" in page
    assert "0 af 500 dokumenter" in page
    assert re.search(r'<option value="500" selected>', page)  # the quote's 300 orders: Standard


def _source_link(db, account) -> SourceLink:
    accounting = Connection(account_id=account.id, system="economic", label="e", credentials={})
    shop = Connection(account_id=account.id, system="woocommerce", role="webshop", label="w", credentials={})
    setup = AccountingSetup(account_id=account.id, connection=accounting, external_id="1", name="Kunde")
    source_link = SourceLink(account_id=account.id, connection=shop, setup=setup, settings={})
    db.session.add(source_link)
    db.session.commit()
    return source_link


def _transfers(db, source_link, n, *, status="done", document="booked", finished=None, kind="invoice"):
    finished = finished or datetime.now(plan.COPENHAGEN)
    for _ in range(n):
        number = db.session.scalar(select(func.count()).select_from(Transfer)) + 1
        db.session.add(
            Transfer(
                account_id=source_link.account_id,
                source_link_id=source_link.id,
                kind=kind,
                source_ref=str(number),
                order_ref=str(number),
                status=status,
                document=document,
                finished_at=finished if status == "done" else None,
            )
        )
        db.session.flush()
    db.session.commit()


def test_documents_are_done_transfers_that_created_something_this_month(db, account, other_account):
    today = date(2026, 12, 7)
    noon = datetime(2026, 12, 7, 12, tzinfo=plan.COPENHAGEN)
    mine = _source_link(db, account)
    _transfers(db, mine, 3, finished=noon)
    _transfers(db, mine, 1, finished=noon, document="draft", kind="credit_note")
    _transfers(db, mine, 1, finished=datetime(2026, 12, 1, 0, 30, tzinfo=plan.COPENHAGEN))  # 23:30 UTC
    _transfers(db, mine, 1, finished=datetime(2026, 11, 30, 23, 30, tzinfo=plan.COPENHAGEN))  # November
    _transfers(db, mine, 1, finished=noon, document="none")
    _transfers(db, mine, 1, status="skipped")
    _transfers(db, mine, 1, status="needs_attention")
    _transfers(db, _source_link(db, other_account), 2, finished=noon)
    assert plan.documents_this_month(account, today) == 5
    assert plan.documents_this_month(account, date(2026, 11, 15)) == 1


def test_the_page_warns_before_the_tier_is_crossed_and_changes_nothing(owner_client, db, account, catalogue):
    account.plan = pricing.selection_as_json(pricing.Selection(SHOP, 100))  # Start: up to 100
    db.session.commit()
    _transfers(db, _source_link(db, account), 101)  # today, whatever day it is: past the tier
    page = owner_client.get("/settings/subscription").get_data(as_text=True)
    notice = page.split('id="next-tier"', 1)[1].split("</div>", 1)[0]
    assert "101 af 100 dokumenter" in page
    assert "overskredet" in notice and "497,00\xa0kr." in notice  # the Standard tier's price
    db.session.refresh(account)
    assert account.plan["orders"] == 100  # never upgraded by itself


# --- changing the plan ------------------------------------------------------------------------------------

CHANGE = {"systems": ["dinero", "shopify"], "orders": "2000", "qty-mapping": "1", "billing": "monthly"}


def test_the_owner_changes_the_plan_and_it_is_audited_old_to_new(owner_client, db, account, quoted):
    response = owner_client.post("/settings/subscription", data=CHANGE)
    assert response.status_code == 302
    db.session.refresh(account)
    assert account.plan == {
        "systems": ["dinero", "shopify"],
        "orders": 2000,
        "addons": {"mapping": 1},
        "billing": "monthly",
        "setup": False,
    }
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.plan_changed"))
    assert event.account_id == account.id and event.actor_id is not None
    assert event.changes["systems"] == {
        "before": ["e-conomic", "WooCommerce"],
        "after": ["Dinero", "Shopify"],
    }
    assert event.changes["tier"] == {"before": "Standard (500)", "after": "Plus (2000)"}
    assert event.changes["price_per_month"] == {"before": "581.40", "after": "896.00"}
    assert "addons" not in event.changes  # the same add-on before and after
    page = owner_client.get("/settings/subscription").get_data(as_text=True)
    assert _price_on(page, 'id="plan-price"') == "896,00\xa0kr."
    log = owner_client.get("/settings/audit").get_data(as_text=True)
    assert "Abonnement ændret" in log and "581,40\xa0kr." in log and "896,00\xa0kr." in log


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"systems": ["dinero"], "orders": "500"}, "mindst ét system"),
        ({"systems": ["dinero", "shopify"], "orders": "300"}, "Vælg et af niveauerne"),
        ({"systems": ["uniconta", "shopify"], "orders": "500"}, "ingen fast pris"),
        ({"systems": ["dinero", "shopify"], "orders": "500", "qty-paymatch": "1"}, "kræver et system"),
    ],
)
def test_a_plan_without_a_price_is_refused_and_nothing_changes(
    owner_client, db, account, quoted, form, message
):
    response = owner_client.post("/settings/subscription", data=form)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    db.session.refresh(account)
    assert account.plan is None
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_a_change_needs_csrf(owner_client, db, account, quoted):
    assert owner_client.post("/settings/subscription", data=CHANGE, csrf=False).status_code == 400
    db.session.refresh(account)
    assert account.plan is None


def test_members_see_the_plan_but_cannot_change_it(member_client, db, account, quoted):
    page = member_client.get("/settings/subscription").get_data(as_text=True)
    assert (
        "581,40\xa0kr." in page
        and "Kun ejere kan ændre abonnementet." in page
        and 'name="orders"' not in page
    )
    assert member_client.post("/settings/subscription", data=CHANGE).status_code == 403
    db.session.refresh(account)
    assert account.plan is None
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_an_account_without_a_quote_chooses_a_plan_from_the_catalogue(owner_client, db, account, catalogue):
    page = owner_client.get("/settings/subscription").get_data(as_text=True)
    assert "Kontoen har ingen plan endnu" in page and 'id="plan-price"' not in page
    assert owner_client.post("/settings/subscription", data=CHANGE).status_code == 302
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.plan_changed"))
    assert event.changes["tier"] == {"before": None, "after": "Plus (2000)"}
    again = owner_client.post("/settings/subscription", data=CHANGE)
    assert again.status_code == 302
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 1  # no change, no entry


def test_one_account_never_sees_anothers_documents(owner_client, db, account, other_account, catalogue):
    _transfers(db, _source_link(db, other_account), 4)
    page = owner_client.get("/settings/subscription").get_data(as_text=True)
    assert "0 dokumenter overført denne måned" in page


def test_the_demo_customer_has_a_priced_plan(app, db):
    seed_demo()
    account = db.session.scalar(select(Account))
    breakdown = pricing.price(load_catalogue(), plan.current_selection(account))
    assert breakdown.priced and breakdown.tier.name == "Start" and breakdown.per_month == D("347.00")


def test_support_impersonating_sees_the_plan_but_the_choice_stays_the_customers(
    staff_client, db, account, quoted
):
    started = staff_client.post(
        f"/support/accounts/{account.id}/impersonate", data={"reason": "Kunden spurgte"}
    )
    assert started.status_code == 302
    page = staff_client.get("/settings/subscription").get_data(as_text=True)
    assert "581,40\xa0kr." in page and 'name="orders"' not in page
    assert staff_client.post("/settings/subscription", data=CHANGE).status_code == 403
    db.session.refresh(account)
    assert account.plan is None
    assert not db.session.scalar(select(AuditEvent).where(AuditEvent.action == "account.plan_changed"))
