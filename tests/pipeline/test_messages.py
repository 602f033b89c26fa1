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
        message(N_("%(detail)s Complete the accounting integration's templates under Setup."), detail=inner),
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
