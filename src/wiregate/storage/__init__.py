"""Persistence for ``--data-dir``: append-only segments and a metadata journal.

Synchronous file I/O, called by the core through the interface described
in :mod:`wiregate.core.persistence`; the gateway runs the group commit.
"""

from .datadir import FSYNC_POLICIES, DataDir

__all__ = ["FSYNC_POLICIES", "DataDir"]
