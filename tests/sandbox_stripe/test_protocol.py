"""Stripe's wire rules in the sandbox, seen through the official library and plain HTTP: keys, errors,
idempotency keys, pagination, expand[], the pinned version, injected faults in Stripe's error shape."""

import json

import httpx
import pytest
import stripe

from portal.sandbox.stripe import API_VERSION, DEMO_KEY


def test_a_bad_key_is_401_in_stripes_shape(live_server, db):
    bad = stripe.StripeClient(
        "sk_test_wrong_key_1234",
        base_addresses={"api": f"{live_server}/sandbox/stripe"},
        max_network_retries=0,
    )
    with pytest.raises(stripe.AuthenticationError) as error:
        bad.v1.customers.list()
    assert error.value.http_status == 401
    assert error.value.json_body["error"]["type"] == "invalid_request_error"
    assert "Invalid API Key provided: sk_test_" in error.value.user_message
    assert "wrong_key" not in error.value.user_message  # masked, as Stripe does

    response = httpx.get(f"{live_server}/sandbox/stripe/v1/customers")
    assert response.status_code == 401
    assert "You did not provide an API key" in response.json()["error"]["message"]


def test_an_idempotency_key_replays_the_first_answer(api):
    options = {"idempotency_key": "opret-kunde-1"}
    first = api.v1.customers.create({"name": "Ida Holm", "email": "ida@example.dk"}, options)
    again = api.v1.customers.create({"name": "Ida Holm", "email": "ida@example.dk"}, options)
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(api.v1.customers.list().data) == 1

    with pytest.raises(stripe.IdempotencyError, match="same parameters"):
        api.v1.customers.create({"name": "Someone Else"}, options)


def test_a_retry_while_the_first_request_runs_is_a_409(api, redis):
    from portal.sandbox.stripe import DEMO_ACCOUNT

    redis.set(f"bogbro:sandbox:stripe:idempotency:{DEMO_ACCOUNT}:busy", "1")  # the first one, running
    with pytest.raises(stripe.APIError) as error:  # stripe-python's class for a 409
        api.v1.customers.create({"name": "Ida"}, {"idempotency_key": "busy"})
    assert (error.value.http_status, error.value.json_body["error"]["type"]) == (409, "idempotency_error")
    assert api.v1.customers.list().data == []


def test_a_refused_request_changes_nothing_and_is_not_saved_under_its_key(api):
    options = {"idempotency_key": "forkert"}
    with pytest.raises(stripe.InvalidRequestError) as error:
        api.v1.customers.create({"name": "Ida", "shoe_size": "42"}, options)
    assert (error.value.http_status, error.value.code, error.value.param) == (
        400,
        "parameter_unknown",
        "shoe_size",
    )
    assert api.v1.customers.list().data == []
    fixed = api.v1.customers.create({"name": "Ida"}, options)  # not replayed: nothing ran the first time
    assert fixed.name == "Ida"


