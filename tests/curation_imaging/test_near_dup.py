"""near_dup: multi-index search equals exhaustive search; queries; clusters and representatives."""

from __future__ import annotations

import numpy as np
import pytest

from curation.imaging.near_dup import (
    DB_SCHEME,
    DEFAULT_K,
    BandScheme,
    Member,
    NearDupIndex,
    UnionFind,
    as_hash_array,
    choose_representative,
    cluster_near_duplicates,
    exhaustive_pairs,
    find_pairs,
    plan_scheme,
)
from curation.imaging.synthetic import planted_hashes, random_masks


@pytest.mark.parametrize("k", [0, 3, 6, 10])
@pytest.mark.parametrize("threads", [1, 2])
def test_find_pairs_equals_exhaustive_search(k, threads):
    hashes = planted_hashes(4000, seed=k, copy_fraction=0.05, max_distance=12)
    expected = exhaustive_pairs(hashes, k)
    assert len(expected) >= 10  # planted pairs on both sides of k
    assert np.array_equal(find_pairs(hashes, k, threads=threads), expected)


def test_find_pairs_on_skewed_hashes_and_exact_duplicates():
    # Real hashes are not uniform: many share a band value (flat images) and many are
    # identical (the same file imported twice). Buckets then span several rows.
    rng = np.random.default_rng(5)
    low = rng.integers(0, 2**28, size=1500, dtype=np.uint64)  # high 36 bits all zero
    dup = np.repeat(rng.integers(0, 2**64, size=20, dtype=np.uint64), 15)  # 20 values x 15
    spread = planted_hashes(1500, seed=9, copy_fraction=0.1)
    hashes = np.concatenate([low, dup, spread])
    rng.shuffle(hashes)
    for k in (4, 10):
        expected = exhaustive_pairs(hashes, k)
        got = find_pairs(hashes, k)
        assert np.array_equal(got, expected)
        assert len(got) > 20 * 105  # at least every pair inside the identical groups


def test_fixed_database_scheme_finds_the_same_pairs():
    hashes = planted_hashes(3000, seed=11, copy_fraction=0.05)
    for k in (6, 10):
        assert np.array_equal(find_pairs(hashes, k, scheme=DB_SCHEME), exhaustive_pairs(hashes, k))
    with pytest.raises(ValueError):
        find_pairs(hashes, DB_SCHEME.k + 1, scheme=DB_SCHEME)


def test_boundary_distances_are_exact():
    rng = np.random.default_rng(2)
    base = rng.integers(0, 2**64, size=200, dtype=np.uint64)
    for d in (9, 10, 11):
        copies = base ^ random_masks(rng, np.full(base.size, d))
        pairs = find_pairs(np.concatenate([base, copies]), 10)
        planted = {(i, i + base.size) for i in range(base.size)}
        found = {tuple(p) for p in pairs.tolist()} & planted
        assert len(found) == (base.size if d <= 10 else 0)


def test_scheme_pigeonhole_and_probes():
    scheme = BandScheme.split(10, 4)
    assert [b.width for b in scheme.bands] == [16, 16, 16, 16]
    assert [b.radius for b in scheme.bands] == [2, 2, 2, 1]
    assert scheme.n_probes == 3 * 137 + 17
    with pytest.raises(ValueError, match="radii"):
        BandScheme(k=10, bands=tuple(b.__class__(b.shift, b.width, 1) for b in scheme.bands))
    h = 0x0123456789ABCDEF
    assert scheme.band_values(h) == (0x0123, 0x4567, 0x89AB, 0xCDEF)
    probes = scheme.probe_values(h)
    assert [len(p) for p in probes] == [137, 137, 137, 17]
    near = h ^ 0b111  # 3 bits off, all in the last band (radius 1): found through the others
    assert any(v == pv for v, p in zip(scheme.band_values(near), probes, strict=True) for pv in p)


def test_plan_prefers_few_bands_for_many_hashes_and_more_for_few():
    many, _ = plan_scheme(np.unique(planted_hashes(200_000, seed=1)), 10)
    few, _ = plan_scheme(np.unique(planted_hashes(2_000, seed=1)), 10)
    assert len(many.bands) < len(few.bands)


