"""The public source behind every call a connector makes.

For each system a module here (`portal/connectors/evidence/<system>.py`) lists `EVIDENCE`, a tuple of `Call`:
the connector operation, the request it sends, the public source it was checked against and how firm that is.
`docs/connectors/<system>.md` shows the same list as a table between two markers, written by
`python -m portal.connectors.evidence`;
`tests/contracts/test_evidence.py` checks that the table and the code agree, that every operation a connector
implements is listed, that every cited spec file exists, and that each unverified call is off by default.
The wizard names the unverified calls of the system being set up (`unverified()`).

Levels:
- verified: the vendor's own word: its published contract (a spec file in ../shared/specs), its
  documentation, or its official client library / its own code ("lib:");
- corroborated: no vendor source, but independent client code ("code:") shows it;
- unverified: no public source shows it. Off by default, behind the named `setting`, and marked in the wizard.
"""

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Level = Literal["verified", "corroborated", "unverified"]
LEVELS: tuple[Level, ...] = ("verified", "corroborated", "unverified")

# system key → the module name shared by its connector (portal.connectors.<name>), its evidence
# (portal.connectors.evidence.<name>) and its docs (docs/connectors/<name>.md)
SYSTEMS: dict[str, str] = {
    "e-conomic": "economic",
    "dinero": "dinero",
    "dynaccount": "dynaccount",
    "woocommerce": "woocommerce",
    "shopify": "shopify",
    "stripe": "stripe",
    "frisbii": "frisbii",
}


def docs_path(system: str) -> str:
    return f"docs/connectors/{SYSTEMS[system]}.md"


START = (
    "<!-- evidence:start (written by `python -m portal.connectors.evidence`; edit EVIDENCE in the code) -->"
)
END = "<!-- evidence:end -->"


@dataclass(frozen=True)
class Call:
    operation: str  # the connector method, e.g. "create_draft_invoice"
    request: str  # what it sends, e.g. "POST /invoices/drafts"
    # where it was checked, sources separated by " · ": "spec: <path under ../shared/specs>",
    # "doc: <vendor page>", "lib: <owner/repo> <file> @<commit>", "code: <owner/repo> <file> @<commit>"
    source: str
    level: Level = "verified"
    label: str = ""  # English msgid saying what the call does: the wizard names unverified calls with it
    setting: str = ""  # the source link setting that turns an unverified call on (off by default)

    def spec_files(self) -> list[str]:
        """The files under ../shared/specs this call cites."""
        return [
            part.removeprefix("spec:").strip()
            for part in self.source.split(" · ")
            if part.startswith("spec:")
        ]


def evidence(system: str) -> tuple[Call, ...]:
    return importlib.import_module(f"portal.connectors.evidence.{SYSTEMS[system]}").EVIDENCE


def unverified(system: str) -> list[Call]:
    """The calls of a system no public source shows, for the wizard to name (each behind its setting)."""
    return [call for call in evidence(system) if call.level == "unverified"]


def allowed(system: str, operation: str, settings: dict) -> bool:
    """An operation runs unless one of its calls is unverified and the source link has not turned that
    call's setting on: guesses are never on by default."""
    return all(bool(settings.get(call.setting)) for call in unverified(system) if call.operation == operation)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(calls: tuple[Call, ...]) -> str:
    """The markdown table the docs carry between START and END."""
    rows = ["| Operation | Request | Source | Level |", "|---|---|---|---|"]
    for call in calls:
        level = call.level if not call.setting else f"{call.level} (off unless `{call.setting}`)"
        rows.append(f"| `{call.operation}` | `{_cell(call.request)}` | {_cell(call.source)} | {level} |")
    return "\n".join(rows)


def section(text: str) -> str | None:
    """The table between the markers in a docs file's text, or None when the markers are missing."""
    match = re.search(re.escape(START) + r"\n(.*?)\n?" + re.escape(END), text, re.S)
    return match.group(1) if match else None


def write(root: Path, system: str) -> bool:
    """Rewrites the system's table in its docs file; True when it changed. The markers must be there."""
    path = root / docs_path(system)
    text = path.read_text()
    if section(text) is None:
        raise SystemExit(f"{path}: add the lines {START!r} and {END!r} where the evidence table belongs")
    new = re.sub(
        re.escape(START) + r"\n.*?\n?" + re.escape(END),
        lambda _: f"{START}\n{table(evidence(system))}\n{END}",
        text,
        flags=re.S,
    )
    path.write_text(new)
    return new != text