def test_missing_objects_and_unknown_paths_are_404_in_stripes_shape(api, live_server):
    with pytest.raises(stripe.InvalidRequestError) as error:
        api.v1.invoices.retrieve("in_doesnotexist")
    assert (error.value.http_status, error.value.code) == (404, "resource_missing")
    assert error.value.user_message == "No such invoice: 'in_doesnotexist'"

    response = httpx.get(
        f"{live_server}/sandbox/stripe/v1/nothing", headers={"Authorization": f"Bearer {DEMO_KEY}"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("Unrecognized request URL (GET: /v1/nothing)")


def test_lists_page_with_has_more_and_starting_after(api):
    made = [api.v1.products.create({"name": f"Vare {n}"}).id for n in range(5)]
    first = api.v1.products.list({"limit": 2})
    assert first.has_more and len(first.data) == 2
    seen = [p.id for p in api.v1.products.list({"limit": 2}).auto_paging_iter()]
    assert sorted(seen) == sorted(made) and len(seen) == 5
    second = api.v1.products.list({"limit": 2, "starting_after": first.data[-1].id})
    assert not {p.id for p in second.data} & {p.id for p in first.data}
    with pytest.raises(stripe.InvalidRequestError, match="less than or equal to 100"):
        api.v1.products.list({"limit": 101})


def test_expand_replaces_ids_by_objects(api):
    product = api.v1.products.create({"name": "Te"})
    price = api.v1.prices.create({"product": product.id, "currency": "dkk", "unit_amount": 5000})
    assert api.v1.prices.retrieve(price.id).product == product.id
    assert api.v1.prices.retrieve(price.id, {"expand": ["product"]}).product.name == "Te"
    listed = api.v1.prices.list({"expand": ["data.product"]})
    assert listed.data[0].product.name == "Te"
    with pytest.raises(stripe.InvalidRequestError, match="cannot be expanded"):
        api.v1.prices.retrieve(price.id, {"expand": ["currency.x"]})


def test_one_api_version_is_answered(api, live_server):
    customer = api.v1.customers.create({"name": "Ida"})
    assert customer.last_response.headers["Stripe-Version"] == API_VERSION == stripe.api_version
    response = httpx.get(
        f"{live_server}/sandbox/stripe/v1/customers",
        headers={"Authorization": f"Bearer {DEMO_KEY}", "Stripe-Version": "2024-06-20"},
    )
    assert response.status_code == 400
    assert API_VERSION in response.json()["error"]["message"]


def test_injected_faults_come_in_stripes_error_shape(api, live_server):
    httpx.put(f"{live_server}/sandbox/stripe/_faults", json={"next": ["429", "500"]})
    with pytest.raises(stripe.RateLimitError):
        api.v1.customers.list()
    with pytest.raises(stripe.APIError) as error:
        api.v1.customers.list()
    assert error.value.http_status == 500
    assert api.v1.customers.list().data == []


def test_another_accounts_objects_are_not_found(api, live_server):
    customer = api.v1.customers.create({"name": "Ida"})
    other = stripe.StripeClient(
        "sk_test_bogbro_other", base_addresses={"api": f"{live_server}/sandbox/stripe"}, max_network_retries=0
    )
    with pytest.raises(stripe.InvalidRequestError, match="No such customer"):
        other.v1.customers.retrieve(customer.id)


def test_webhook_endpoints_show_their_secret_once(api, receiver):
    endpoint = api.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["invoice.paid"]})
    assert endpoint.secret.startswith("whsec_")
    assert "secret" not in api.v1.webhook_endpoints.retrieve(endpoint.id)
    with pytest.raises(stripe.InvalidRequestError, match="enabled_events"):
        api.v1.webhook_endpoints.create({"url": receiver.url})
    api.v1.webhook_endpoints.delete(endpoint.id)
    assert api.v1.webhook_endpoints.list().data == []


def test_events_are_listed_and_filtered_by_type(api):
    api.v1.customers.create({"name": "Ida"})
    api.v1.products.create({"name": "Te"})
    assert [e.type for e in api.v1.events.list({"type": "customer.*"}).data] == ["customer.created"]
    event = api.v1.events.list({"type": "product.created"}).data[0]
    assert api.v1.events.retrieve(event.id).data.object.name == "Te"


