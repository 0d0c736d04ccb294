"""The takedown blocklist as an admission check (`curation.admission`), registered by
`RightsConfig.ready()`: every door into the pool refuses the bytes of an image removed on a
takedown request, and anything within the pool's near-duplicate threshold of its pHash
(`curation.imaging.near_dup.DEFAULT_K`), with the request's number in the reason.

The check is plain data (picklable): `import_images` sends it to its hashing processes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from curation.imaging.hashing import ImageHashes, from_signed64
from curation.imaging.near_dup import DEFAULT_K

from .models import BlockedImage


@dataclass(frozen=True)
class BlocklistCheck:
    """sha256 -> request number; pHashes (unsigned) with their request numbers."""

    shas: Mapping[str, int]
    phashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    requests: tuple[int, ...] = ()
    k: int = DEFAULT_K

    def __call__(self, info: ImageHashes) -> str | None:
        request = self.shas.get(info.sha256)
        if request is not None:
            return f"this image was removed on takedown request #{request}"
        if self.phashes.size:
            distances = np.bitwise_count(self.phashes ^ np.uint64(info.phash))
            at = int(np.argmin(distances))
            if int(distances[at]) <= self.k:
                return (f"this image is a near-duplicate (pHash {int(distances[at])} bits "
                        f"apart, within the pool's threshold of {self.k}) of an image removed "
                        f"on takedown request #{self.requests[at]}")
        return None


def load_blocklist() -> BlocklistCheck | None:
    """The check as the blocklist stands now; None while it is empty."""
    rows = list(BlockedImage.objects.values_list("sha256", "phash", "request_id"))
    if not rows:
        return None
    hashed = [(from_signed64(p), r) for _, p, r in rows if p is not None]
    return BlocklistCheck(
        shas={sha: r for sha, _, r in rows},
        phashes=np.array([p for p, _ in hashed], dtype=np.uint64),
        requests=tuple(r for _, r in hashed),
    )
