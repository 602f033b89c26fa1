"""/metrics for Prometheus: only with the bearer token, figures from the database and Redis computed at
scrape (so every gunicorn worker answers the same), and the outbound API requests the workers made, counted
in Redis as they go through the shared HTTP layer."""

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from portal.connectors.http import ApiClient
from portal.connectors.metrics import ApiMetrics
from portal.connectors.ratelimit import RateLimit, RateLimiter
from portal.models import SourceEvent
from portal.queue import get_queue
from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport
from tests.pipeline.conftest import (
    fast_retries,  # noqa: F401 (a fixture)
    faults,
    feed,
    make_setup,
    make_source_link,
    order,
    release_scheduled,
    transfer_row,
)

TOKEN = "scrape-me-0123456789"


@pytest.fixture
def scrape(app, client):
    app.config["METRICS_TOKEN"] = TOKEN

    def get() -> dict[tuple[str, tuple], float]:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-store"
        samples = {}
        for family in text_string_to_metric_families(response.get_data(as_text=True)):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    yield get
    app.config["METRICS_TOKEN"] = None


def test_metrics_are_not_public(app, client, db):
    assert client.get("/metrics").status_code == 404  # no token configured: no such page
    app.config["METRICS_TOKEN"] = TOKEN
    try:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
        assert client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401  # no "Bearer"
        assert client.get(f"/metrics?token={TOKEN}").status_code == 401  # never in a URL (logs keep URLs)
        assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    finally:
        app.config["METRICS_TOKEN"] = None


def test_transfers_queue_and_the_oldest_waiting_event(app, db, account, redis, scrape):
    source_link = make_source_link(db, account, make_setup(account, "dinero"))
    db.session.add_all(
        [
            transfer_row(source_link, "1", status="done"),
            transfer_row(source_link, "2", status="done"),
            transfer_row(source_link, "3", status="needs_attention", error_kind="order"),
        ]
    )
    db.session.add(
        SourceEvent(
            account_id=account.id,
            source_link_id=source_link.id,
            source="webhook",
            delivery_id="d-1",
            raw_body="{}",
            received_at=datetime.now(UTC) - timedelta(minutes=10),
        )
    )
    db.session.commit()
    if (
        db.engine.dialect.name == "postgresql"
    ):  # the estimate is the planner's: bring its statistics up to date
        db.session.execute(text("ANALYZE transfers"))
        db.session.commit()
    get_queue().enqueue("workers.jobs.noop_for_metrics_test")  # never run: just counted as waiting

    samples = scrape()
    assert samples[("bogbro_transfers", (("status", "needs_attention"),))] == 1
    assert samples[("bogbro_transfers", (("status", "pending"),))] == 0
    assert ("bogbro_transfers", (("status", "done"),)) not in samples  # open ones only: a year is done
    assert (
        samples[("bogbro_transfers_estimated", (("status", "done"),))] == 2
    )  # exact on SQLite; on PostgreSQL after ANALYZE
    if db.engine.dialect.name != "postgresql":  # there, a status seen once is not among the common values
        assert samples[("bogbro_transfers_estimated", (("status", "needs_attention"),))] == 1
    assert samples[("bogbro_queue_jobs", (("queue", "default"), ("state", "queued")))] == 1
    assert 590 < samples[("bogbro_oldest_waiting_event_seconds", ())] < 700
    assert samples[("bogbro_scrape_error", (("source", "database"),))] == 0
    assert samples[("bogbro_scrape_error", (("source", "redis"),))] == 0

    db.session.query(SourceEvent).update({"processed_at": datetime.now(UTC)})
    db.session.commit()
    assert scrape()[("bogbro_oldest_waiting_event_seconds", ())] == 0


