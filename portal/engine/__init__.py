"""The transfer pipeline's pure engine: plain functions over plain data.

No Flask, no database sessions, no HTTP, no Redis: every function takes data and returns a decision, so the
whole pipeline (normalise → decide VAT → build the invoice → recompute totals → reconcile) is testable in
milliseconds.

    documents.py  the canonical sales documents every source is normalised into (SalesDocument, Refund)
    ledger_documents.py  what the engine makes for a ledger (CustomerData, DraftInvoice, PaymentData,
                  Voucher …): the connectors import them from here
    sources/woocommerce.py, sources/shopify.py   shop payload → SalesDocument / Refund
    vat.py        dated EU rate table, VAT zone decision, VAT-rate drift check
    customers.py  which field to look the customer up by (or the collective customer)
    totals.py     each accounting system's arithmetic, 2-decimal pricing, reconciliation + rounding line
    invoice.py    SalesDocument + template + capabilities → DraftPlan (DraftInvoice, customer, products)
    money.py      Decimal parsing and rounding helpers
    settings.py   SourceLinkSettings (built from the database by the app)
"""