def test_a_failed_delivery_is_retried_with_a_fresh_signature(api, receiver, run_jobs, app):
    endpoint = api.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["customer.created"]})
    app.config["SANDBOX_STRIPE_WEBHOOK_RETRY_DELAYS"] = (0,)
    try:
        receiver.status = 500
        api.v1.customers.create({"name": "Ida"})
        run_jobs()
    finally:
        app.config.pop("SANDBOX_STRIPE_WEBHOOK_RETRY_DELAYS")
    assert len(receiver.deliveries) == 2
    (_, body), (headers, again) = receiver.deliveries
    assert body == again
    stripe.Webhook.construct_event(again, headers["Stripe-Signature"], endpoint.secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_someone_else")


def test_the_demo_catalogue_is_seeded_once(api, db):
    from portal.sandbox.stripe import DEMO_ACCOUNT, seed

    seed(DEMO_ACCOUNT)
    seed(DEMO_ACCOUNT)
    db.session.commit()
    prices = api.v1.prices.list().data
    assert [(p.unit_amount, p.currency, p.recurring.interval, p.tax_behavior) for p in prices] == [
        (14900, "dkk", "month", "inclusive")
    ]
    assert [(r.percentage, r.inclusive) for r in api.v1.tax_rates.list().data] == [(25, True)]


def test_the_signature_matches_the_research_test_vector():
    from portal.sandbox.stripe import sign

    header = sign(b'{"id":727,"status":"processing"}', "whsec_test", 1700000000)
    assert header == "t=1700000000,v1=696f03b9ccdd7c1796e868ebe222d58ee098e674afc805925c531f5404243e35"


def test_the_readme_walk_with_curl_style_basic_auth(live_server, db):
    """The README's renewal, as curl sends it: Basic auth with the key, form fields, product_data."""
    with httpx.Client(base_url=f"{live_server}/sandbox/stripe/v1", auth=(DEMO_KEY, "")) as curl:
        clock = curl.post("/test_helpers/test_clocks", data={"frozen_time": 1780000000}).json()
        customer = curl.post("/customers", data={"name": "Ida Holm", "test_clock": clock["id"]}).json()
        method = curl.post("/payment_methods/pm_card_visa/attach", data={"customer": customer["id"]}).json()
        curl.post(
            f"/customers/{customer['id']}", data={"invoice_settings[default_payment_method]": method["id"]}
        )
        price = curl.post(
            "/prices",
            data={
                "currency": "dkk",
                "unit_amount": 14900,
                "recurring[interval]": "month",
                "product_data[name]": "Kaffeabonnement",
            },
        ).json()
        subscription = curl.post(
            "/subscriptions", data={"customer": customer["id"], "items[0][price]": price["id"]}
        ).json()
        assert subscription["status"] == "active"
        advanced = curl.post(
            f"/test_helpers/test_clocks/{clock['id']}/advance", data={"frozen_time": 1782685600}
        )
        assert advanced.json()["status"] == "ready"
        invoices = curl.get("/invoices", params={"customer": customer["id"]}).json()["data"]
        assert [(i["billing_reason"], i["status"]) for i in invoices] == [
            ("subscription_cycle", "paid"),
            ("subscription_create", "paid"),
        ]
        types = [
            e["type"] for e in curl.get("/events", params={"type": "invoice.*", "limit": 100}).json()["data"]
        ]
        assert {"invoice.created", "invoice.finalized", "invoice.paid"} <= set(types)


def test_the_restricted_key_reads_everything_and_writes_only_webhook_endpoints(api, live_server, receiver):
    restricted = stripe.StripeClient(
        "rk_test_bogbro_demo", base_addresses={"api": f"{live_server}/sandbox/stripe"}, max_network_retries=0
    )
    customer = api.v1.customers.create({"name": "Ida"})
    assert restricted.v1.customers.retrieve(customer.id).name == "Ida"
    assert restricted.v1.webhook_endpoints.create(
        {"url": receiver.url, "enabled_events": ["invoice.paid"]}
    ).secret
    with pytest.raises(stripe.PermissionError) as error:
        restricted.v1.customers.create({"name": "Bo"})
    assert error.value.http_status == 403
    assert "Having the 'rak_customer_write' permission would allow this request to continue." in str(
        error.value
    )
    assert len(api.v1.customers.list().data) == 1


def test_a_delivery_to_the_in_process_address_goes_through_the_app_itself(api, run_jobs, app):
    from portal.sandbox.stripe import DEMO_ACCOUNT, deliveries
    from portal.sandbox.transport import IN_PROCESS_ORIGIN

    api.v1.webhook_endpoints.create(
        {"url": f"{IN_PROCESS_ORIGIN}/webhooks/stripe/no-such-link", "enabled_events": ["customer.created"]}
    )
    app.config["SANDBOX_STRIPE_WEBHOOK_RETRY_DELAYS"] = ()
    try:
        api.v1.customers.create({"name": "Ida"})
        run_jobs()
    finally:
        app.config.pop("SANDBOX_STRIPE_WEBHOOK_RETRY_DELAYS")
    [delivery] = deliveries(DEMO_ACCOUNT)
    # an HTTP answer from this app (no source link has that token), not a failed network connection
    [attempt] = delivery["attempts"]
    assert attempt["outcome"].isdigit() and attempt["outcome"] != "200"
    assert delivery["status"] == "failed"


def test_an_event_resent_arrives_again_unchanged_and_freshly_signed(api, endpoint, receiver, run_jobs, db):
    from portal.sandbox.stripe import DEMO_ACCOUNT, resend

    api.v1.customers.create({"name": "Ida"})
    run_jobs()
    event = api.v1.events.list({"type": "customer.created"}).data[0]
    assert resend(DEMO_ACCOUNT, event.id) == 1
    assert resend(DEMO_ACCOUNT, event.id) == 1
    db.session.commit()
    run_jobs()
    bodies = [json.loads(body) for _, body in receiver.of_type("customer.created")]
    assert len(bodies) == 3
    assert all(
        (b["id"], b["data"]) == (event.id, bodies[0]["data"]) for b in bodies
    )  # pending_webhooks moves
    for headers, body in receiver.of_type("customer.created"):
        assert (
            stripe.Webhook.construct_event(body, headers["Stripe-Signature"], endpoint.secret).id == event.id
        )
