"""`make bench-completeness` (BENCH_ORDERS=10000): the completeness report of a month of BENCH_ORDERS orders,
checked against the sandboxes through the real connectors — the WooCommerce shop's orders page by page
(100 a page, the REST API's maximum) and e-conomic's documents (1,000 a page) — at the connectors' own
pace (their shared rate limiters: e-conomic 3 requests a second, WooCommerce 5). Prints the time, the API
calls per system and the time spent waiting for the rate limiters.

The month is made in the sandboxes' stores directly: one order placed in the shop and transferred by the
pipeline into e-conomic, then copied BENCH_ORDERS times on both sides (the pipeline's own speed is `make
bench`'s). Run by pytest for the test fixtures (database, Redis, sandboxes), but not collected by it: its
name is not test_*.py.
"""

import os
import time
from datetime import UTC, date, datetime, timedelta

from portal.connectors.ratelimit import RateLimiter
from portal.models import CompletenessReport
from portal.pipeline import completeness
from portal.sandbox.economic import Agreement
from portal.sandbox.transport import SandboxTransport
from portal.sandbox.woocommerce import Shop, date_fields
from tests.pipeline import conftest as pipeline_fixtures
from tests.pipeline.conftest import feed, make_setup, make_source_link, shop_order

ORDERS = int(os.environ.get("BENCH_ORDERS", "10000"))
shop = pipeline_fixtures.shop  # the WooCommerce sandbox shop, as the pipeline's tests use it


def last_month() -> tuple[date, date]:
    end = completeness.today().replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end


def test_bench_a_month_of_orders(db, account, run_jobs, shop, monkeypatch):
    start, end = last_month()
    setup = make_setup(account, "e-conomic", auto_book=True)
    source_link = make_source_link(db, account, setup, activation_date=start.isoformat())
    first = shop_order(shop, date_created=f"{start.isoformat()}T10:00:00")
    feed(source_link, first)
    run_jobs()

    woo, economic = Shop(), Agreement(int(setup.external_id))
    order = woo.get("orders", first["id"])
    (number,) = [
        n
        for n, d in economic.store.items("booked")
        if d["references"]["other"].endswith(f"-{first['number']}")
    ]
    invoice = economic.store.get("booked", number)
    days = (end - start).days + 1
    made = time.perf_counter()
    for n in range(1, ORDERS):
        moment = datetime.combine(start + timedelta(days=n % days), datetime.min.time(), UTC) + timedelta(
            hours=10
        )
        copy = {**order, "id": order["id"] + 10 * n, "number": str(order["id"] + 10 * n)}
        copy.update(date_fields("date_created", moment), **date_fields("date_modified", moment))
        woo.put("orders", copy)
        economic.store.put(
            "booked",
            int(number) + n,
            {
                **invoice,
                "bookedInvoiceNumber": int(number) + n,
                "date": moment.date().isoformat(),
                "references": {**invoice["references"], "other": f"WC-12-{copy['number']}"},
            },
        )
        if n % 1000 == 0:
            db.session.commit()
    db.session.commit()
    print(f"\n{ORDERS} orders and invoices made in the sandboxes in {time.perf_counter() - made:.1f} s")

    waited = []
    acquire = RateLimiter.acquire

    def paced(self):
        seconds = acquire(self)
        waited.append(seconds or 0)
        return seconds

    monkeypatch.setattr(RateLimiter, "acquire", paced)
    in_sandboxes = []  # they stand in for the shop's and e-conomic's servers: network wait in production
    handle = SandboxTransport.handle_request

    def timed(self, request):
        began = time.perf_counter()
        try:
            return handle(self, request)
        finally:
            in_sandboxes.append(time.perf_counter() - began)

    monkeypatch.setattr(SandboxTransport, "handle_request", timed)
    report = completeness.request(source_link, start, end)
    began = time.perf_counter()
    completeness.run(report.id)
    took = time.perf_counter() - began
    report = db.session.get(CompletenessReport, report.id)
    assert report.status == "done", report.error
    assert report.result["sales"] == ORDERS and completeness.open_findings(report) == [], report.findings[:3]
    calls = ", ".join(f"{system} {n}" for system, n in sorted(report.calls.items()))
    documents = report.result["documents"]
    print(f"completeness report of {start:%B %Y}: {ORDERS} orders against {documents} documents")
    print(f"  time           {took:.1f} s")
    print(f"    in the sandboxes (the shop's and e-conomic's servers)  {sum(in_sandboxes):.1f} s")
    print(f"    waiting for the connectors' rate limiters            {sum(waited):.1f} s")
    print(f"    Bogbro's own work (reading, comparing, storing)      {took - sum(in_sandboxes):.1f} s")
    print(f"  API calls      {calls}")
