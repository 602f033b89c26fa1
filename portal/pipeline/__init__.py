"""The transfer pipeline: webshop orders and refunds → documents in the accounting systems, once.

    operations.py    record_event → drain → process_event → run_transfer (checkpointed posting), retries, the
                     watchdog (requeue_stuck), refunds (credit notes), the reconciliation poll, preview
    settings.py      an order integration's stored settings → the engine's IntegrationSettings; templates
    integrations.py  creating order integrations and changing their settings (audited)
    checks.py        the accounting system's own draft totals against the plan, before booking
    views.py         the transfer log (/transfers)
    completeness.py  the completeness report ("Afstemning"): the shop's sales against the ledger's documents,
                     both read through their APIs; its fixes in completeness_fixes.py, its page
                     (/completeness) in completeness_views.py

The webhook endpoint is portal/webhooks; the RQ jobs are in workers/jobs.py, the periodic ones in
workers/schedule.py. The engine (portal/engine) decides; this package only moves data and keeps state.
"""
