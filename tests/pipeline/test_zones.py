"""VAT zones through the pipeline: an EU business with a valid VAT number (reverse charge) and an export,
into e-conomic and Dinero, checked in the sandboxes."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from portal.models import Transfer
from tests.engine.factories import wc_order
from tests.pipeline.conftest import feed, make_setup, make_source_link, remote


@pytest.mark.parametrize("system", ["e-conomic", "dinero"])
def test_eu_business_with_a_vat_number_is_reverse_charged(db, account, run_jobs, system):
    setup = make_setup(account, system, auto_book=True)
    source_link = make_source_link(db, account, setup)
    payload = wc_order(
        [("Keramikkrus", "KRUS-01", 2, "160.00", "0")],
        country="SE",
        company="Företag AB",
        meta=[("vat_number", "SE556703748501")],
        number="6001",
        date_gmt="2026-11-20T10:00:00",
    )
    feed(source_link, payload)
    run_jobs()

    transfer = db.session.scalar(select(Transfer))
    assert transfer.status == "done", transfer.error_message
    found = remote(setup).find_invoice("WC-12-6001")
    assert found.booked
    assert (found.totals.net, found.totals.vat, found.totals.gross) == (
        Decimal("160.00"),
        Decimal("0.00"),
        Decimal("160.00"),
    )


@pytest.mark.parametrize("system", ["e-conomic", "dinero"])
def test_an_export_outside_the_eu_has_no_vat(db, account, run_jobs, system):
    setup = make_setup(account, system, auto_book=True)
    source_link = make_source_link(db, account, setup)
    payload = wc_order(
        [("Tekande", "TE-02", 1, "240.00", "0")],
        shipping=[("DHL Express", "100.00", "0")],
        country="NO",
        number="6002",
        date_gmt="2026-11-20T10:00:00",
    )
    feed(source_link, payload)
    run_jobs()

    transfer = db.session.scalar(select(Transfer))
    assert transfer.status == "done", transfer.error_message
    found = remote(setup).find_invoice("WC-12-6002")
    assert found.booked and found.totals.vat == Decimal("0.00") and found.totals.gross == Decimal("340.00")
