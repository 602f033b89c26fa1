"""The transfer pipeline: raw events in, exactly one accounting document per sale (and per refund) out.

    intake.py      record_event stores the raw payload (deduplicated on the sender's delivery id), commits,
                   then queues the source link's drain job unless one is queued or running already
                   (scheduling.drain: one job at a time per source link processes its unprocessed events,
                   oldest first); process_event normalises, decides (state, activation date) and upserts
                   the Transfer, then posts it at once (later runs — retries, resumes, credit notes woken
                   up — are run_transfer jobs); refunds found on an order become refund events of their own
    posting.py     run_transfer, under a per-transfer Redis lock: build the DraftPlan with the engine, then
                   post step by step — customer → products (ensure.py) → draft → book → payment → mail
                   (invoice_mail.py); a checkpoint is committed before each remote call (what is about to be
                   sent: e.g. draft_requested), so a resume looks up what may have been made and never makes
                   it twice; the document "order" stops after customer → products → order (ledger_orders.py),
                   and a later state turns that order into the draft (e-conomic's upgrade) and goes on
    steps.py       what the steps share: the step log, TransferFailed, the rules around a remote call
    retries.py     back-off and give-up ("needs attention"), a person's retry (one or all matching), leave out
    preview.py     the decision (state → document, skip reasons) and the dry-run preview of a sale
    polls.py       the reconciliation poll, beside scheduling.py (the drain job, the watchdog)
    locks.py       the short leases kept alive by a heartbeat
    settings.py    an sales source's stored settings → the engine's SourceLinkSettings; templates
    source_links.py  creating sales sources and changing their settings (audited)
    checks.py      the accounting system's own draft totals against the plan, before booking
    views.py       the transfer log (/transfers)
    undo.py        the legal undo ("Fortryd overførsel"): a draft deleted, a booked invoice credited, then
                   transferred again or left out
    completeness.py  the completeness report ("Afstemning"): the shop's sales against the ledger's documents,
                   both read through their APIs; its fixes in completeness_fixes.py, its page
                   (/completeness) in completeness_views.py

Never twice: the unique Transfer per (source_link, kind, source id), the lock, and a lookup of the remote
document by its deterministic reference before every create and after every ambiguous failure.

The webhook endpoint is portal/webhooks; the RQ jobs are in workers/jobs.py, the periodic ones in
workers/schedule.py. The engine (portal/engine) decides; this package only moves data and keeps state.
"""
