"""Customer matching: which field and value to look the buyer up by in the accounting system, or the
collective customer, and the CustomerData to create/update it with.

Per customer type (IEX's model, anchors.md A.1): B2C by e-mail (default), B2B by CVR/VAT number, EAN
(public sector) by EAN/GLN — or one collective customer for all B2C sales. Identifiers are validated
offline with python-stdnum; one that fails falls back to the next rule with a reason, never to a lookup by
a wrong number.
"""

from dataclasses import dataclass
from typing import Literal

from stdnum import ean as stdnum_ean

from portal.engine.documents import Party
from portal.engine.ledger_documents import CustomerData
from portal.engine.settings import EngineConfigError, SourceLinkSettings
from portal.engine.text import N_, Text, field_name
from portal.engine.vat import VatDecision, VatId, parse_vat_id

MATCH_FIELDS = ("email", "vat_number", "ean")


@dataclass(frozen=True)
class CustomerMatch:
    kind: Literal["lookup", "collective", "create"]  # create: nothing to look up by; always a new customer
    field: str | None  # the connector's find_customer field
    value: str | None
    customer_number: str | None  # the collective customer
    customer_type: str  # b2c | b2b | ean, as matched
    reason: str
    warnings: tuple[str, ...] = ()


def valid_ean(value: str | None) -> str | None:
    """The 13-digit EAN/GLN location number, if `value` is one (GS1 check digit)."""
    if not value:
        return None
    compact = stdnum_ean.compact(value)
    if len(compact) == 13 and stdnum_ean.is_valid(compact):
        return compact
    return None


def _vat_id(party: Party) -> VatId | None:
    return parse_vat_id(party.vat_number, party.country or party.destination_country)


def _value(field: str, party: Party, vat_id: VatId | None, ean: str | None) -> str | None:
    if field == "email":
        return party.email.strip().lower() if party.email else None
    if field == "vat_number":
        return vat_id.compact if vat_id is not None and vat_id.valid else None
    if field == "ean":
        return ean
    raise EngineConfigError(f"Unknown customer match field {field!r}; use one of {', '.join(MATCH_FIELDS)}.")


def decide_match(party: Party, settings: SourceLinkSettings) -> CustomerMatch:
    warnings: list[str] = []
    vat_id = _vat_id(party)
    ean = valid_ean(party.ean)
    kind = party.type
    if kind == "ean":
        if ean is None:
            warnings.append(
                Text(N_("The EAN number %(ean)s is not a valid 13-digit EAN/GLN."), ean=repr(party.ean))
            )
            kind = "b2b" if party.vat_number else "b2c"
        else:
            value = _value(settings.match_ean, party, vat_id, ean)
            if value:
                return CustomerMatch(
                    "lookup",
                    settings.match_ean,
                    value,
                    None,
                    "ean",
                    Text(
                        N_("EAN customer, matched on %(field)s."),
                        ("field",),
                        field=field_name(settings.match_ean),
                    ),
                )
            kind = "b2b" if party.vat_number else "b2c"
    if kind == "b2b":
        if vat_id is None or not vat_id.valid:
            warnings.append(
                Text(
                    N_("The VAT number %(number)s is not valid: matched as a private customer."),
                    number=repr(party.vat_number),
                )
            )
            kind = "b2c"
        else:
            value = _value(settings.match_b2b, party, vat_id, ean)
            if value:
                return CustomerMatch(
                    "lookup",
                    settings.match_b2b,
                    value,
                    None,
                    "b2b",
                    Text(
                        N_("Business customer, matched on %(field)s."),
                        ("field",),
                        field=field_name(settings.match_b2b),
                    ),
                    tuple(warnings),
                )
            kind = "b2c"
    if settings.collective_customer:
        return CustomerMatch(
            "collective",
            None,
            None,
            settings.collective_customer,
            "b2c",
            Text(N_("Private customer: booked on the collective customer.")),
            tuple(warnings),
        )
    value = _value(settings.match_b2c, party, vat_id, ean)
    if value:
        return CustomerMatch(
            "lookup",
            settings.match_b2c,
            value,
            None,
            "b2c",
            Text(
                N_("Private customer, matched on %(field)s."),
                ("field",),
                field=field_name(settings.match_b2c),
            ),
            tuple(warnings),
        )
    warnings.append(
        Text(
            N_("The order has no %(field)s to match the customer on: a new customer is created."),
            ("field",),
            field=field_name(settings.match_b2c),
        )
    )
    return CustomerMatch("create", None, None, None, "b2c", Text(N_("Nothing to match on.")), tuple(warnings))


def customer_data(
    party: Party,
    decision: VatDecision,
    currency: str,
    payment_terms: str | None = None,
    reference: str | None = None,
) -> CustomerData:
    """The customer as the accounting system should hold it. Only valid identifiers are passed on."""
    vat_id = _vat_id(party)
    return CustomerData(
        name=party.name,
        country=(party.country or decision.country).upper(),
        zone=decision.zone,
        email=party.email,
        is_company=party.type != "b2c" or bool(party.company),
        vat_number=vat_id.compact if vat_id is not None and vat_id.valid else None,
        ean=valid_ean(party.ean),
        address=party.address,
        postcode=party.postcode,
        city=party.city,
        phone=party.phone,
        currency=currency,
        payment_terms=payment_terms,
        external_reference=reference,
    )
