"""`make bench` (BENCH_ARGS="--orders 300 --workers 1"): WooCommerce orders through the whole pipeline —
signed webhooks into the web app → RQ → the e-conomic sandbox, booked — and a no-op RQ job as the yardstick,
measured in the same run on the same Redis, database and worker processes.

    orders per second    N webhooks posted at once, until the last transfer is done (throughput)
    API calls per order  requests the workers sent to the e-conomic sandbox, per order (steady state:
                         the warm-up order cached the customer and the products)
    p50/p95 transfer     webhook received → transfer done, one order at a time (no queueing)
    cost vs a no-op job  seconds per order at full throughput / seconds per no-op job at full throughput
    recovery (--recovery) a worker SIGKILLed while its transfer waits on e-conomic → that transfer done by
                         a new worker, with the production watchdog run by a real `rq cron` (bound: 30 s)

The workers are real `rq` worker processes of the class production runs (workers.worker.AppWorker); the
e-conomic sandbox runs inside them (it stands in for e-conomic's servers, so the time spent in it is shown
apart: in production it is network wait, not our work). Database: BENCH_DATABASE_URL, else a throwaway
SQLite file; Redis: BENCH_REDIS_URL (flushed!), else an embedded redis-server. Not collected by pytest.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARM_UP = 3


def noop() -> None:
    """The yardstick: an RQ job that does nothing."""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# --- the worker processes ----------------------------------------------------------------------------------


def run_worker(worker_class: str) -> None:
    """A worker that counts in Redis the requests it sends to the sandboxes, the time spent in them, and the
    time it waited for our own per-organisation pace (the rate limiter)."""
    import importlib

    from redis import Redis
    from rq import Queue

    from portal.connectors.ratelimit import RateLimiter
    from portal.sandbox.transport import SandboxTransport

    redis = Redis.from_url(os.environ["REDIS_URL"])
    original = SandboxTransport.handle_request
    # The time these counters' own Redis round trips take: the bench's, not the pipeline's (production makes
    # none of them), so it is counted apart too — with the next call's counters (the last one's is lost).
    counting = [0.0]

    def counted(self, request):
        started = time.perf_counter()
        try:
            return original(self, request)
        finally:
            # e-conomic's journals service (/sandbox/e-conomic-apis/…) is e-conomic too
            system = request.url.path.split("/")[2].removesuffix("-apis")
            finished = time.perf_counter()
            pipe = redis.pipeline()
            pipe.incr(f"bench:calls:{system}")
            pipe.incrbyfloat("bench:sandbox_seconds", finished - started)
            pipe.incrbyfloat("bench:counting_seconds", counting[0])
            pipe.execute()
            counting[0] = time.perf_counter() - finished

    SandboxTransport.handle_request = counted
    acquire = RateLimiter.acquire

    def paced(self):
        waited = acquire(self)
        if waited:
            started = time.perf_counter()
            redis.incrbyfloat("bench:paced_seconds", waited)
            counting[0] += time.perf_counter() - started
        return waited

    RateLimiter.acquire = paced
    module, name = worker_class.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    cls([Queue("default", connection=redis)], connection=redis).work(logging_level="WARNING")


# --- the run -----------------------------------------------------------------------------------------------


# How often the bench looks whether the workers are done: often enough that it adds < 1 % to a run of
# seconds, seldom enough not to take the CPU the workers are measured on (2 cores: a query every 5 ms took
# a fifth of one).
POLL_SECONDS = 0.02


def wait_until(condition, timeout: float = 600.0, every: float = POLL_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the workers")
        time.sleep(every)


def queue_idle(queue) -> bool:
    from rq.registry import StartedJobRegistry

    return queue.count == 0 and StartedJobRegistry(queue=queue).count == 0


def prepare(app):
    """The demo account (e-conomic sandbox + WooCommerce sandbox shop), booking on `processing`; the shop's
    own webhooks removed: the bench posts the signed deliveries itself, at the pace it measures."""
    from flask_migrate import upgrade
    from sqlalchemy import select

    from portal.cli import seed_demo
    from portal.extensions import db
    from portal.models import SourceLink
    from portal.pipeline.source_links import update_settings
    from portal.sandbox.transport import IN_PROCESS_ORIGIN
    from portal.setups import operations as setup_operations
    from portal.setups.connections import connector_for

    upgrade()
    seed_demo()
    source_link = db.session.scalar(select(SourceLink))
    setup_operations.set_auto_book(source_link.setup, True)
    update_settings(source_link, {**source_link.settings, "states": {"processing": "booked"}})
    delivery_url = f"{IN_PROCESS_ORIGIN}/webhooks/woocommerce/{source_link.webhook_token}"
    connector_for(source_link.connection).delete_webhooks(delivery_url)
    return source_link.id


def place_orders(app, count: int) -> list[bytes]:
    """Orders placed in the WooCommerce sandbox shop, as the JSON bodies its webhooks would carry."""
    import httpx

    from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport

    bodies = []
    with httpx.Client(
        transport=SandboxTransport(app),
        base_url=f"{IN_PROCESS_ORIGIN}/sandbox/woocommerce/wp-json/wc/v3",
        auth=("ck_demo", "cs_demo"),
    ) as shop:
        # simple products with Danish VAT (a gift card is VAT-free: it needs its own product group)
        listed = shop.get("/products", params={"per_page": 50, "type": "simple"}).json()
        products = [p for p in listed if p.get("sku") and p.get("tax_status") == "taxable"][:3]
        for n in range(count):
            order = shop.post(
                "/orders",
                json={
                    "status": "processing",
                    "billing": {
                        "first_name": "Ida",
                        "last_name": "Holm",
                        "email": "ida@example.dk",  # one customer: cached after the warm-up
                        "country": "DK",
                    },
                    "payment_method": "bacs",
                    "line_items": [
                        {"product_id": products[i % len(products)]["id"], "quantity": 1 + (n + i) % 3}
                        for i in range(2)
                    ],
                    "shipping_lines": [{"method_id": "flat_rate", "method_title": "GLS", "total": "39.20"}],
                },
            )
            assert order.status_code == 201, order.text
            bodies.append(json.dumps(order.json()).encode())
    return bodies


def post_webhooks(client, token: str, secret: str, bodies: list[bytes], first_id: int) -> None:
    from portal.connectors.woocommerce import signature

    for n, body in enumerate(bodies):
        response = client.post(
            f"/webhooks/woocommerce/{token}",
            data=body,
            content_type="application/json",
            headers={
                "X-WC-Webhook-Signature": signature(body, secret),
                "X-WC-Webhook-Topic": "order.updated",
                "X-WC-Webhook-Delivery-ID": f"bench-{first_id + n}",
            },
        )
        assert response.status_code == 200, response.get_data(as_text=True)


def done_count(db, source_link_id) -> int:
    from sqlalchemy import func, select

    from portal.models import Transfer

    db.session.rollback()  # a fresh snapshot
    statuses = dict(
        db.session.execute(
            select(Transfer.status, func.count())
            .where(Transfer.source_link_id == source_link_id)
            .group_by(Transfer.status)
        ).all()
    )
    # waiting: a renewal's payment parked for its setup's batch (portal.pipeline.payment_batches)
    bad = {k: v for k, v in statuses.items() if k not in ("done", "pending", "running", "waiting")}
    if bad:
        errors = db.session.scalars(
            select(Transfer.error_message).where(Transfer.status.in_(bad)).limit(3)
        ).all()
        raise SystemExit(f"transfers did not finish: {bad}: {errors}")
    return statuses.get("done", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300, help="orders in the throughput run")
    parser.add_argument("--renewals", type=int, default=300, help="Stripe renewals in the throughput run")
    parser.add_argument(
        "--latency-orders", type=int, default=50, help="orders (and renewals) sent one at a time"
    )
    parser.add_argument("--noops", type=int, default=1000, help="no-op jobs in the yardstick run")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--worker-class", default="workers.worker.AppWorker")
    parser.add_argument(
        "--recovery", action="store_true", help="then kill a worker mid-transfer and time the recovery"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        run_worker(args.worker_class)
        return

    with tempfile.TemporaryDirectory() as directory:
        processes = []
        env = {
            "INSTANCE_PATH": directory,
            "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL")
            or f"sqlite:///{Path(directory) / 'bench.db'}",
            "SANDBOX_ENABLED": "1",
        }
        if os.environ.get("BENCH_REDIS_URL"):
            env["REDIS_URL"] = os.environ["BENCH_REDIS_URL"]
        else:
            from portal.devserver import start_embedded_redis

            redis_process, env["REDIS_URL"] = start_embedded_redis(Path(directory))
            processes.append(redis_process)
        os.environ.update(env)
        try:
            bench(args, processes)
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(10)


class Section:
    """One kind of sale measured: its link, the signed bodies to deliver, and how to post them."""

    def __init__(self, name, source_link_id, bodies, post):
        self.name, self.source_link_id, self.bodies, self.post = name, source_link_id, bodies, post


def bench(args, processes) -> None:
    from redis import Redis
    from rq import Queue

    from portal import create_app
    from portal.extensions import db
    from portal.models import SourceLink
    from tests import bench_renewals

    redis = Redis.from_url(os.environ["REDIS_URL"])
    redis.flushdb()
    app = create_app()
    sections = []
    with app.app_context():
        source_link_id = prepare(app)
        if args.orders:
            source_link = db.session.get(SourceLink, source_link_id)
            token, secret = source_link.webhook_token, source_link.webhook_secret["secret"]
            bodies = place_orders(app, WARM_UP + args.orders + args.latency_orders + args.recovery)
            sections.append(
                Section(
                    "order",
                    source_link_id,
                    bodies,
                    lambda client, part, first, t=token, s=secret: post_webhooks(client, t, s, part, first),
                )
            )
        if args.renewals:
            link_id, token, secret = bench_renewals.prepare(app)
            bodies = bench_renewals.make_renewals(app, WARM_UP + args.renewals + args.latency_orders)
            sections.append(
                Section(
                    "renewal",
                    link_id,
                    bodies,
                    lambda client, part, first, t=token, s=secret: bench_renewals.post_webhooks(
                        client, t, s, part
                    ),
                )
            )
    queue = Queue("default", connection=redis)
    queue.empty()
    for _ in range(args.workers):
        processes.append(start_worker(args.worker_class))
    client = app.test_client()
    with app.app_context():
        # warm-up: worker start, imports, the customer and product caches
        for section in sections:
            section.post(client, section.bodies[:WARM_UP], 0)
            wait_until(lambda s=section: done_count(db, s.source_link_id) == WARM_UP, timeout=120, every=0.05)

        # the yardstick: as many no-op jobs, all at once, on the same workers
        wait_until(lambda: queue_idle(queue))
        started = time.perf_counter()
        with redis.pipeline() as pipe:
            for _ in range(args.noops):
                queue.enqueue("tests.bench_pipeline.noop", pipeline=pipe)
            pipe.execute()
        wait_until(lambda: queue_idle(queue))
        noop_seconds = (time.perf_counter() - started) / args.noops

        results = []
        for section in sections:
            count = args.orders if section.name == "order" else args.renewals
            results.append(measure(db, redis, client, section, count, args.latency_orders))
            if args.recovery and section.name == "order":
                results[-1]["recovery"] = recover_from_a_kill(
                    app, db, args, processes, queue, client, section.bodies[-1], source_link_id
                )

    database = os.environ["DATABASE_URL"].split(":")[0]
    print(
        f"\nPython {sys.version.split()[0]}, {database}, {args.workers} × {args.worker_class}, "
        f"{os.cpu_count()} cores"
    )
    rows = [
        ("no-op RQ job", f"{noop_seconds * 1000:.2f} ms ({1 / noop_seconds:.0f} jobs/s, {args.noops} jobs)")
    ]
    for result in results:
        rows += report(result, noop_seconds, args.workers)
    for label, value in rows:
        print(f"{label:<30}{value}")


def measure(db, redis, client, section, count: int, one_at_a_time: int) -> dict:
    """Throughput (every webhook at once, until the last transfer is done), then latency (one at a time)."""
    redis.delete(
        "bench:calls:e-conomic", "bench:sandbox_seconds", "bench:paced_seconds", "bench:counting_seconds"
    )
    started = time.perf_counter()
    section.post(client, section.bodies[WARM_UP : WARM_UP + count], WARM_UP)
    posted = time.perf_counter() - started
    wait_until(lambda: done_count(db, section.source_link_id) == WARM_UP + count)
    elapsed = time.perf_counter() - started
    result = {
        "name": section.name,
        "count": count,
        "elapsed": elapsed,
        "posted": posted,
        "calls": int(redis.get("bench:calls:e-conomic") or 0),
        "sandbox_seconds": float(redis.get("bench:sandbox_seconds") or 0),
        "paced_seconds": float(redis.get("bench:paced_seconds") or 0),
        "counting_seconds": float(redis.get("bench:counting_seconds") or 0),
    }
    latencies = []
    first = WARM_UP + count
    for n, body in enumerate(section.bodies[first : first + one_at_a_time]):
        started = time.perf_counter()
        section.post(client, [body], first + n)
        wait_until(lambda n=n: done_count(db, section.source_link_id) == first + n + 1, every=0.002)
        latencies.append((time.perf_counter() - started) * 1000)
    result["latencies"] = latencies
    return result


# Steady-state e-conomic calls per document: an order is a booked invoice (draft, book); a renewal paid by
# card is one more thing at most (its payment registered).
TARGET_CALLS = {"order": 2.5, "renewal": 2.2}
TARGET_OWN = 2  # the pipeline's own cost per document, in no-op RQ jobs (issue 16)


def report(result: dict, noop_seconds: float, workers: int) -> list[tuple[str, str]]:
    name, count, elapsed = result["name"], result["count"], result["elapsed"]
    latencies, sandbox_seconds, paced_seconds, counting_seconds = (
        result["latencies"],
        result["sandbox_seconds"],
        result["paced_seconds"],
        result["counting_seconds"],
    )
    per_doc = elapsed / count
    # The pipeline's own cost: the wall time less what the workers spent inside e-conomic's stand-in (in
    # production: waiting on the network), waiting for our own pace towards e-conomic, and counting both
    # for this bench.
    ours = per_doc - (sandbox_seconds + paced_seconds + counting_seconds) / workers / count
    rows = [
        (f"{name}s", f"{count} (+{WARM_UP} warm-up, {len(latencies)} one at a time)"),
        (f"{name}s per second", f"{count / elapsed:.1f} (webhooks posted in {result['posted']:.2f} s)"),
        (f"e-conomic calls per {name}", f"{result['calls'] / count:.2f} (target ≤ {TARGET_CALLS[name]})"),
    ]
    if latencies:
        rows.append(
            (
                "transfer p50 / p95",
                f"{statistics.median(latencies):.1f} / {percentile(latencies, 0.95):.1f} ms",
            )
        )
    if result.get("recovery") is not None:
        rows.append(
            (
                "recovery after SIGKILL",
                f"{result['recovery']:.1f} s (a worker killed mid-transfer → done; bound 30 s)",
            )
        )
    rows += [
        (f"per {name}, wall", f"{per_doc * 1000:.2f} ms = {per_doc / noop_seconds:.2f} × a no-op job"),
        ("  in e-conomic's stand-in", f"{sandbox_seconds / count * 1000:.2f} ms"),
        ("  waiting for our pace", f"{paced_seconds / count * 1000:.2f} ms (e-conomic's rate limit)"),
        ("  the bench counting these", f"{counting_seconds / count * 1000:.2f} ms (Redis round trips)"),
        (
            "  the pipeline's own",
            f"{ours * 1000:.2f} ms = {ours / noop_seconds:.2f} × a no-op job (target ≤ {TARGET_OWN})",
        ),
    ]
    return rows


def start_worker(worker_class: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bench_pipeline", "--worker", "--worker-class", worker_class],
        env=dict(os.environ),
    )


def recover_from_a_kill(app, db, args, processes, queue, client, body, source_link_id) -> float:
    """One more order, whose draft request hangs in e-conomic's stand-in: the worker posting it is SIGKILLed
    and a new one started (as a supervisor would); seconds from the kill until the order is done, with the
    production watchdog (workers.jobs.recover_lost_work) run by a real `rq cron`."""
    import signal

    import httpx
    from rq import Worker

    from portal.models import SourceLink
    from portal.sandbox.transport import IN_PROCESS_ORIGIN, SandboxTransport

    rq = str(Path(sys.executable).parent / "rq")
    cron = subprocess.Popen(
        [rq, "cron", "tests.pipeline.recovery_cron", "--url", os.environ["REDIS_URL"]],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    processes.append(cron)
    source_link = db.session.get(SourceLink, source_link_id)
    token, secret = source_link.webhook_token, source_link.webhook_secret["secret"]
    total = done_count(db, source_link_id) + 1
    with httpx.Client(transport=SandboxTransport(app), base_url=IN_PROCESS_ORIGIN) as sandbox:
        sandbox.put("/sandbox/e-conomic/_faults", json={"latency_ms": 60_000, "next": ["slow"]})
        post_webhooks(client, token, secret, [body], 10**6)

        def busy():
            return [w for w in Worker.all(queue=queue) if w.get_current_job_id()]

        wait_until(lambda: busy(), timeout=60)
        time.sleep(1)  # inside the hanging request
        victim = busy()[0]
        os.kill(victim.pid, signal.SIGKILL)
        killed = time.perf_counter()
        sandbox.delete("/sandbox/e-conomic/_faults")
    for process in processes:
        if process.pid == victim.pid:
            process.wait(10)
            processes.remove(process)
            break
    processes.insert(1, start_worker(args.worker_class))
    wait_until(lambda: done_count(db, source_link_id) == total, timeout=120, every=0.05)
    return time.perf_counter() - killed


if __name__ == "__main__":
    main()
