"""Random 64-bit hashes with planted near-duplicates, for tests and benchmarks of `near_dup`."""

from __future__ import annotations

import numpy as np


def random_masks(rng: np.random.Generator, distances: np.ndarray) -> np.ndarray:
    """One 64-bit mask per entry of `distances`, with exactly that many bits set."""
    # The first d positions of a random permutation of the 64 bits, one row per mask.
    perm = np.argsort(rng.random((distances.size, 64)), axis=1)
    chosen = np.arange(64)[None, :] < distances[:, None]
    bits = np.zeros((distances.size, 64), dtype=bool)
    np.put_along_axis(bits, perm, chosen, axis=1)
    weights = np.uint64(1) << np.arange(64, dtype=np.uint64)
    return np.bitwise_or.reduce(np.where(bits, weights[None, :], np.uint64(0)), axis=1)


def planted_hashes(
    n: int,
    *,
    seed: int = 0,
    copy_fraction: float = 0.02,
    max_distance: int = 12,
) -> np.ndarray:
    """n hashes; about `copy_fraction` of them are copies of another one with 0..max_distance
    bits flipped (uniformly), so thresholds k <= max_distance all have pairs on both sides.
    Sources are never copies themselves, but one source may have several copies (clusters).
    """
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**64, size=n, dtype=np.uint64)
    n_copies = int(n * copy_fraction)
    if n_copies == 0:
        return hashes
    positions = rng.permutation(n)
    copies, pool = positions[:n_copies], positions[n_copies:]
    sources = pool[rng.integers(0, min(pool.size, max(1, n_copies // 2)), size=n_copies)]
    distances = rng.integers(0, max_distance + 1, size=n_copies)
    hashes[copies] = hashes[sources] ^ random_masks(rng, distances)
    return hashes
