"""What changed between two releases' split assignments (Django-free)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from typing import Any


def diff_splits(before: Mapping[int, str], after: Mapping[int, str], *,
                withheld: Collection[int] = ()) -> dict[str, Any]:
    """``after`` against ``before`` ({image id: split} each): images added, removed, withheld
    (left out of ``after`` by the version promise, so not counted as removed) and moved
    between splits, each counted and listed by id."""
    withheld_set = {int(i) for i in withheld}
    added = sorted(set(after) - set(before))
    gone = set(before) - set(after)
    held = sorted(gone & withheld_set)
    removed = sorted(gone - withheld_set)
    moved = [{"image_id": i, "from": before[i], "to": after[i]}
             for i in sorted(set(before) & set(after)) if before[i] != after[i]]
    return {
        "counts": {
            "added": len(added),
            "removed": len(removed),
            "withheld": len(held),
            "moved": len(moved),
            "unchanged": len(set(before) & set(after)) - len(moved),
        },
        "moved_by_splits": dict(sorted(Counter(f"{m['from']}->{m['to']}" for m in moved)
                                       .items())),
        "added": added,
        "removed": removed,
        "withheld": held,
        "moved": moved,
    }