def test_index_queries_equal_brute_force_including_pending_additions():
    hashes = planted_hashes(6000, seed=4, copy_fraction=0.05)
    ids = np.arange(10_000, 16_000)
    index = NearDupIndex(k=10)
    index.add(ids[:5000], hashes[:5000])  # merged into the band arrays
    index.add(ids[5000:5100], hashes[5000:5100])  # stays in the pending buffer
    assert len(index) == 5100
    queries = hashes[5000:]  # half already stored, half new
    results = index.query_many(queries)
    stored = hashes[:5100]
    for q, (got_ids, got_d) in zip(queries, results, strict=True):
        d = np.bitwise_count(stored ^ q).astype(np.int64)
        sel = np.flatnonzero(d <= 10)
        order = np.lexsort((ids[sel], d[sel]))
        assert np.array_equal(got_ids, ids[sel][order])
        assert np.array_equal(got_d, d[sel][order])
    index.compact()
    assert index.query(int(hashes[5050])) == [
        (int(i), int(d)) for i, d in zip(*index.query_many([hashes[5050]])[0], strict=True)
    ]
    assert (int(ids[5050]), 0) in index.query(int(hashes[5050]))


def test_index_query_with_smaller_k_and_refusing_larger():
    index = NearDupIndex(k=10)
    base = 0xFFFF_0000_FFFF_0000
    index.add([1, 2, 3], [base ^ 0b1, base ^ 0b1111, base ^ (2**40 - 1)])
    assert index.query(base, k=2) == [(1, 1)]
    assert index.query(base) == [(1, 1), (2, 4)]
    with pytest.raises(ValueError):
        index.query(base, k=11)


def test_index_accepts_signed_database_values():
    index = NearDupIndex()
    value = 0xF000_0000_0000_0001  # negative as a signed BIGINT
    index.add([7], np.array([value - 2**64], dtype=np.int64))
    assert index.query(value) == [(7, 0)]
    assert as_hash_array([value - 2**64])[0] == value


def test_union_find_joins_transitively():
    uf = UnionFind(6)
    uf.union(0, 1)
    uf.union(2, 1)
    uf.union(4, 5)
    roots = uf.roots()
    assert roots[0] == roots[1] == roots[2]
    assert roots[4] == roots[5] != roots[0]
    assert roots[3] not in (roots[0], roots[4])


def test_representative_is_highest_resolution_then_source_then_id():
    members = [Member(id=5, pixels=100, source_rank=0), Member(id=3, pixels=400, source_rank=2),
               Member(id=9, pixels=400, source_rank=1), Member(id=8, pixels=400, source_rank=1)]
    assert choose_representative(members).id == 8


def test_clusters_pick_the_right_representative():
    rng = np.random.default_rng(3)
    a, b, lone = (int(x) for x in rng.integers(0, 2**64, size=3, dtype=np.uint64))
    hashes = [a, a ^ 0b11, a ^ 0b11 ^ (0b1111 << 20),  # a chain: 0-1 within 2, 1-2 within 4
              b, b ^ (0b11 << 60), b, lone]
    pixels = [640 * 480, 1920 * 1080, 1920 * 1080, 800 * 600, 800 * 600, 800 * 600, 10]
    source_rank = [0, 3, 1, 2, 0, 0, 0]
    ids = [10, 11, 12, 13, 14, 15, 16]
    clusters = cluster_near_duplicates(hashes, k=6, pixels=pixels, source_rank=source_rank,
                                       ids=ids)
    # Cluster {0, 1, 2}: 1 and 2 tie on resolution; 2 comes from the preferred source.
    assert clusters.labels[:3].tolist() == [2, 2, 2]
    # Cluster {3, 4, 5}: same resolution; 4 and 5 tie on source; 4 has the lower id.
    assert clusters.labels[3:6].tolist() == [4, 4, 4]
    assert clusters.labels[6] == 6
    assert sorted(clusters.representatives.tolist()) == [2, 4, 6]
    assert clusters.groups() == {2: [2, 0, 1], 4: [4, 3, 5]}


def test_clusters_match_components_of_exhaustive_pairs():
    hashes = planted_hashes(3000, seed=8, copy_fraction=0.08)
    pairs = exhaustive_pairs(hashes, DEFAULT_K)
    uf = UnionFind(hashes.size)
    for i, j in pairs.tolist():
        uf.union(i, j)
    roots = uf.roots()
    labels = cluster_near_duplicates(hashes).labels
    # Same partition: items share a label exactly when they share a root.
    assert len(set(zip(roots.tolist(), labels.tolist(), strict=True))) == len(set(roots.tolist()))
    assert len(set(labels.tolist())) == len(set(roots.tolist()))
