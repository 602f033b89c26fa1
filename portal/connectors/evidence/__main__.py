"""`python -m portal.connectors.evidence [system …]`: rewrites the evidence tables in docs/connectors/."""

import sys
from pathlib import Path

from portal.connectors.evidence import SYSTEMS, docs_path, write

root = Path(__file__).resolve().parents[3]
for key in sys.argv[1:] or SYSTEMS:
    print(f"{docs_path(key)}: {'rewritten' if write(root, key) else 'unchanged'}")
