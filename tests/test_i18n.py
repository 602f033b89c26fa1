"""Danish first: every text in the code and templates has a Danish translation."""

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent


def test_every_message_is_translated_to_danish(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [Path(sys.executable).parent / "pybabel", "extract", "-F", "babel.cfg",
         "-k", "_l", "-k", "lazy_gettext", "-o", str(pot), "portal"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    with pot.open("rb") as f:
        wanted = {message.id for message in read_po(f) if message.id}
    with (ROOT / "portal/translations/da/LC_MESSAGES/messages.po").open("rb") as f:
        catalog = read_po(f)
    translated = {message.id for message in catalog if message.id and message.string and not message.fuzzy}
    missing = wanted - translated
    assert not missing, f"run `make extract-messages` and translate: {sorted(missing)}"
