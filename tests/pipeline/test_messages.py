"""Transfer messages keep their msgid and parameters, so they read in the reader's language; the English
text stays on the transfer for logs and search."""

from types import SimpleNamespace

from flask_babel import force_locale

from portal.engine.settings import EngineConfigError
from portal.pipeline.messages import N_, from_engine_error, message, shown, store


def test_a_message_is_stored_in_english_and_shown_in_danish(app):
    transfer = SimpleNamespace(error_message=None, reason=None, message=None)
    inner = from_engine_error(
        EngineConfigError.translatable(
            N_("The template “%(template)s” is empty: choose its values under Setup."),
            labels=("template",),
            template="VAT-free lines (gift cards, rounding)",
        )
    )
    store(
        transfer,
        "error_message",
        message(N_("%(detail)s Complete the accounting setup's templates under Setup."), detail=inner),
    )
    assert transfer.error_message.startswith("The template “VAT-free lines (gift cards, rounding)” is empty")
    with app.test_request_context(), force_locale("da"):
        text = shown(transfer)
    assert text.startswith("Skabelonen “Momsfri linjer (gavekort, afrunding)”") and "Opsætning" in text

    transfer.error_message = "Something else, set without a message"  # the stored msgid no longer applies
    with app.test_request_context(), force_locale("da"):
        assert shown(transfer) == "Something else, set without a message"
    store(transfer, "reason", "plain text")
    assert (
        transfer.message is None
        and shown(SimpleNamespace(error_message=None, reason="x", message=None)) == "x"
    )


def test_a_step_log_row_reads_in_the_page_language_and_old_rows_still_render(app):
    from datetime import date
    from decimal import Decimal

    from portal.pipeline.messages import a_day, amount, log_text

    said = message(
        N_(
            "The totals differ: the sales source says %(shop)s, the accounting system will compute "
            "%(computed)s. The order %(order)s was created: correct it in the accounting system (or the "
            "order), then retry."
        ),
        shop=amount(Decimal("1234.5"), "DKK"),
        computed=amount(Decimal("129.95"), "DKK"),
        order="7",
    )
    assert said.english().startswith(
        "The totals differ: the sales source says DKK\xa01,234.50, the accounting"
    )
    row = SimpleNamespace(message=said.english(), text=said.as_dict())
    with app.test_request_context():
        with force_locale("da"):
            assert log_text(row).startswith("Beløbene passer ikke: salgskilden siger 1.234,50\xa0kr.")
            assert "129,95\xa0kr." in log_text(row)
        with force_locale("en"):
            assert "DKK\xa0129.95" in log_text(row)
    # a row written before steps kept their Message: its English, as stored
    old = SimpleNamespace(message="customer 4 (found)", text=None)
    with app.test_request_context(), force_locale("da"):
        assert log_text(old) == "customer 4 (found)"
    # a date parameter, the reader's way
    day = message(
        N_("The order is from %(day)s, before the activation date %(start)s."),
        day=a_day(date(2026, 11, 20)),
        start=a_day(date(2026, 11, 21)),
    )
    with app.test_request_context(), force_locale("da"):
        assert log_text(SimpleNamespace(message="", text=day.as_dict())) == (
            "Ordren er fra 20. nov. 2026, før startdatoen 21. nov. 2026."
        )


def test_a_message_written_before_a_msgid_was_renamed_reads_as_the_new_one(app):
    """'Integration' became 'accounting setup' (December 2026): a transfer stored with the old msgid still
    reads in Danish, with the new wording."""
    old = "The accounting integration “%(setup)s” is not active: complete its templates and activate it."
    transfer = SimpleNamespace(error_message=None, reason=None, message=None)
    store(transfer, "error_message", message(old, setup="Nordlys"))
    with app.test_request_context(), force_locale("da"):
        assert shown(transfer) == (
            "Bogføringsopsætningen “Nordlys” er ikke aktiv: udfyld dens skabeloner, og aktivér den."
        )
