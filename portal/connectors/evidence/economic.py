"""e-conomic: the legacy REST API's official JSON Schemas (../shared/specs/e-conomic/rest-json-schemas), its
documentation source (github e-conomic/slate), and the journals service's OpenAPI document and changelog."""

from portal.connectors.base import N_
from portal.connectors.evidence import Call


def schema(*names: str) -> str:
    return " · ".join(f"spec: e-conomic/rest-json-schemas/{name}.schema.json" for name in names)


DOCS = "doc: https://github.com/e-conomic/slate source/includes"  # restdocs.e-conomic.com's own source
CONNECT = "doc: https://restdocs.e-conomic.com/#authentication (e-conomic/slate _authentication.md)"
JOURNALS_OAPI = "spec: e-conomic/openapi/journalsapi-v5.0.0.openapi.json"
JOURNALS_CHANGELOG = "doc: https://apis.e-conomic.com/journalsapi/redoc.html (changelog 11.1.0)"
BOOK_ENTRIES_CODE = (
    "code: Rackbeat/laravel-economic src/Builders/ResourceApi/Journals/JournalBookingBuilder.php @36cb568"
    " · code: borgels/mcp-server-e-conomic src/economic/bookings.ts @b0ce0f6"
)
# the POST takes an array of vouchers: "Bulk creation is supported."
BULK_VOUCHERS = "doc: https://github.com/e-conomic/slate source/includes/_journals.md @505400d"
UPGRADE_CODE = (
    "code: LasseRafn/economic DraftOrder::upgradeToDraftInvoice · code: NobrainerWeb/economic bookSentOrder"
)

# a voucher is looked up by its text before it is posted: in the journal, then among the year's booked entries
LOOKUP = (
    "journals.journalNumber.get",
    "journals.journalNumber.entries.get",
    "accounting-years.get",
    "accounting-years.accountingYear.entries.get",
)

