"""Server time of a price recompute: `.venv/bin/python -m tests.bench_calculator [requests]`.

Builds a throwaway SQLite database with the migrations (or uses BENCH_DATABASE_URL), loads the demo
catalogue, and sends HTMX recompute requests (the partial the page swaps in on every change) with varied
selections through the WSGI app in this process, so the time measured is the server's: routing, loading
the catalogue from the database, pricing, rendering. Not collected by pytest (not a test_*.py file).
"""

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from flask_migrate import upgrade

from portal import create_app
from portal.calculator.seed import seed_catalogue

SELECTIONS = [
    "systems=e-conomic&systems=woocommerce&orders={orders}",
    "systems=e-conomic&systems=clearhaus&orders={orders}&addons=paymatch&billing=half-yearly",
    "systems=dinero&systems=shopify&systems=stripe&orders={orders}&addons=mapping&addons=historic-import",
    "systems=e-conomic&systems=shopify&orders={orders}&qty-extra-economic=3&setup=1&vat=incl",
    "systems=dynaccount&systems=zettle&systems=csv-xml&orders={orders}&billing=half-yearly",
    "systems=uniconta&systems=shopify&orders={orders}",  # special
    "systems=billy&systems=woocommerce&orders={orders}",  # unavailable
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(client, paths: list[str], headers: dict) -> list[float]:
    timings = []
    for path in paths:
        start = time.perf_counter()
        response = client.get(path, headers=headers)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return timings


def report(label: str, timings: list[float]) -> None:
    print(
        f"{label:<34} n={len(timings):<4} median {statistics.median(timings):6.2f} ms   "
        f"p95 {percentile(timings, 0.95):6.2f} ms   max {max(timings):6.2f} ms"
    )


def main(count: int = 500) -> None:
    with tempfile.TemporaryDirectory() as directory:
        url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{Path(directory) / 'bench.sqlite3'}"
        app = create_app(
            {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "REDIS_URL": "redis://unused"}
        )
        with app.app_context():
            upgrade()
            seed_catalogue()
        client = app.test_client()
        rng = random.Random(5)
        paths = [
            "/priser?" + rng.choice(SELECTIONS).format(orders=rng.randint(1, 12000)) for _ in range(count)
        ]
        measure(client, paths[:50], {"HX-Request": "true"})  # warm up: imports, template compilation
        print(
            f"Python {sys.version.split()[0]}, database {app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}"
        )
        report(
            "recompute (HTMX partial)", measure(client, paths, {"HX-Request": "true", "HX-Target": "result"})
        )
        report("full page /priser", measure(client, paths[: count // 5], {}))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
