"""`tracker status`: what ran, what failed and why, as data (the CLI prints it).

The queries live in `tracker.storage.health` (SQL stays in `storage/`); this is
the name the CLI imports them by.
"""

from __future__ import annotations

from tracker.storage.health import RunRow, TargetRow, recent_runs, target_health

__all__ = ["RunRow", "TargetRow", "recent_runs", "target_health"]