def test_api_latency_errors_and_rate_limit_waits(
    app,
    db,
    account,
    redis,
    run_jobs,
    scrape,
    fast_retries,  # noqa: F811
):
    setup = make_setup(account, "e-conomic", auto_book=True)  # connecting talks to the sandbox too
    source_link = make_source_link(db, account, setup)
    app.config["CONNECTOR_RETRIES"] = 0
    faults(app, "e-conomic", next=["429", "500"], retry_after=0)
    feed(source_link, order())
    run_jobs()
    while release_scheduled(redis):
        run_jobs()
    samples = scrape()
    economic = (("system", "e-conomic"),)
    requests = samples[("bogbro_api_request_seconds_count", economic)]
    assert requests >= 5
    assert samples[("bogbro_api_request_seconds_bucket", (("le", "+Inf"), *economic))] == requests
    assert 0 < samples[("bogbro_api_request_seconds_sum", economic)] < requests * 30
    assert samples[("bogbro_api_errors_total", (("kind", "rate_limited"), *economic))] == 1
    assert samples[("bogbro_api_errors_total", (("kind", "server_error"), *economic))] == 1
    assert samples[("bogbro_api_errors_total", (("kind", "timeout"), *economic))] == 0

    # our own pace (the pipeline kept e-conomic's 3/s already): a bucket of one request a second, asked
    # twice, holds the second back
    waits = samples.get(("bogbro_ratelimit_waits_total", economic), 0)
    waited = samples.get(("bogbro_ratelimit_wait_seconds_total", economic), 0)
    limiter = RateLimiter(redis, "metrics-test", RateLimit(1, 1.0), sleep=lambda seconds: None)
    api = ApiClient(
        system="e-conomic",
        base_url=f"{IN_PROCESS_ORIGIN}/sandbox/e-conomic",
        headers={"X-AppSecretToken": "demo", "X-AgreementGrantToken": "demo"},
        transport=SandboxTransport(app),
        limiter=limiter,
        metrics=ApiMetrics(redis),
    )
    api.get("/self")
    api.get("/self")
    samples = scrape()
    assert samples[("bogbro_ratelimit_waits_total", economic)] == waits + 1
    assert 0.5 < samples[("bogbro_ratelimit_wait_seconds_total", economic)] - waited <= 1.0
    assert samples[("bogbro_api_request_seconds_count", economic)] == requests + 2


def test_a_scrape_without_redis_still_answers(app, db, account, scrape):
    saved_url, saved_client = app.config["REDIS_URL"], app.extensions.pop("bogbro.redis", None)
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    try:
        samples = scrape()
    finally:
        app.config["REDIS_URL"] = saved_url
        app.extensions.pop("bogbro.redis", None)
        if saved_client is not None:
            app.extensions["bogbro.redis"] = saved_client
    assert samples[("bogbro_scrape_error", (("source", "redis"),))] == 1
    assert samples[("bogbro_scrape_error", (("source", "database"),))] == 0
    assert ("bogbro_transfers", (("status", "pending"),)) in samples  # the database's figures are there
    assert not any(name == "bogbro_queue_jobs" for name, _ in samples)  # missing, not zero


def test_a_jobs_counts_ride_on_the_rate_limiters_round_trips(app, redis):
    """Inside a job (metrics.batched) a request's counts cost no round trip of their own: they reach Redis
    with the next request's rate-limiter round trip, and the last ones when the job ends."""
    from portal.connectors import metrics

    def counted() -> float:
        return metrics.read(redis).get("e-conomic", {}).get("count", 0)

    limiter = RateLimiter(redis, "batched-test", RateLimit(100, 1.0), sleep=lambda seconds: None)
    api = ApiClient(
        system="e-conomic",
        base_url=f"{IN_PROCESS_ORIGIN}/sandbox/e-conomic",
        headers={"X-AppSecretToken": "demo", "X-AgreementGrantToken": "demo"},
        transport=SandboxTransport(app),
        limiter=limiter,
        metrics=ApiMetrics(redis),
    )
    before = counted()
    with metrics.batched():
        api.get("/self")
        assert counted() == before  # waiting in the process
        api.get("/self")
        assert counted() == before + 1  # the first went with the second's rate-limiter round trip
    assert counted() == before + 2  # the rest when the job ended