EVIDENCE = (
    Call("start_connect", "GET {connect_url}?appPublicToken=…&redirectUrl=…", CONNECT),
    Call("finish_connect", "GET /self", f"{CONNECT} · {schema('self.get')}"),
    Call("verify", "GET /self", schema("self.get")),
    Call("list_organisations", "GET /self", schema("self.get")),
    Call(
        "list_choices",
        "GET /layouts · /payment-terms · /journals · /accounts · /vat-zones · /vat-accounts"
        " · /customer-groups",
        schema(
            "layouts.get",
            "payment-terms.get",
            "journals.get",
            "accounts.get",
            "vat-zones.get",
            "vat-accounts.get",
            "customer-groups.get",
        ),
    ),
    Call(
        "list_choices",
        "GET /product-groups + GET /product-groups/{n}/sales-accounts",
        schema("product-groups.get", "product-groups.productGroupNumber.sales-accounts.get"),
    ),
    Call(
        "list_choices",
        "GET journalsapi/v16.0.1/draft-entries (foreign entries in a journal)",
        f"{JOURNALS_OAPI}#GET /draft-entries",
    ),
    Call(
        "find_customer",
        "GET /customers?filter=… + GET /customers/{customerNumber}",
        schema("customers.get", "customers.customerNumber.get"),
    ),
    Call("create_customer", "POST /customers", schema("customers.post")),
    Call(
        "update_customer",
        "GET + PUT /customers/{customerNumber}",
        schema("customers.customerNumber.get", "customers.customerNo.put"),
    ),
    Call("find_product", "GET /products/{productNumber}", schema("products.productNumber.get")),
    Call("create_product", "POST /products", schema("products.post")),
    Call(
        "update_product",
        "GET + PUT /products/{productNumber}",
        schema("products.productNumber.get", "products.productNumber.put"),
    ),
    Call(
        "get_stock", "GET /products/{productNumber} (inventory.inStock)", schema("products.productNumber.get")
    ),
    Call(
        "create_draft_invoice",
        "GET /invoices/drafts?filter=references.other$eq:… + POST /invoices/drafts",
        schema("invoices.drafts.get", "invoices.drafts.post"),
    ),
    Call(
        "create_credit_note",
        "POST /invoices/drafts (negative quantities)",
        f"{schema('invoices.drafts.post')} · {DOCS}/_invoices.md",
    ),
    Call(
        "replace_draft",
        "PUT /invoices/drafts/{draftInvoiceNumber}",
        schema("invoices.drafts.draftInvoiceNumber.put"),
    ),
    Call(
        "find_invoice",
        "GET /invoices/drafts?filter=… + GET /invoices/booked?filter=…",
        schema("invoices.drafts.get", "invoices.booked.get"),
    ),
    Call("book_invoice", "POST /invoices/booked", schema("invoices.booked.post")),
    Call(
        "list_documents",
        "GET /invoices/drafts · /invoices/booked · /orders/drafts · /orders/sent"
        " ?filter=date$gte:…$and:date$lte:…$and:references.other$like:<prefix>*&pagesize=1000&skippages=n",
        f"{schema('invoices.drafts.get', 'invoices.booked.get', 'orders.drafts.get', 'orders.sent.get')}"
        f" · {DOCS}/_introduction.md (filtering, pagination)",
    ),
    Call(
        "create_order",
        "GET /orders/drafts?filter=… + POST /orders/drafts",
        schema("orders.drafts.get", "orders.drafts.post"),
    ),
    Call(
        "find_order",
        "GET /orders/drafts · /orders/sent · /orders/archived ?filter=…",
        schema("orders.drafts.get", "orders.sent.get", "orders.archived.get"),
    ),
    Call(
        "invoice_order",
        "GET /orders/drafts/{n}/templates/upgrade-instructions/draftInvoice + POST /invoices/drafts",
        f"{DOCS}/_orders.md · {schema('orders.drafts.orderNumber.get', 'invoices.drafts.post')}",
    ),
    Call(
        "invoice_order",
        "GET /orders/sent/{n}/templates/upgrade-instructions/draftInvoice (a sent order)",
        UPGRADE_CODE,
        level="corroborated",
    ),
    Call(
        "delete_draft_invoice",
        "DELETE /invoices/drafts/{draftInvoiceNumber} (an undo; a booked invoice is credited instead)",
        f"{DOCS}/_invoices.md",
    ),
    Call("delete_order", "DELETE /orders/drafts/{n} · /orders/sent/{n}", f"{DOCS}/_orders.md"),
    Call(
        "register_payment",
        "GET /journals/{n} + GET /journals/{n}/entries · /accounting-years/{y}/entries (look-up)"
        " + POST /journals/{n}/vouchers (customerPayments) + GET journalsapi/v16.0.1/draft-entries",
        f"{schema(*LOOKUP, 'journals.journalNumber.vouchers.post')} · {JOURNALS_OAPI}#GET /draft-entries",
    ),
    Call(
        "register_payment",
        "POST journalsapi/v16.0.1/journals/{n}/bookdraftentries {entryNumbers}",
        f"{JOURNALS_CHANGELOG} · {BOOK_ENTRIES_CODE}",
        level="corroborated",
    ),
    Call(
        "register_payments",
        "POST /journals/{n}/vouchers (an array: one customerPayments voucher per payment)"
        " + GET journalsapi/v16.0.1/draft-entries (voucherNumber$in:[…], at most 200)",
        f"{schema('journals.journalNumber.vouchers.post')} · {BULK_VOUCHERS}"
        f" · {JOURNALS_OAPI}#GET /draft-entries",
    ),
    Call(
        "register_payments",
        "POST journalsapi/v16.0.1/journals/{n}/bookdraftentries {entryNumbers} (all the batch's entries)",
        f"{JOURNALS_CHANGELOG} · {BOOK_ENTRIES_CODE}",
        level="corroborated",
    ),
    Call(
        "register_refund_payment",
        "POST /journals/{n}/vouchers (customerPayments, positive amount on the credit note)",
        schema("journals.journalNumber.vouchers.post"),
        level="unverified",
        label=N_("Register a refund's payout on its credit note in e-conomic"),
        setting="refund_payouts_guessed",
    ),
    Call(
        "customer_balance",
        "GET /customers/{customerNumber} (balance)",
        schema("customers.customerNumber.get"),
    ),
    Call(
        "post_voucher",
        "GET /journals/{n}/entries · /accounting-years/{y}/entries (look-up) + POST /journals/{n}/vouchers"
        " (financeVouchers)",
        schema(*LOOKUP, "journals.journalNumber.vouchers.post"),
    ),
    Call(
        "book_journal",
        "POST journalsapi/v16.0.1/journals/{journalNumber}/book",
        f"{JOURNALS_OAPI}#POST /journals/{{journalNumber}}/book",
    ),
    Call(
        "invoice_pdf",
        "GET /invoices/booked/{bookedInvoiceNumber}/pdf",
        schema("invoices.booked.bookedInvoiceNumber.get"),
    ),
    Call(
        "open_periods",
        "GET /accounting-years + GET /accounting-years/{year}/periods (of each year not `closed`)",
        schema("accounting-years.get", "accounting-years.accountingYear.periods.get"),
    ),
)
