import re

import pytest

from portal.i18n import format_amount
from tests.conftest import login


def test_security_headers_and_strict_csp(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"<style|\sstyle\s*=", re.I)


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard",
        "/setup",
        "/settings",
        "/settings/members",
        "/settings/profile",
        "/settings/audit",
        "/settings/support-access",
        "/password",
    ],
)
def test_pages_have_no_inline_script_or_style(owner_client, path):
    page = owner_client.get(path).get_data(as_text=True)
    assert owner_client.get(path).status_code == 200
    assert not INLINE_SCRIPT.search(page)
    assert not INLINE_HANDLER.search(page)
    assert not INLINE_STYLE.search(page)
    assert "htmx-2.0.11.min.js" in page
    assert 'hx-headers=\'{"X-CSRFToken": "' in page  # HTMX requests carry the CSRF token


def test_htmx_post_without_token_is_refused(owner_client):
    response = owner_client.post(
        "/settings/profile", data={"name": "X", "language": "da"}, csrf=False, headers={"HX-Request": "true"}
    )
    assert response.status_code == 400


def test_friendly_error_pages(client, owner_client):
    response = owner_client.get("/no/such/page")
    assert response.status_code == 404
    assert "Siden blev ikke fundet" in response.get_data(as_text=True)
    response = owner_client.get("/support")
    assert response.status_code == 403
    assert "Du har ikke adgang til dette" in response.get_data(as_text=True)


def test_500_page_is_friendly(app, owner_client, monkeypatch):
    def boom():
        raise RuntimeError("boom")

    monkeypatch.setitem(app.view_functions, "main.dashboard", boom)
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    response = owner_client.get("/dashboard")
    assert response.status_code == 500
    assert "Noget gik galt hos os" in response.get_data(as_text=True)


def test_language_switch_for_visitors_and_users(client, owner, db):
    assert "Log ind på Bogbro" in client.get("/login").get_data(as_text=True)
    client.post("/language", data={"language": "en", "next": "/login"})
    assert "Log in to Bogbro" in client.get("/login").get_data(as_text=True)
    login(client, owner.email)
    db.session.expire_all()
    assert owner.language == "da"  # the user's own choice wins after login
    assert "Overblik" in client.get("/dashboard").get_data(as_text=True)
    client.post("/language", data={"language": "en", "next": "/dashboard"})
    db.session.expire_all()
    assert owner.language == "en"
    assert "Overview" in client.get("/dashboard").get_data(as_text=True)


def test_dashboard_points_to_the_setup_wizard(owner_client):
    page = owner_client.get("/dashboard").get_data(as_text=True)
    assert "Ingen bogføringsopsætning endnu" in page and 'href="/setup"' in page


@pytest.mark.parametrize(
    ("value", "locale", "expected"),
    [
        ("1234.5", "da", "1.234,50\xa0kr."),
        ("1234.505", "da", "1.234,51\xa0kr."),  # half up, like the accounting systems
        ("-0.125", "da", "-0,13\xa0kr."),
        ("1234567.891", "da", "1.234.567,89\xa0kr."),
        ("1234.5", "en", "DKK\xa01,234.50"),  # the code first, with a space
        ("-0.125", "en", "-DKK\xa00.13"),
        ("99", "en_GB", "DKK\xa099.00"),
    ],
)
def test_amounts_are_danish_formatted(app, value, locale, expected):
    from decimal import Decimal

    with app.test_request_context():
        assert format_amount(Decimal(value), locale=locale) == expected


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("da", "1.234,50\xa0kr. og 99,00\xa0€"), ("en", "DKK\xa01,234.50 and €\xa099.00")],
)
def test_amounts_in_several_currencies_are_one_phrase(app, locale, expected):
    from decimal import Decimal

    from portal.i18n import format_amounts

    with app.test_request_context():
        totals = {"DKK": Decimal("1234.5"), "EUR": Decimal("99")}
        assert format_amounts(totals, locale=locale) == expected


@pytest.mark.parametrize(
    ("locale", "day", "moment"),
    [("da", "7. dec. 2026", "7. dec. 2026 kl. 15.05"), ("en", "7 Dec 2026", "7 Dec 2026, 15:05")],
)
def test_dates_are_day_month_in_both_languages(app, locale, day, moment):
    from datetime import UTC, datetime

    from portal.i18n import format_day, format_moment

    at = datetime(2026, 12, 7, 14, 5, tzinfo=UTC)  # 15:05 in Copenhagen
    with app.test_request_context():
        assert format_day(at.date(), locale=locale) == day
        assert format_moment(at, locale=locale) == moment


def test_healthz_checks_database_and_redis(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
