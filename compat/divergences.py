"""Read ``compat/DIVERGENCES.md``: the one list of accepted divergences.

An entry is a bullet line in the "Known divergences" section::

    - `scenario_name`: why wiregate differs and why that is accepted.
"""

from __future__ import annotations

import re
from pathlib import Path

PATH = Path(__file__).with_name("DIVERGENCES.md")
_ENTRY = re.compile(r"^\s*[-*]\s+`([A-Za-z0-9_]+)`\s*[:\u2014-]+\s*(.+?)\s*$")


def load(path: Path = PATH) -> dict[str, str]:
    """Return ``{scenario name: reason}`` from the "Known divergences" section."""
    entries: dict[str, str] = {}
    in_section = False
    for line in path.read_text().splitlines():
        if line.startswith("## "):
            in_section = line[3:].strip().lower().startswith("known divergences")
            continue
        match = _ENTRY.match(line) if in_section else None
        if match:
            entries[match.group(1)] = match.group(2)
    return entries
