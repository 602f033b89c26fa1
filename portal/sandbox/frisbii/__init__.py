"""Emulator of one Frisbii (formerly Reepay) account below /sandbox/frisbii/ — see api.py's docstring and
docs/connectors/frisbii.md. One blueprint (`bp`), its routes split by resource: api.py (auth, errors, account
and webhook settings, customers, plans, subscriptions, the sandbox's own controls, seeding), invoices.py
(invoices, the invoice list, charges, refunds), discounts.py (discounts, subscription discounts, additional
costs); billing.py holds the state and rules (amounts, invoices, renewals, refunds, events, webhooks).
"""

from portal.sandbox.frisbii import discounts, invoices  # noqa: F401  (their routes join bp)
from portal.sandbox.frisbii.api import bp, seed
from portal.sandbox.frisbii.billing import deliver

# The SANDBOXES contract: bp and seed; workers.jobs.deliver_sandbox_webhook calls deliver.
__all__ = ["bp", "deliver", "seed"]
