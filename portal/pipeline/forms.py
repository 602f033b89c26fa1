"""The transfer log's filter form and the preview's order form: both GET forms (plain wtforms.Form, no CSRF
token), so their addresses can be shared and bookmarked, and reading them changes nothing."""

from flask_babel import lazy_gettext as _l
from wtforms import DateField, Form, RadioField, SelectField, StringField, TextAreaField, ValidationError
from wtforms.fields import SelectChoice
from wtforms.validators import AnyOf

from portal.validators import max_length, required, strip

STATUS_LABELS = {
    "pending": _l("Queued"),
    "running": _l("Running"),
    "done": _l("Done"),
    "skipped": _l("Skipped"),
    "waiting": _l("Waiting"),
    "needs_attention": _l("Needs attention"),
}
ERROR_LABELS = {
    "configuration": _l("Configuration"),
    "order": _l("The order"),
    "transient": _l("Temporarily unavailable"),
    "totals_differ": _l("Totals differ"),
    "unexpected": _l("Unexpected error"),
}


def _choices(labels: dict) -> list[SelectChoice]:
    return [SelectChoice("", _l("All"))] + [SelectChoice(value, label) for value, label in labels.items()]


def source_link_choices(source_links) -> list[SelectChoice]:
    return [SelectChoice(str(i.id), i.display_name) for i in source_links]


class TransferFilterForm(Form):
    status = SelectField(_l("Status"), choices=_choices(STATUS_LABELS))
    date_from = DateField(_l("From"))
    date_to = DateField(_l("To"))
    order = StringField(
        _l("Order number"),
        filters=[strip],
        description=_l("Exact, or the start followed by * (50* finds 5001, 5002 …)."),
    )
    error_kind = SelectField(_l("Error"), choices=_choices(ERROR_LABELS))
    source_link = SelectField(_l("Shop"), choices=[])

    def __init__(self, formdata, source_links):
        super().__init__(formdata)
        self.source_link.choices = [SelectChoice("", _l("All")), *source_link_choices(source_links)]


class PreviewForm(Form):
    source_link = SelectField(_l("Shop"), choices=[], validators=[required()])
    order = StringField(
        _l("Order number or id"),
        filters=[strip],
        validators=[required(), max_length(100)],
        description=_l("The number the customer sees (e.g. 1042), or the shop's own id of the order."),
    )

    def __init__(self, formdata, source_links):
        super().__init__(formdata)
        self.source_link.choices = source_link_choices(source_links)


AFTERWARDS_LABELS = {
    "retransfer": _l("Transfer the order again, with today's settings"),
    "leave_out": _l("Leave the order out"),
}


class UndoForm(Form):
    """What follows an undo (a POST form: the app's CSRF protection checks its token)."""

    afterwards = RadioField(
        _l("Afterwards"),
        choices=[SelectChoice(value, label) for value, label in AFTERWARDS_LABELS.items()],
        validate_choice=False,
        validators=[
            required(),
            AnyOf(list(AFTERWARDS_LABELS), message=_l("Choose what happens afterwards.")),
        ],
    )
    reason = TextAreaField(
        _l("Why the order is left out"),
        filters=[strip],
        validators=[max_length(500)],
        description=_l("Kept with the order and in the change log."),
    )

    def validate_reason(self, field):
        if self.afterwards.data == "leave_out" and not field.data:
            raise ValidationError(_l("Say why the order is left out."))
