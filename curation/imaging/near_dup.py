"""Near-duplicate search over 64-bit perceptual hashes: all pairs within Hamming distance k,
incremental queries against a pool, and clusters with one representative each.

Design note: multi-index hashing
--------------------------------
Split the 64 bits into m bands b_1..b_m and give band i a radius t_i with
sum(t_i) >= k - m + 1. If two hashes are within k, at least one band is within its radius
(generalised pigeonhole: were every band off by > t_i, the distance would be
>= sum(t_i + 1) > k). So the candidates of a hash are the hashes whose band i equals its band i
XOR one of the few masks with popcount <= t_i; with t_i = 0 that is plain equality, the classic
k + 1 bands. Candidates are then verified exactly with a vectorised XOR + popcount; nothing
scans every stored hash, in Python or otherwise.

- All pairs (`find_pairs`): per band, hashes are grouped by band value into fixed-width rows;
  for each mask e the rows of value v meet the rows of value v ^ e, and each such pair of rows
  is compared as one dense (C x C) XOR + popcount block in numpy. Work is proportional to the
  candidate count, about N^2 * sum_i V(w_i, t_i) / 2^w_i, not N^2 (V = Hamming-ball volume).
  The number of bands is chosen by a cost model from N and k (1,000,000 hashes at k = 10:
  four 16-bit bands with radii 2, 2, 2, 1, so about 1/150 of the pairs are looked at). Identical
  hashes (exact duplicates) are collapsed first, so large groups cost nothing extra. Bands are
  independent, so (band, mask) tasks run on threads (numpy releases the GIL in its kernels).
- One new image against the pool (`NearDupIndex.query`): probe the few hundred band values
  (428 at k = 10, 52 at k = 6) in per-band sorted arrays, verify the few thousand candidates.

Measured (`benchmarks/near_dup.py`, 2 cores, every result equal to exhaustive search):
1,000,000 hashes, all pairs in 4.0 s at k = 6 and 17 s at k = 10, where the plain numpy
blockwise XOR + popcount over every pair takes 511 s; building a `NearDupIndex` of them takes
0.7 s and a query well under a millisecond.

Scaling to millions of images and several workers: the pool's hashes are tiny (8 bytes each;
10 million fit in 80 MB), so each worker can hold a `NearDupIndex` of the pool and top it up
with the rows added since it was built. Where the database must answer instead,
`DB_SCHEME` fixes four 16-bit bands, stored as four indexed integer columns next to the hash;
`DB_SCHEME.probe_values(h)` gives, per band, the values to look up, i.e.
`WHERE band0 = ANY(%s) OR band1 = ANY(%s) OR ...` (a bitmap OR of index scans), and the
returned candidates are verified by Hamming distance (at 1,000,000 images about 15 rows per
band value: ~6,500 candidate rows per query at k = 10, ~800 at k = 6, which is why the
in-memory index is the first choice for bulk jobs). Two workers deduplicating near-identical
images at the same moment still meet if each commits its own hash row *before* querying: the
later of the two commits is followed by a query that sees the earlier one. Merging the two
clusters then happens under a row lock on the clusters (union-find in the database, the
representative re-chosen by `choose_representative`).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# Chosen from `calibrate_k` (see its docstring for the measured precision/recall table).
DEFAULT_K = 10

_U64 = np.uint64
_PAD_A = np.uint64(0x5555555555555555)
_PAD_B = np.uint64(0xAAAAAAAAAAAAAAAA)  # ~_PAD_A: two pads are never within k <= 63
_MAX_TABLE_BITS = 22  # dense per-band lookup tables of 2^w entries (4M at most)
_CHUNK_ELEMS = 1 << 17  # XOR block per numpy call: ~1 MB of uint64, stays in cache


def as_hash_array(hashes: Iterable[int] | np.ndarray) -> np.ndarray:
    """Unsigned 64-bit array from ints, uint64 or int64 (database BIGINT) values."""
    if isinstance(hashes, np.ndarray):
        if hashes.dtype == np.uint64:
            return hashes
        if hashes.dtype == np.int64:
            return hashes.view(np.uint64)
    return np.fromiter((int(h) & 0xFFFFFFFFFFFFFFFF for h in hashes), dtype=np.uint64)


def hamming_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def ball_masks(width: int, radius: int) -> np.ndarray:
    """Every `width`-bit value with at most `radius` bits set (the XOR masks of one band)."""
    masks = [0]
    for r in range(1, min(radius, width) + 1):
        for bits in itertools.combinations(range(width), r):
            masks.append(sum(1 << b for b in bits))
    return np.asarray(masks, dtype=np.int64)


@dataclass(frozen=True)
class Band:
    shift: int
    width: int
    radius: int

    def keys(self, hashes: np.ndarray) -> np.ndarray:
        mask = _U64((1 << self.width) - 1)
        return ((hashes >> _U64(self.shift)) & mask).astype(np.int64)

    def key(self, h: int) -> int:
        return (h >> self.shift) & ((1 << self.width) - 1)

    @cached_property
    def masks(self) -> np.ndarray:
        return ball_masks(self.width, self.radius)


@dataclass(frozen=True)
class BandScheme:
    """How the 64 bits are split into bands, and each band's radius, for distances <= k."""

    k: int
    bands: tuple[Band, ...]

    def __post_init__(self) -> None:
        if sum(b.width for b in self.bands) != 64:
            raise ValueError("bands must cover the 64 bits exactly")
        if sum(b.radius for b in self.bands) < self.k - len(self.bands) + 1:
            raise ValueError("radii too small: pairs within k could be missed")

    @classmethod
    def split(cls, k: int, m: int) -> BandScheme:
        """m near-equal bands (wider ones first, high bits first) with the smallest radii."""
        if not 1 <= m <= 64:
            raise ValueError("m must be in 1..64")
        widths = [64 // m + (1 if i < 64 % m else 0) for i in range(m)]
        total = max(0, k - m + 1)
        radii = [total // m + (1 if i < total % m else 0) for i in range(m)]
        bands, top = [], 64
        for w, r in zip(widths, radii, strict=True):
            top -= w
            bands.append(Band(shift=top, width=w, radius=r))
        return cls(k=k, bands=tuple(bands))

    @property
    def n_probes(self) -> int:
        return sum(len(b.masks) for b in self.bands)

    def band_values(self, h: int) -> tuple[int, ...]:
        """The value of each band of h: what the database stores in its band columns."""
        return tuple(b.key(int(h)) for b in self.bands)

    def probe_values(self, h: int) -> list[list[int]]:
        """Per band, the band values a hash within k of h must show in at least one band."""
        return [(b.key(int(h)) ^ b.masks).tolist() for b in self.bands]


# Four 16-bit bands: small enough for integer columns and b-tree indexes, and the probe count
# at the default k stays in the hundreds. A database schema keyed on this must not change it.
DB_SCHEME = BandScheme.split(DEFAULT_K, 4)


# ---------------------------------------------------------------------------------- all pairs

_ALPHA = 40.0  # cost of one row pair before its block (index arithmetic, gathers)
_BETA = 20_000.0  # fixed cost of one mask (numpy calls)
_GAMMA = 4.0  # cost per non-empty band value per mask (probe, filter)
_TABLE = 5.0  # cost per band value of building a band's tables
_ROW_WIDTHS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)


def _cost_from_rows(
    width: int, n_masks: int, c: int, nonempty: float, rows: float, rows_sq: float
) -> float:
    block = _ALPHA + 2 * c + c * c
    pairs = (n_masks - 1) * rows * rows / 2.0 ** (width + 1) + (rows_sq + rows) / 2
    return n_masks * (_BETA + _GAMMA * nonempty) + pairs * block + _TABLE * 2.0**width


def _band_cost(counts: np.ndarray, width: int, n_masks: int) -> tuple[float, int]:
    """Estimated cost and best row width C of one band, from its actual bucket sizes."""
    nonempty = counts[counts > 0].astype(np.float64)
    best = (math.inf, 1)
    for c in _ROW_WIDTHS:
        rows = np.ceil(nonempty / c)
        cost = _cost_from_rows(width, n_masks, c, nonempty.size, rows.sum(),
                               (rows * rows).sum())
        best = min(best, (cost, c))
    return best


def _poisson_band_cost(n: int, width: int, n_masks: int) -> float:
    """The same estimate for uniformly spread hashes (bucket sizes ~ Poisson(n / 2^w))."""
    lam = n / 2.0**width
    top = int(lam + 12 * math.sqrt(lam) + 20)
    c_vals = np.arange(top + 1, dtype=np.float64)
    log_factorial = np.concatenate([[0.0], np.cumsum(np.log(c_vals[1:]))])
    log_pmf = c_vals * math.log(lam) - lam - log_factorial
    pmf = np.exp(log_pmf)
    keys = 2.0**width
    best = math.inf
    for c in _ROW_WIDTHS:
        rows = np.ceil(c_vals / c)
        cost = _cost_from_rows(width, n_masks, c, keys * (1 - pmf[0]), keys * (pmf * rows).sum(),
                               keys * (pmf * rows * rows).sum())
        best = min(best, cost)
    return best


def plan_scheme(unique_hashes: np.ndarray, k: int) -> tuple[BandScheme, tuple[int, ...]]:
    """The band scheme (and row width per band) with the lowest estimated cost for these hashes.

    Every band count from 3 to max(8, k + 1) is priced assuming uniform hashes; the two best
    are priced again from the real bucket sizes (real hashes are not uniform).
    """
    n = unique_hashes.size
    shortlist = []
    for m in range(3, max(8, k + 1) + 1):
        scheme = BandScheme.split(k, m)
        if max(b.width for b in scheme.bands) > _MAX_TABLE_BITS or scheme.n_probes > 50_000:
            continue
        cost = sum(_poisson_band_cost(n, b.width, len(b.masks)) for b in scheme.bands)
        shortlist.append((cost, m, scheme))
    shortlist.sort(key=lambda x: x[:2])
    best: tuple[float, BandScheme | None, tuple[int, ...]] = (math.inf, None, ())
    for _, _, scheme in shortlist[:2]:
        cost, widths = 0.0, []
        for band in scheme.bands:
            counts = np.bincount(band.keys(unique_hashes), minlength=1 << band.width)
            c_cost, c = _band_cost(counts, band.width, len(band.masks))
            cost += c_cost
            widths.append(c)
        if cost < best[0]:
            best = (cost, scheme, tuple(widths))
    assert best[1] is not None
    return best[1], best[2]


class _BandRows:
    """Hashes grouped by one band's value into rows of `width` slots (padded)."""

    def __init__(self, hashes: np.ndarray, band: Band, width: int) -> None:
        self.band = band
        self.c = width
        keys = band.keys(hashes)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        counts = np.bincount(sorted_keys, minlength=1 << band.width)
        nrows = -(-counts // width)  # ceil
        first_row = np.cumsum(nrows) - nrows
        start = np.cumsum(counts) - counts
        rank = np.arange(order.size) - start[sorted_keys]
        row = first_row[sorted_keys] + rank // width
        col = rank % width
        n_rows = int(nrows.sum())
        self.data_a = np.full((n_rows, width), _PAD_A, dtype=np.uint64)
        self.data_b = np.full((n_rows, width), _PAD_B, dtype=np.uint64)
        self.idx = np.full((n_rows, width), -1, dtype=np.int64)
        self.data_a[row, col] = hashes[order]
        self.data_b[row, col] = hashes[order]
        self.idx[row, col] = order
        self.nrows = nrows
        self.first_row = first_row
        self.nonempty = np.flatnonzero(counts)

    def row_pairs(self, mask: int) -> tuple[np.ndarray, np.ndarray]:
        v = self.nonempty
        if mask == 0:
            n = self.nrows[v]
            r1, r2 = _ragged_cross(self.first_row[v], n, self.first_row[v], n)
            keep = r1 <= r2  # a row pair of the same value once, a row with itself once
            return r1[keep], r2[keep]
        u = v ^ mask
        sel = (v < u) & (self.nrows[u] > 0)  # each unordered pair of values once
        v, u = v[sel], u[sel]
        return _ragged_cross(self.first_row[v], self.nrows[v], self.first_row[u], self.nrows[u])


def _ragged_cross(
    f1: np.ndarray, n1: np.ndarray, f2: np.ndarray, n2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All (f1[g] + a, f2[g] + b) for a < n1[g], b < n2[g], over groups g."""
    cnt = n1 * n2
    single = cnt == 1
    if single.all():
        return f1, f2
    r1_parts, r2_parts = [f1[single]], [f2[single]]
    f1, n1, f2, n2, cnt = f1[~single], n1[~single], f2[~single], n2[~single], cnt[~single]
    rep = np.repeat(np.arange(cnt.size), cnt)
    local = np.arange(rep.size) - (np.cumsum(cnt) - cnt)[rep]
    width2 = n2[rep]
    r1_parts.append(f1[rep] + local // width2)
    r2_parts.append(f2[rep] + local % width2)
    return np.concatenate(r1_parts), np.concatenate(r2_parts)


_local = threading.local()


def _buffers(elems: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bufs = getattr(_local, "bufs", None)
    if bufs is None or bufs[0].size < elems:
        bufs = (np.empty(elems, np.uint64), np.empty(elems, np.uint8), np.empty(elems, np.bool_))
        _local.bufs = bufs
    return bufs


def _scan_mask(
    table: _BandRows, mask: int, k: int, hashes: np.ndarray, earlier: Sequence[Band]
) -> np.ndarray:
    """Pairs (i < j) within k among the rows this mask pairs up, each reported by one band.

    A pair close in several bands would be found once per band; it is kept only by the first
    band whose radius it meets (`earlier` are the bands before this one).
    """
    r1_all, r2_all = table.row_pairs(mask)
    c = table.c
    step = max(1, _CHUNK_ELEMS // (c * c))
    xbuf, cbuf, mbuf = _buffers(step * c * c)
    found: list[np.ndarray] = []
    for s in range(0, r1_all.size, step):
        r1, r2 = r1_all[s : s + step], r2_all[s : s + step]
        p = r1.size
        x = xbuf[: p * c * c].reshape(p, c, c)
        cnt = cbuf[: p * c * c].reshape(p, c, c)
        hit = mbuf[: p * c * c].reshape(p, c, c)
        np.bitwise_xor(table.data_a[r1][:, :, None], table.data_b[r2][:, None, :], out=x)
        np.bitwise_count(x, out=cnt)
        np.less_equal(cnt, k, out=hit)
        if not hit.any():
            continue
        pp, q1, q2 = np.nonzero(hit)
        i = table.idx[r1[pp], q1]
        j = table.idx[r2[pp], q2]
        keep = (i >= 0) & (j >= 0)  # a real hash may sit within k of a pad value
        if mask == 0:
            keep &= (r1[pp] != r2[pp]) | (q1 < q2)  # a row against itself: one triangle
        i, j = i[keep], j[keep]
        if earlier and i.size:
            x_ij = hashes[i] ^ hashes[j]
            first = np.ones(i.size, dtype=bool)
            for band in earlier:
                first &= np.bitwise_count(band.keys(x_ij)) > band.radius
            i, j = i[first], j[first]
        found.append(np.stack([np.minimum(i, j), np.maximum(i, j)], axis=1))
    return np.concatenate(found) if found else np.empty((0, 2), np.int64)


def _default_threads() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def find_unique_pairs(
    unique_hashes: np.ndarray, k: int, *, threads: int | None = None,
    scheme: BandScheme | None = None,
) -> np.ndarray:
    """Pairs (i < j, sorted) of distinct hashes within Hamming distance k, by index."""
    h = as_hash_array(unique_hashes)
    if h.size < 2:
        return np.empty((0, 2), np.int64)
    if scheme is None:
        scheme, widths = plan_scheme(h, k)
    else:
        if scheme.k < k:
            raise ValueError(f"scheme built for k={scheme.k} cannot find pairs within {k}")
        widths = tuple(_band_cost(np.bincount(b.keys(h), minlength=1 << b.width), b.width,
                                  len(b.masks))[1] for b in scheme.bands)
    tables = [_BandRows(h, band, c) for band, c in zip(scheme.bands, widths, strict=True)]
    tasks = [(b, int(e)) for b, t in enumerate(tables) for e in t.band.masks]

    def run(task: tuple[int, int]) -> np.ndarray:
        b, e = task
        return _scan_mask(tables[b], e, k, h, scheme.bands[:b])

    threads = threads or _default_threads()
    if threads == 1:
        parts = [run(t) for t in tasks]
    else:
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(run, tasks))
    pairs = np.concatenate(parts) if parts else np.empty((0, 2), np.int64)
    codes = np.sort(pairs[:, 0] * h.size + pairs[:, 1])  # each pair once (first band rule)
    return np.stack([codes // h.size, codes % h.size], axis=1)


def find_pairs(
    hashes: Iterable[int] | np.ndarray, k: int = DEFAULT_K, *, threads: int | None = None,
    scheme: BandScheme | None = None,
) -> np.ndarray:
    """All pairs (i < j) of positions whose hashes are within Hamming distance k.

    Returns an int64 array of shape (P, 2), sorted lexicographically: exactly what exhaustive
    search returns, exact duplicates included.
    """
    h = as_hash_array(hashes)
    uniq, inverse = np.unique(h, return_inverse=True)
    upairs = find_unique_pairs(uniq, k, threads=threads, scheme=scheme)
    return _expand_groups(inverse, upairs)


def _expand_groups(inverse: np.ndarray, upairs: np.ndarray) -> np.ndarray:
    """Pairs of unique values -> pairs of positions (all members x all members, + within)."""
    order = np.argsort(inverse, kind="stable")
    sizes = np.bincount(inverse)
    starts = np.cumsum(sizes) - sizes
    parts = []
    if upairs.size:
        a, b = upairs[:, 0], upairs[:, 1]
        ra, rb = _ragged_cross(starts[a], sizes[a], starts[b], sizes[b])
        parts.append(np.stack([order[ra], order[rb]], axis=1))
    multi = np.flatnonzero(sizes > 1)
    if multi.size:
        ra, rb = _ragged_cross(starts[multi], sizes[multi], starts[multi], sizes[multi])
        keep = ra < rb
        parts.append(np.stack([order[ra[keep]], order[rb[keep]]], axis=1))
    if not parts:
        return np.empty((0, 2), np.int64)
    pairs = np.concatenate(parts)
    pairs = np.stack([pairs.min(axis=1), pairs.max(axis=1)], axis=1)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def exhaustive_pairs(
    hashes: Iterable[int] | np.ndarray, k: int, *, threads: int | None = None
) -> np.ndarray:
    """Reference all-pairs search: blockwise XOR + popcount over every pair, O(N^2).

    Tiles of 256 x 4096 (8 MB of XOR per numpy call) were the fastest plain-numpy shape here.
    """
    h = as_hash_array(hashes)
    n = h.size
    block, tile = 256, 4096

    def rows(i0: int) -> list[np.ndarray]:
        xbuf, cbuf, mbuf = _buffers(block * tile)
        out = []
        a = h[i0 : i0 + block]
        for j0 in range(i0, n, tile):
            b = h[j0 : j0 + tile]
            shape = (a.size, b.size)
            x = xbuf[: a.size * b.size].reshape(shape)
            cnt = cbuf[: a.size * b.size].reshape(shape)
            hit = mbuf[: a.size * b.size].reshape(shape)
            np.bitwise_xor(a[:, None], b[None, :], out=x)
            np.bitwise_count(x, out=cnt)
            np.less_equal(cnt, k, out=hit)
            if not hit.any():
                continue
            ii, jj = np.nonzero(hit)
            ii, jj = ii + i0, jj + j0
            keep = jj > ii
            out.append(np.stack([ii[keep], jj[keep]], axis=1))
        return out

    starts = range(0, n, block)
    threads = threads or _default_threads()
    if threads == 1:
        parts = [p for s in starts for p in rows(s)]
    else:
        with ThreadPoolExecutor(threads) as pool:
            parts = [p for ps in pool.map(rows, starts) for p in ps]
    if not parts:
        return np.empty((0, 2), np.int64)
    pairs = np.concatenate(parts).astype(np.int64)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


# ------------------------------------------------------------------------ incremental queries

@dataclass
class _Frozen:
    hashes: np.ndarray
    ids: np.ndarray
    orders: list[np.ndarray]  # per band: positions sorted by band value
    sorted_hashes: list[np.ndarray]  # per band: hashes[order], so candidates are contiguous
    offsets: list[np.ndarray]  # per band: start of each band value in `orders`, length 2^w+1


class NearDupIndex:
    """Hashes of a pool, queried one or many at a time for neighbours within k.

    Additions go to a small buffer, searched exhaustively (it is short), and are merged into
    the band arrays once the buffer grows past an eighth of the pool, so adding one image at a
    time costs amortised O(log N) and a query never scans the pool.
    """

    def __init__(self, k: int = DEFAULT_K, scheme: BandScheme | None = None) -> None:
        self.scheme = scheme or BandScheme.split(k, 4)
        if self.scheme.k < k:
            raise ValueError(f"scheme built for k={self.scheme.k} cannot answer k={k}")
        if max(b.width for b in self.scheme.bands) > _MAX_TABLE_BITS:
            raise ValueError("bands wider than 22 bits are not supported in memory")
        self.k = k
        self._frozen = self._freeze(np.empty(0, np.uint64), np.empty(0, np.int64))
        self._pending_h: list[int] = []
        self._pending_ids: list[int] = []

    def __len__(self) -> int:
        return self._frozen.hashes.size + len(self._pending_h)

    def _freeze(self, hashes: np.ndarray, ids: np.ndarray) -> _Frozen:
        orders, sorted_hashes, offsets = [], [], []
        for band in self.scheme.bands:
            keys = band.keys(hashes)
            order = np.argsort(keys, kind="stable")
            counts = np.bincount(keys, minlength=1 << band.width)
            orders.append(order)
            sorted_hashes.append(hashes[order])
            offsets.append(np.concatenate([[0], np.cumsum(counts)]))
        return _Frozen(hashes, ids, orders, sorted_hashes, offsets)

    def add(self, ids: Sequence[int] | np.ndarray, hashes: Iterable[int] | np.ndarray) -> None:
        h = as_hash_array(hashes)
        ids_arr = np.asarray(ids, dtype=np.int64)
        if ids_arr.shape != h.shape:
            raise ValueError("ids and hashes must have the same length")
        self._pending_h.extend(int(x) for x in h)
        self._pending_ids.extend(int(x) for x in ids_arr)
        if len(self._pending_h) > max(1024, self._frozen.hashes.size // 8):
            self.compact()

    def compact(self) -> None:
        """Merge the buffer into the band arrays."""
        if not self._pending_h:
            return
        hashes = np.concatenate([self._frozen.hashes, np.asarray(self._pending_h, np.uint64)])
        ids = np.concatenate([self._frozen.ids, np.asarray(self._pending_ids, np.int64)])
        self._frozen = self._freeze(hashes, ids)
        self._pending_h, self._pending_ids = [], []

    def query(self, h: int, k: int | None = None) -> list[tuple[int, int]]:
        """(id, distance) of every stored hash within k of h, nearest first (ties by id)."""
        ids, dists = self.query_many([h], k)[0]
        return list(zip(ids.tolist(), dists.tolist(), strict=True))

    def query_many(
        self, hashes: Iterable[int] | np.ndarray, k: int | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each query hash: (ids, distances) within k, nearest first (ties by id)."""
        k = self.k if k is None else k
        if k > self.scheme.k:
            raise ValueError(f"index built for k <= {self.scheme.k}, asked for {k}")
        q = as_hash_array(hashes)
        f = self._frozen
        n = max(1, f.hashes.size)
        codes, dists = [], []
        for band, order, sorted_h, offsets in zip(
            self.scheme.bands, f.orders, f.sorted_hashes, f.offsets, strict=True
        ):
            probes = (band.keys(q)[:, None] ^ band.masks[None, :]).ravel()
            lo, hi = offsets[probes], offsets[probes + 1]
            lens = hi - lo
            if not lens.any():
                continue
            rep = np.repeat(np.arange(probes.size), lens)
            slot = lo[rep] + (np.arange(rep.size) - (np.cumsum(lens) - lens)[rep])
            qi = rep // band.masks.size
            d = hamming_distances(sorted_h[slot], q[qi])  # reads short contiguous runs
            keep = d <= k
            codes.append(qi[keep] * n + order[slot[keep]])
            dists.append(d[keep])
        results_qi, results_pos, results_d = [], [], []
        if codes:
            code, d = np.concatenate(codes), np.concatenate(dists)
            first = np.ones(code.size, dtype=bool)
            srt = np.argsort(code, kind="stable")
            code, d = code[srt], d[srt]
            first[1:] = code[1:] != code[:-1]  # a neighbour found through several bands
            code, d = code[first], d[first]
            results_qi.append(code // n)
            results_d.append(d)
            results_pos.append(f.ids[code % n])
        if self._pending_h:
            ph = np.asarray(self._pending_h, np.uint64)
            d = np.bitwise_count(q[:, None] ^ ph[None, :]).astype(np.int64)
            qi, pj = np.nonzero(d <= k)
            results_qi.append(qi)
            results_d.append(d[qi, pj])
            results_pos.append(np.asarray(self._pending_ids, np.int64)[pj])
        out: list[tuple[np.ndarray, np.ndarray]] = [
            (np.empty(0, np.int64), np.empty(0, np.int64)) for _ in range(q.size)
        ]
        if not results_qi:
            return out
        qi, ids, d = (np.concatenate(x) for x in (results_qi, results_pos, results_d))
        order = np.lexsort((ids, d, qi))
        qi, ids, d = qi[order], ids[order], d[order]
        bounds = np.searchsorted(qi, np.arange(q.size + 1))
        for n in range(q.size):
            a, b = bounds[n], bounds[n + 1]
            out[n] = (ids[a:b], d[a:b])
        return out


# --------------------------------------------------------------------------------- clustering

class UnionFind:
    """Disjoint sets over 0..n-1 (union by size, path halving)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return ra

    def roots(self) -> np.ndarray:
        return np.fromiter((self.find(x) for x in range(len(self.parent))), np.int64,
                           count=len(self.parent))


@dataclass(frozen=True)
class Member:
    """What the representative choice looks at. Lower `source_rank` = preferred source;
    `sha256` is the content-derived tie-break (the pool's images all have one)."""

    id: int
    pixels: int
    source_rank: int = 0
    sha256: str = ""


def representative_key(m: Member) -> tuple[int, int, str, int]:
    return (-m.pixels, m.source_rank, m.sha256, m.id)


def choose_representative(members: Iterable[Member]) -> Member:
    """The member kept of a cluster: the most pixels, then the preferred source, then the
    lowest sha256 (hex). sha256 is unique in the pool and derived from the bytes alone, so the
    choice depends only on which images are in the cluster, never on the order (or the ids)
    they arrived with; the id decides only among members given without a sha256."""
    return min(members, key=representative_key)


@dataclass(frozen=True)
class Clusters:
    """`labels[i]`: position of the representative of item i's cluster (itself if alone)."""

    labels: np.ndarray

    @property
    def representatives(self) -> np.ndarray:
        return np.flatnonzero(self.labels == np.arange(self.labels.size))

    def groups(self) -> dict[int, list[int]]:
        """Representative -> members (the representative first), clusters of 2+ only."""
        out: dict[int, list[int]] = {}
        for i in np.argsort(self.labels, kind="stable").tolist():
            rep = int(self.labels[i])
            out.setdefault(rep, [rep])
            if i != rep:
                out[rep].append(i)
        return {r: m for r, m in out.items() if len(m) > 1}


def cluster_near_duplicates(
    hashes: Iterable[int] | np.ndarray,
    *,
    k: int = DEFAULT_K,
    pixels: Sequence[int] | np.ndarray | None = None,
    source_rank: Sequence[int] | np.ndarray | None = None,
    ids: Sequence[int] | np.ndarray | None = None,
    threads: int | None = None,
) -> Clusters:
    """Connected components of "within k" (union-find), one representative per cluster.

    The representative is the member with the most pixels, then the lowest source rank, then
    the lowest id (defaults: position), as `choose_representative`.
    """
    h = as_hash_array(hashes)
    n = h.size
    pixels_arr = np.zeros(n, np.int64) if pixels is None else np.asarray(pixels, np.int64)
    rank_arr = np.zeros(n, np.int64) if source_rank is None else np.asarray(source_rank, np.int64)
    ids_arr = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
    uniq, inverse = np.unique(h, return_inverse=True)
    upairs = find_unique_pairs(uniq, k, threads=threads)
    # Identical hashes share a unique index already; union the near ones among unique values.
    uf = UnionFind(uniq.size)
    for a, b in upairs.tolist():
        uf.union(a, b)
    component = uf.roots()[inverse]
    order = np.lexsort((ids_arr, rank_arr, -pixels_arr, component))
    first = np.ones(n, bool)
    first[1:] = component[order][1:] != component[order][:-1]
    rep_of_component = dict(zip(component[order][first].tolist(), order[first].tolist(),
                                strict=True))
    labels = np.fromiter((rep_of_component[c] for c in component.tolist()), np.int64, count=n)
    return Clusters(labels=labels)
