"""`make bench-portal` (BENCH_ARGS="--transfers 1000000"): the portal's pages over a year of history.

Loads N transfers (two log rows each) for the demo account into PostgreSQL with SQL (generate_series, spread
over the last 365 days), serves the app with gunicorn (2 workers) and asks each page over real HTTP, logged
in as the demo owner, printing the median and p95 per page. The load is kept: a second run with the same N
measures again without loading (`--reload` loads anew).

Database: BENCH_DATABASE_URL, else postgresql://postgres@127.0.0.1:5432/bogbro_bench (created when missing);
never a database you care about: its transfers are replaced. Redis: an embedded redis-server. Secrets and the
Redis socket live in instance/bench/. Not collected by pytest.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bogbro_bench"
DEMO_LOGIN = ("demo@example.com", "demo-demo")

# One transfer in this many has each status; the rest are done.
LOAD_SQL = """
INSERT INTO transfers (account_id, source_link_id, kind, source_ref, order_ref, order_number, reference,
    document, status, reason, error_kind, error_message, products_ensured, draft_requested, draft_id,
    booked_number, mailed, shop_gross, shop_vat, computed_gross, computed_vat, attempts, created_at,
    updated_at, finished_at, rebuild_draft)
SELECT %(account)s, %(source_link)s, 'invoice', 'bench-' || i, 'bench-' || i, (100000 + i)::text,
    'bogbro-bench-' || i, 'draft', s.status,
    CASE WHEN s.status = 'skipped' THEN 'The order''s state does not transfer.' END,
    CASE WHEN s.status = 'needs_attention'
         THEN (ARRAY['configuration','order','transient','totals_differ'])[1 + i %% 4] END,
    CASE WHEN s.status = 'needs_attention' THEN 'The accounting system refused the invoice.' END,
    true, true, CASE WHEN s.status = 'done' THEN (10000 + i)::text END,
    NULL, false, 125.00 + (i %% 1000), 25.00 + (i %% 1000) / 5.0, 125.00 + (i %% 1000),
    25.00 + (i %% 1000) / 5.0, 1, t.at, t.at, t.at, false
FROM generate_series(1, %(n)s) AS i
CROSS JOIN LATERAL (SELECT now() - interval '365 days' * (%(n)s - i) / %(n)s AS at) AS t
CROSS JOIN LATERAL (SELECT CASE
    WHEN i %% 50 = 7 THEN 'needs_attention'
    WHEN i %% 25 = 3 THEN 'skipped'
    WHEN i %% 200 = 11 THEN 'waiting'
    ELSE 'done' END AS status) AS s
"""
LOG_SQL = """
INSERT INTO transfer_logs (account_id, transfer_id, attempt, step, outcome, message, details, created_at)
SELECT t.account_id, t.id, 1, step.name, step.outcome, step.message, '{}'::json, t.created_at
FROM transfers t
CROSS JOIN (VALUES ('decide', 'ok', 'The order becomes a draft invoice.'),
                   ('draft', 'ok', 'Draft invoice created.')) AS step(name, outcome, message)
WHERE t.account_id = %(account)s
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def ensure_database(url: str, instance: Path) -> None:
    """The bench database, made anew when this checkout has not used it yet: its secrets (instance/bench)
    are this checkout's, and another checkout's encrypted credentials would not decrypt."""
    name = url.rsplit("/", 1)[1]
    marker = instance / "database"
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not marker.is_file() or marker.read_text() != url:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    instance.mkdir(parents=True, exist_ok=True)
    marker.write_text(url)


def flask(env: dict, *args: str) -> None:
    subprocess.run([str(ROOT / ".venv/bin/flask"), "--app", "wsgi", *args], env=env, check=True, cwd=ROOT)


def load(url: str, n: int, reload: bool) -> dict:
    """The demo account's transfers: N of them (replaced when the count differs or `reload`)."""
    with psycopg.connect(url, autocommit=True) as conn:
        account, source_link = conn.execute(
            "SELECT account_id, id FROM source_links ORDER BY id LIMIT 1"
        ).fetchone()
        have = conn.execute("SELECT count(*) FROM transfers WHERE account_id = %s", (account,)).fetchone()[0]
        if have != n or reload:
            started = time.perf_counter()
            print(f"loading {n:,} transfers and {2 * n:,} log rows …", flush=True)
            with conn.transaction():
                conn.execute("DELETE FROM transfer_logs WHERE account_id = %s", (account,))
                conn.execute("DELETE FROM transfers WHERE account_id = %s", (account,))
                conn.execute(LOAD_SQL, {"account": account, "source_link": source_link, "n": n})
                conn.execute(LOG_SQL, {"account": account})
            conn.execute("VACUUM ANALYZE transfers")
            conn.execute("VACUUM ANALYZE transfer_logs")
            print(f"loaded in {time.perf_counter() - started:.0f} s", flush=True)
        newest = conn.execute(
            "SELECT id, order_number FROM transfers WHERE account_id = %s"
            " ORDER BY id DESC LIMIT 1 OFFSET 5000",
            (account,),
        ).fetchone()
        return {"transfer_id": newest[0], "order": newest[1]}


