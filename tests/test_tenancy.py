"""Every route that takes an id: another account's object is a 404, the own one works."""

from datetime import timedelta

import pytest
from flask import url_for

from portal.extensions import db
from portal.models import Invitation, SupportSession, User, utcnow
from tests.conftest import make_user

# endpoint -> (method, model the id refers to)
TENANT_ROUTES = {
    "account.remove_member": ("POST", User),
    "account.revoke_invitation": ("POST", Invitation),
    "account.support_access_detail": ("GET", SupportSession),
}
# Staff-only routes take any account's id on purpose; customers are refused outright.
STAFF_ROUTES = {
    "support.account",
    "support.impersonate",
    "calculator.quote",
    "calculator.catalogue_section",
    "calculator.catalogue_item",
    "calculator.catalogue_delete",
}
# The path arguments of staff routes that take something other than an account id.
STAFF_ROUTE_ARGUMENTS = {
    "calculator.quote": {"quote_id": 1},
    "calculator.catalogue_section": {"section": "systems"},
    "calculator.catalogue_item": {"section": "tiers", "item_id": 1},
    "calculator.catalogue_delete": {"section": "tiers", "item_id": 1},
}
# Routes whose path variables are not object ids.
NOT_ID_ROUTES = {"static", "auth.reset_password", "auth.accept_invitation"}


def test_every_route_with_a_variable_is_classified(app):
    known = set(TENANT_ROUTES) | STAFF_ROUTES | NOT_ID_ROUTES
    unclassified = {
        rule.endpoint for rule in app.url_map.iter_rules() if rule.arguments and rule.endpoint not in known
    }
    assert not unclassified, f"add these routes to the tenancy tests: {sorted(unclassified)}"


def _objects_of(account, staff):
    """One object of each kind the routes above take, owned by `account`."""
    member = make_user(f"member{account.id}@example.dk", account, role="member")
    invitation = Invitation(
        account_id=account.id,
        email=f"invited{account.id}@example.dk",
        invited_by_id=member.id,
        expires_at=utcnow() + timedelta(days=1),
    )
    support_session = SupportSession(account_id=account.id, staff_user_id=staff.id, reason="a test session")
    db.session.add_all([invitation, support_session])
    db.session.commit()
    return {User: member.id, Invitation: invitation.id, SupportSession: support_session.id}


@pytest.mark.parametrize("endpoint", sorted(TENANT_ROUTES))
def test_another_accounts_object_is_not_found(app, owner_client, account, other_account, staff, endpoint):
    method, model = TENANT_ROUTES[endpoint]
    theirs = _objects_of(other_account, staff)
    ours = _objects_of(account, staff)
    rule = next(rule for rule in app.url_map.iter_rules() if rule.endpoint == endpoint)
    (argument,) = rule.arguments
    with app.test_request_context():
        their_url = url_for(endpoint, **{argument: theirs[model]})
        our_url = url_for(endpoint, **{argument: ours[model]})
    assert owner_client.open(their_url, method=method).status_code == 404
    assert owner_client.open(our_url, method=method).status_code in {200, 302}


@pytest.mark.parametrize("endpoint", sorted(STAFF_ROUTES))
def test_staff_routes_refuse_customers(app, owner_client, other_account, endpoint):
    rule = next(rule for rule in app.url_map.iter_rules() if rule.endpoint == endpoint)
    method = "POST" if "POST" in rule.methods else "GET"
    with app.test_request_context():
        url = url_for(endpoint, **STAFF_ROUTE_ARGUMENTS.get(endpoint, {"account_id": other_account.id}))
    assert owner_client.open(url, method=method).status_code == 403
