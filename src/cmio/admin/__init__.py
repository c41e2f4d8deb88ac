"""cmio.admin: operations on a whole store (backup and restore, consistency checks).

:mod:`backup` writes and restores portable, checksummed archives of a SQLite or
PostgreSQL store; :mod:`doctor` checks (and repairs) the store's invariants.
"""

from __future__ import annotations

from cmio.admin.archive import BackupError, Manifest, Progress
from cmio.admin.backup import backup, restore

__all__ = ["BackupError", "Manifest", "Progress", "backup", "restore"]
