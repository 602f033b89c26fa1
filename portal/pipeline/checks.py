"""What the accounting system made, checked against the plan before Bogbro books it.

The engine computes each document as the accounting system will (portal.engine.totals) and books only when
that matches the shop. The accounting system can still compute otherwise: its setup may differ from what
Bogbro was told. The classic case is OSS — an e-conomic product group whose EU sales account still carries
Finland's old 24 % while Finland's rate is 25.5 % since 2024-09-01 (IEX's most common failed test
transfer). So before booking, the draft's own totals are compared with the plan's: a difference leaves the
draft unbooked and says what to check — under OSS, the rate the accounting system applied next to the
destination's.
"""

from decimal import Decimal

from portal.connectors.base import OSS_COUNTRIES, OSS_LABEL, RemoteInvoice
from portal.engine.invoice import DraftPlan
from portal.engine.money import HUNDRED, ZERO, fmt_rate
from portal.engine.totals import TotalsLine, line_amount
from portal.pipeline.messages import N_, Message, amount, message

REMOTE_TOTALS_DIFFER = N_(
    "%(system)s computed %(computed)s with VAT %(computed_vat)s for the draft %(draft)s, but "
    "the order comes to %(expected)s with VAT %(expected_vat)s. The draft was not booked: check "
    "the VAT codes of the accounts its lines are booked on, correct the draft (or delete it and retry), then "
    "book it there."
)
REMOTE_TOTALS_DIFFER_BOOKED = N_(
    "%(system)s booked the invoice %(draft)s at %(computed)s with VAT %(computed_vat)s, but the "
    "order comes to %(expected)s with VAT %(expected_vat)s. Check the VAT codes of the accounts "
    "its lines are booked on, then correct the invoice with a credit note in %(system)s."
)
OSS_RATE_DIFFERS = N_(
    "%(system)s computed VAT of %(computed_vat)s for the draft %(draft)s, %(ledger_rate)s %% "
    "of its taxed lines, but a sale to a private customer in %(country)s carries %(country)s's VAT rate of "
    "%(rate)s %% under OSS: the order comes to %(expected)s with VAT %(expected_vat)s. The "
    "draft was not booked. Give the EU sales account of the product group chosen for %(country)s in the "
    "template “%(template)s” a VAT code with %(rate)s %% in %(system)s, then delete the draft and retry."
)


def remote_totals_differ(plan: DraftPlan, remote: RemoteInvoice, system: str) -> Message | None:
    """None when the draft's totals are the plan's (a credit note's compared as positive amounts); else the
    message for "totals differ" (a booked document's says how to correct it)."""
    ours, theirs = plan.totals, remote.totals
    if abs(theirs.gross) == abs(ours.gross) and abs(theirs.vat) == abs(ours.vat):
        return None
    currency = plan.invoice.currency
    figures = {
        "system": system,
        "draft": remote.number or remote.id,
        "computed": amount(abs(theirs.gross), currency),
        "computed_vat": amount(abs(theirs.vat), currency),
        "expected": amount(ours.gross, currency),
        "expected_vat": amount(ours.vat, currency),
    }
    country = plan.decision.oss_country
    ledger = _applied_rate(plan, abs(theirs.vat)) if country else None
    if country and ledger is not None and ledger != plan.decision.rate:
        name = OSS_COUNTRIES.get(country, country)
        return message(
            OSS_RATE_DIFFERS,
            labels=("template", "country") if country in OSS_COUNTRIES else ("template",),
            country=name,
            rate=fmt_rate(plan.decision.rate),
            ledger_rate=fmt_rate(ledger),
            template=OSS_LABEL,
            **figures,
        )
    return message(REMOTE_TOTALS_DIFFER_BOOKED if remote.booked else REMOTE_TOTALS_DIFFER, **figures)


def _applied_rate(plan: DraftPlan, vat: Decimal) -> Decimal | None:
    """The VAT rate the accounting system applied, read back from its VAT total, when the plan's taxed lines
    all carry one rate (an OSS invoice: the destination's standard rate, besides 0 % lines); to 0.1 %."""
    taxed = [
        (line, rate) for line, rate in zip(plan.invoice.lines, plan.line_rates, strict=True) if rate != ZERO
    ]
    if len({rate for _, rate in taxed}) != 1:
        return None
    net = sum(
        (
            line_amount(TotalsLine(li.quantity, li.unit_net_price, rate, li.discount_percent))
            for li, rate in taxed
        ),
        ZERO,
    )
    if net == ZERO:
        return None
    return (vat * HUNDRED / abs(net)).quantize(Decimal("0.1"))
