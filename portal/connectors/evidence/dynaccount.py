"""Dynaccount: no machine-readable spec exists. The official PHP library clarkk/php-dynaccount-api @e27b075
(API.php, Account.php, Webshop.php, test/account_test.php), the Ruby gem prograsdk/dynaccount @c0549c6 and
the API documentation's introduction. Every request: `/v7/{API_ID}/{API_KEY}/{method}/{table}/{id}/`, GET
without data, POST with data (API.php request(), l. 103-109), never HTTP PUT or DELETE. Sales, refunds,
payments and payouts are vouchers in a kladde (Webshop.php put_enclosure): docs/connectors/dynaccount.md."""

from portal.connectors.evidence import Call

PHP = "lib: clarkk/php-dynaccount-api"
RB = "code: prograsdk/dynaccount"  # the Ruby gem: not Dynaccount's own, so it corroborates only
DOC = "doc: https://dynaccount.dk/support/api-dokumentation/ (introduction: where, select, order, limit)"
SPEC = "spec: dynaccount/README.md"
VOUCHER = (
    "[GET get/enclosure/?note=<ref>] + POST put/enclosure/ {time, draft_id, txt, note}"
    " + POST insert_bulk/accounting/ LEDGER rows"
)
VOUCHER_SOURCE = (
    f"{PHP} Webshop.php put_enclosure() l. 195-259 · {PHP} Account.php insert_bulk() l. 55 · {DOC} (note as a"
    " where-clause)"
)

EVIDENCE = (
    Call(
        "start_connect",
        "none: the wizard asks for API ID, API key and API secret (Administration > Virksomheder)",
        f"{DOC} · {SPEC}",
    ),
    Call(
        "finish_connect",
        "GET get/account/?select=id&limit=0,1 (signed with X-Hash)",
        f"{PHP} API.php url_path() l. 185, generate_hash() l. 209 · {PHP} Account.php get() l. 14 · {SPEC}",
    ),
    Call("verify", "GET get/account/?select=id&limit=0,1", f"{PHP} Account.php get() l. 14 · {DOC}"),
    Call("list_organisations", "GET get/account/?select=id&limit=0,1", f"{PHP} Account.php get() l. 14"),
    Call(
        "list_choices",
        "GET get/account/ · get/debtor_group/ · get/draft/ (?order=id&limit=o,500)",
        f"{PHP} test/account_test.php l. 27-36 · {PHP} Webshop.php get_debtor_group() l. 33,"
        " get_draft_id() l. 11",
    ),
    Call(
        "find_customer",
        "GET get/debtor/?module_id_= · email= · vatno= · ean=",
        f"{PHP} Webshop.php get_debtor() l. 60 · {DOC}",
    ),
    Call("create_customer", "POST put/debtor/", f"{PHP} Webshop.php get_debtor() l. 60-124"),
    Call("update_customer", "POST put/debtor/{id}/", f"{PHP} Webshop.php get_debtor() l. 60-124"),
    Call(
        "find_product",
        "GET get/product/?product_id_=",
        f"{RB} lib/dynaccount/product.rb · {DOC}",
        level="corroborated",
    ),
    Call(
        "get_stock",
        "GET get/product/?product_id_= (in_stock, is_stocked)",
        f"{RB} lib/dynaccount/product.rb",
        level="corroborated",
    ),
    Call("create_draft_invoice", f"{VOUCHER} (the sale)", VOUCHER_SOURCE),
    Call("create_credit_note", f"{VOUCHER} (the sale's rows reversed)", VOUCHER_SOURCE),
    Call(
        "list_documents",
        "GET get/enclosure/?order=id&limit=o,500 + GET get/accounting/?account_id_=<receivable>&order=id"
        "&limit=o,500",
        f"{PHP} Webshop.php put_enclosure() (enclosure_id, note, time) · {DOC}",
    ),
    Call(
        "find_invoice",
        "GET get/enclosure/?note= + GET get/accounting/?enclosure_id=&order=id"
        " + GET get/account/?type=BALANCE",
        f"{PHP} Webshop.php put_enclosure() (enclosure_id, note) · {PHP} test/account_test.php (type)"
        f" · {DOC}",
    ),
    Call(
        "book_invoice",
        "none: no public source names a booking call; the bookkeeper books the kladde in Dynaccount",
        f"{PHP} Account.php (get, put, insert_bulk, delete, action, document, report: no booking)",
    ),
    Call("register_payment", f"{VOUCHER} (bank +, receivable −)", VOUCHER_SOURCE),
    Call("register_refund_payment", f"{VOUCHER} (bank −, receivable +)", VOUCHER_SOURCE),
    Call(
        "post_voucher",
        f"{VOUCHER} + GET get/draft/?name= + GET delete/enclosure/{{id}}/ (rollback)",
        f"{VOUCHER_SOURCE} · {PHP} Webshop.php get_draft_id() l. 11, l. 255"
        f" · {PHP} Account.php delete() l. 61",
    ),
    Call(
        "open_periods",
        "GET get/year/?order=id&limit=o,500 (time_start, time_end, is_closed)",
        "code: prograsdk/dynaccount lib/dynaccount/year.rb @c0549c6 (the table `year`; is_closed, time_start,"
        f" time_end read-only; their values are guessed) · {SPEC}",
        level="corroborated",
    ),
)
