"""Danish first: every text in the code and templates has a Danish translation."""

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent


def test_every_message_is_translated_to_danish(tmp_path):
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    keywords = ["-k", "_l", "-k", "lazy_gettext", "-k", "N_"]
    command = [pybabel, "extract", "-F", "babel.cfg", *keywords, "-o", str(pot), "portal"]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as f:
        wanted = {message.id for message in read_po(f) if message.id}
    with (ROOT / "portal/translations/da/LC_MESSAGES/messages.po").open("rb") as f:
        catalog = read_po(f)

    def done(message):  # a plural message has a tuple of forms: every one must be there
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        return message.id and all(forms) and not message.fuzzy

    translated = {message.id for message in catalog if done(message)}
    missing = wanted - translated
    assert not missing, f"run `make extract-messages` and translate: {sorted(missing)}"