def login(client: httpx.Client) -> str:
    def token(html: str) -> str:
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)

    page = client.get("/login")
    response = client.post(
        "/login",
        data={"csrf_token": token(page.text), "email": DEMO_LOGIN[0], "password": DEMO_LOGIN[1]},
    )
    assert response.status_code in (200, 302), response.status_code
    return token(client.get("/transfers").text)


def pages(sample: dict) -> list[tuple[str, str, str, dict | None]]:
    """(label, method, path, form) per page measured."""
    month_end = date.today().replace(day=1) - timedelta(days=1)  # last whole month
    month = {"date_from": month_end.replace(day=1).isoformat(), "date_to": month_end.isoformat()}
    prefix = sample["order"][:4] + "*"  # 1,000 order numbers at 1,000,000 transfers
    query = "&".join(f"{k}={v}" for k, v in month.items())
    return [
        ("dashboard", "GET", "/dashboard", None),
        ("transfer log", "GET", "/transfers", None),
        ("needs attention", "GET", "/transfers?status=needs_attention", None),
        ("order number", "GET", f"/transfers?order={sample['order']}", None),
        ("prefix search", "GET", f"/transfers?order={prefix}", None),
        ("one month", "GET", f"/transfers?{query}", None),
        ("a transfer's page", "GET", f"/transfers/{sample['transfer_id']}", None),
        ("bulk count: all", "POST", "/transfers/retry", {}),
        ("bulk count: attention", "POST", "/transfers/retry", {"status": "needs_attention"}),
        ("bulk count: month", "POST", "/transfers/retry", month),
    ]


def measure(base: str, sample: dict, requests: int, cpu_file: Path) -> list[tuple]:
    """Per page: (label, p50, p95 over HTTP, p50, p95 of the web worker's CPU time), in ms."""
    with httpx.Client(base_url=base, timeout=30) as client:
        csrf = login(client)
        results = []
        for label, method, path, form in pages(sample):
            timings = []
            for i in range(requests + 3):  # three to warm up
                if i == 3:
                    cpu_file.write_text("")
                started = time.perf_counter()
                if method == "GET":
                    response = client.get(path)
                else:
                    response = client.post(path, data={**form, "csrf_token": csrf})
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise SystemExit(f"{label}: HTTP {response.status_code}")
                if i >= 3:
                    timings.append(elapsed)
            cpu = [float(line) for line in cpu_file.read_text().split()]
            results.append(
                (
                    label,
                    statistics.median(timings),
                    percentile(timings, 0.95),
                    statistics.median(cpu),
                    percentile(cpu, 0.95),
                )
            )
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50, help="per page")
    parser.add_argument("--reload", action="store_true", help="load the transfers anew")
    parser.add_argument("--port", type=int, default=5077)
    args = parser.parse_args()

    from portal.devserver import start_embedded_redis

    url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_URL
    instance = ROOT / "instance" / "bench"
    ensure_database(url, instance)
    redis_process, redis_url = start_embedded_redis(instance)
    cpu_file = instance / "bench-cpu.txt"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "INSTANCE_PATH": str(instance),
        "BENCH_TIMINGS": str(cpu_file),
    }
    server = None
    try:
        flask(env, "db", "upgrade")
        flask(env, "seed-demo")
        sample = load(url, args.transfers, args.reload)
        server = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/gunicorn"),
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{args.port}",
                "--config",
                "python:tests.bench_portal_hooks",
                "wsgi:app",
            ],
            env=env,
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{args.port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        load_before = os.getloadavg()[0]
        results = measure(base, sample, args.requests, cpu_file)
        load_after = os.getloadavg()[0]
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        redis_process.terminate()
        redis_process.wait(10)
    print(f"\n{args.transfers:,} transfers (two log rows each), gunicorn 2 workers, {args.requests} requests")
    # The machine may be shared: the load says how much of the time was waiting for a core.
    print(f"load average (1 min) {load_before:.1f} before, {load_after:.1f} after, {os.cpu_count()} cores")
    print(f"{'':<24} {'over HTTP':>17}   {'web worker CPU':>17}")
    print(f"{'page':<24} {'p50 ms':>8} {'p95 ms':>8}   {'p50 ms':>8} {'p95 ms':>8}")
    for label, p50, p95, cpu50, cpu95 in results:
        print(f"{label:<24} {p50:>8.1f} {p95:>8.1f}   {cpu50:>8.1f} {cpu95:>8.1f}")
    sys.exit(0)


if __name__ == "__main__":
    main()
