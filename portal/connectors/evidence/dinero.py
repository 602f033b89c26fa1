"""Dinero: every call is in Dinero's official OpenAPI document (../shared/specs/dinero/openapi.json)."""

from portal.connectors.evidence import Call

OAPI = "spec: dinero/openapi.json"
VISMA = "doc: https://docs.vismasoftware.no/vismanetapi/developer-portal/interactive-integrations/"

EVIDENCE = (
    Call("start_connect", "GET {authorize_url}?response_type=code&code_challenge_method=S256", VISMA),
    Call("finish_connect", "POST {token_url} grant_type=authorization_code", VISMA),
    Call("list_organisations", "GET /v1/organizations", OAPI),
    Call("verify", "GET /v1/organizations + GET /v1/{organizationId}/invoices/templates", OAPI),
    Call("list_choices", "GET /v1/{organizationId}/invoices/templates", OAPI),
    Call("list_choices", "GET /v1/{organizationId}/accounts/entry + GET /v1/{organizationId}/vatTypes", OAPI),
    Call("list_choices", "GET /v1/{organizationId}/accounts/deposit", OAPI),
    Call("find_customer", "GET /v1/{organizationId}/contacts", OAPI),
    Call("create_customer", "POST /v1/{organizationId}/contacts", OAPI),
    Call("update_customer", "PUT /v2/{organizationId}/contacts/{guid}", OAPI),
    Call("find_product", "GET /v1/{organizationId}/products", OAPI),
    Call("create_product", "POST /v1/{organizationId}/products", OAPI),
    Call("update_product", "PUT /v1/{organizationId}/products/{guid}", OAPI),
    Call(
        "preview_totals",
        "POST /v1/{organizationId}/invoices/fetch + POST /v1/{organizationId}/sales/creditnotes/fetch",
        OAPI,
    ),
    Call("create_draft_invoice", "POST /v1/{organizationId}/invoices", OAPI),
    Call("create_credit_note", "POST /v1/{organizationId}/sales/creditnotes", OAPI),
    Call(
        "replace_draft",
        "PUT /v1.2/{organizationId}/invoices/{guid} + PUT /v1.2/{organizationId}/sales/creditnotes/{guid}",
        OAPI,
    ),
    Call("find_invoice", "GET /v1/{organizationId}/sales", OAPI),
    Call(
        "delete_draft_invoice",
        "DELETE /v1/{organizationId}/invoices/{guid}",
        f"{OAPI}#DELETE /v1/{{organizationId}}/invoices/{{guid}}",
    ),
    Call(
        "list_documents",
        "GET /v1/{organizationId}/sales",
        f"{OAPI}#GET /v1/{{organizationId}}/sales",
    ),
    Call(
        "book_invoice",
        "POST /v1/{organizationId}/invoices/{guid}/book"
        " + POST /v1/{organizationId}/sales/creditnotes/{guid}/book",
        OAPI,
    ),
    Call(
        "register_payment",
        "GET /v2/{organizationId}/invoices/{guid}/payments"
        " + POST /v1/{organizationId}/invoices/{guid}/payments",
        OAPI,
    ),
    Call(
        "register_refund_payment",
        "GET /v1/{organizationId}/sales/creditnotes/{guid}/payments"
        " + POST /v1/{organizationId}/sales/creditnotes/{guid}/payments",
        OAPI,
    ),
    Call("customer_balance", "GET /v1/{organizationId}/state-of-account/{guid}", OAPI),
    Call(
        "send_invoice_email",
        "POST /v1/{organizationId}/invoices/{guid}/email"
        " + POST /v1/{organizationId}/sales/creditnotes/{guid}/email",
        OAPI,
    ),
    Call(
        "invoice_pdf",
        "GET /v1/{organizationId}/invoices/{guid} + GET /v1/{organizationId}/sales/creditnotes/{guid}/pdf",
        OAPI,
    ),
    Call(
        "post_voucher",
        "POST /v1/{organizationId}/vouchers/manuel + GET /v1/{organizationId}/vouchers/manuel/{guid}"
        " + POST /v1/{organizationId}/vouchers/manuel/{guid}/book",
        OAPI,
    ),
    # Only the years (Name, FromDate, ToDate) are shown: no closed flag, no lock date ("Lås regnskab").
    Call("open_periods", "GET /v1/{organizationId}/accountingyears", OAPI),
)
