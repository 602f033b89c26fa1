"""Every route that takes an object id: another account's object is a 404, the own one works."""

from datetime import timedelta

import pytest
from flask import url_for

from portal.connectors import SYSTEM_MODULES, available_systems
from portal.extensions import db
from portal.models import (
    AccountingSetup,
    CompletenessReport,
    Connection,
    Invitation,
    SourceLink,
    SupportSession,
    Template,
    Transfer,
    TransferUndo,
    User,
    utcnow,
)
from portal.setups.operations import select_setup
from tests.conftest import connect_sandbox, make_user

# The path variable names that carry an object id, and the model they load.
ID_ARGUMENTS = {
    "user_id": User,
    "invitation_id": Invitation,
    "session_id": SupportSession,
    "connection_id": Connection,
    "setup_id": AccountingSetup,
    "template_id": Template,
    "transfer_id": Transfer,
    "undo_id": TransferUndo,
    "source_link_id": SourceLink,
    "report_id": CompletenessReport,
    "shop_id": "webshop",  # a Connection with role="webshop" (the shops pages 404 on any other)
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
# Routes whose path variables are not object ids (tokens, system names, files).
NOT_ID_ROUTES = {
    "static",
    "auth.reset_password",
    "auth.accept_invitation",
    "auth.confirm_email",
    "setups.connect",
    "setups.callback",
    "webhooks.receive",  # a shop's delivery URL: found by its secret token, authenticated by signature
}


def _tenant_rules(app):
    """Every route but the staff-only ones, the non-id ones and the vendor sandboxes (whose path
    variables are the vendor's own ids and keys, checked by each sandbox like the vendor does)."""
    return sorted(
        (
            rule
            for rule in app.url_map.iter_rules()
            if rule.endpoint not in STAFF_ROUTES | NOT_ID_ROUTES and not rule.endpoint.startswith("sandbox")
        ),
        key=lambda rule: rule.endpoint,
    )


def test_every_route_with_a_variable_is_classified(app):
    unknown = {
        rule.endpoint: sorted(rule.arguments - set(ID_ARGUMENTS))
        for rule in _tenant_rules(app)
        if rule.arguments - set(ID_ARGUMENTS)
    }
    assert not unknown, f"classify these routes in the tenancy tests: {unknown}"


def _objects_of(account, staff) -> dict:
    """One object of each kind the routes take, owned by `account`."""
    member = make_user(f"member{account.id}@example.dk", account, role="member")
    invitation = Invitation(
        account_id=account.id,
        email=f"invited{account.id}@example.dk",
        invited_by_id=member.id,
        expires_at=utcnow() + timedelta(days=1),
    )
    support_session = SupportSession(account_id=account.id, staff_user_id=staff.id, reason="a test session")
    db.session.add_all([invitation, support_session])
    objects = {User: member.id, Invitation: invitation, SupportSession: support_session}
    db.session.commit()
    if SYSTEM_MODULES:
        connection = connect_sandbox(account, available_systems()[0].key)
        setup = connection.setups[0]
        select_setup(setup, True)
        objects.update({Connection: connection, AccountingSetup: setup, Template: setup.templates[0]})
        shop = Connection(
            account_id=account.id, system="woocommerce", role="webshop", label="", credentials={}
        )
        source_link = SourceLink(account_id=account.id, connection=shop, setup=setup)
        transfer = Transfer(
            account_id=account.id, source_link=source_link, kind="invoice", source_ref="1", order_ref="1"
        )
        undo = TransferUndo(
            account_id=account.id, transfer=transfer, afterwards="retransfer", reference="", status="done"
        )
        report = CompletenessReport(
            account_id=account.id,
            source_link=source_link,
            period_start=utcnow().date(),
            period_end=utcnow().date(),
            status="done",
            result={"findings": []},
        )
        db.session.add_all([transfer, undo, report])
        db.session.commit()
        objects.update(
            {
                Transfer: transfer,
                SourceLink: source_link,
                "webshop": shop,
                TransferUndo: undo,
                CompletenessReport: report,
            }
        )
    return {model: value if isinstance(value, int) else value.id for model, value in objects.items()}


def _url(app, rule, objects):
    with app.test_request_context():
        return url_for(rule.endpoint, **{name: objects[ID_ARGUMENTS[name]] for name in rule.arguments})


@pytest.fixture
def tenant_routes(app):
    return [rule for rule in _tenant_rules(app) if rule.arguments]


def test_another_accounts_objects_are_not_found(
    app, owner_client, account, other_account, staff, tenant_routes
):
    theirs = _objects_of(other_account, staff)
    checked = []
    for rule in tenant_routes:
        if any(ID_ARGUMENTS[name] not in theirs for name in rule.arguments):
            continue  # no accounting system registered to make such objects
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = owner_client.open(_url(app, rule, theirs), method=method)
            assert response.status_code == 404, f"{method} {rule.endpoint} answered {response.status_code}"
            checked.append(rule.endpoint)
    assert {"account.remove_member", "account.revoke_invitation", "account.support_access_detail"} <= set(
        checked
    )


def test_own_objects_are_found(app, owner_client, account, staff, tenant_routes):
    ours = _objects_of(account, staff)
    for rule in tenant_routes:
        if any(ID_ARGUMENTS[name] not in ours for name in rule.arguments):
            continue
        method = "GET" if "GET" in rule.methods else "POST"
        response = owner_client.open(_url(app, rule, ours), method=method)
        assert response.status_code != 404, f"{method} {rule.endpoint} answered 404 for the own object"


@pytest.mark.parametrize("endpoint", sorted(STAFF_ROUTES))
def test_staff_routes_refuse_customers(app, owner_client, other_account, endpoint):
    rule = next(rule for rule in app.url_map.iter_rules() if rule.endpoint == endpoint)
    method = "POST" if "POST" in rule.methods else "GET"
    with app.test_request_context():
        url = url_for(endpoint, **STAFF_ROUTE_ARGUMENTS.get(endpoint, {"account_id": other_account.id}))
    assert owner_client.open(url, method=method).status_code == 403
