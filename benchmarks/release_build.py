"""Release build (issue 5): the metadata files of a 108,000-image release, seconds and memory.

    python benchmarks/release_build.py            # 27,000 / 54,000 / 108,000 rows
    python benchmarks/release_build.py --quick    # 5,400 / 10,800 rows, a smoke run
    python benchmarks/release_build.py --sizes 108000 --formats official,parquet

Core only (no database): synthetic rows as the paper's dataset, 58/108 overall-only images from
five public sources and 50/108 images rated on the 12 dimensions by 3 raters (consensus MOS,
std, n = 3; 5 % with no visible face), 3 % of the images in near-duplicate clusters of 2-4.
`assign_splits` then `build_release` with images=none (metadata only: no image copying) and
formats official, parquet, csv and webdataset (json-only shards without images).

Each size runs in a fresh Python process, so peak memory is its own. Printed per size:
- seconds: assign_splits; the streaming pass (every format's files); datasheet + manifest;
  the build total (assign + build), wall clock and CPU time of the process (CPU time is the
  steadier figure on a machine shared with other work: wall well above CPU means it waited);
- memory: peak RSS of the process and its growth during the build (the rows themselves, the
  caller's list, are resident before); Python's traced peak during the build (tracemalloc, a
  second build, not timed); Arrow's own pool peak. Flat = does not grow with the row count.
Peer (issue 5): Label Studio takes 64 s to export 60,000 annotations as JSON on these machines;
the ratio is per item (its 60,000 annotations vs our images). Target: < 15 s for 108,000.

A `--db` mode (rows streamed from PostgreSQL by the release selector) can plug in beside
`synthetic_rows`: `bench_core` takes any iterable of rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np

from humanbeauty.standard import DIMENSIONS
from modeling.release import ReleaseConfig, ReleaseRow, assign_splits, build_release

PEER_SECONDS, PEER_ITEMS = 64.0, 60_000  # Label Studio JSON export (issue 5)
TARGET_SECONDS = 15.0
SOURCES = (("AVA", 0.35), ("TAD66K", 0.25), ("SCUT-FBP5500", 0.1), ("MEBeauty", 0.05),
           ("BAID", 0.1), ("AGIQA", 0.15))


def synthetic_rows(n_rows: int, seed: int = 0) -> list[ReleaseRow]:
    """58/108 overall-only, 50/108 12-dim rows; ids 1..n; 3 % in clusters of 2-4."""
    rng = np.random.default_rng(seed)
    n_overall = round(n_rows * 58 / 108)
    ids = np.arange(1, n_rows + 1)
    cluster = np.full(n_rows, -1)
    i, c = 0, 1
    while i < n_rows:  # every ~100 images, a cluster of 2-4 consecutive ones
        i += int(rng.integers(30, 100))
        k = int(rng.integers(2, 5))
        cluster[i:i + k] = c
        i, c = i + k, c + 1
    names = [s for s, _ in SOURCES]
    probs = np.array([p for _, p in SOURCES])
    source = rng.choice(len(names), size=n_rows, p=probs / probs.sum())
    overall = np.round(rng.beta(4, 3, n_rows), 6)
    dims = np.round(np.clip(rng.normal(overall[:, None], 0.12, (n_rows, len(DIMENSIONS))), 0, 1),
                    6)
    dims[:, -1] = overall
    std = np.round(rng.uniform(0.02, 0.2, (n_rows, len(DIMENSIONS))), 6)
    hidden = rng.random(n_rows) < 0.05
    shas = [f"{int(a):016x}{int(b):016x}" * 2 for a, b in zip(
        rng.integers(0, 2**63, n_rows), rng.integers(0, 2**63, n_rows), strict=True)]
    phash = rng.integers(0, 2**63, n_rows)
    rows = []
    n3 = (3,) * len(DIMENSIONS)
    for j in range(n_rows):
        common = dict(
            image_id=int(ids[j]), file=f"/srv/media/images/{shas[j][:2]}/{shas[j]}.jpg",
            sha256=shas[j], phash=f"{int(phash[j]):016x}",
            cluster=None if cluster[j] < 0 else int(cluster[j]), width=1024, height=768,
            format="JPEG",
        )
        if j < n_overall:
            rows.append(ReleaseRow(**common, source=names[source[j]], overall=float(overall[j])))
        else:
            scores = dims[j].tolist()
            sd = std[j].tolist()
            if hidden[j]:
                scores[:6] = [None] * 6
                sd[:6] = [None] * 6
            rows.append(ReleaseRow(**common, source="humanbeauty-50k", overall=scores[-1],
                                   scores=tuple(scores), std=tuple(sd), n=n3))
    return rows


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _tree_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6


def bench_core(rows, out_root: Path, formats: tuple[str, ...], trace: bool = True) -> dict:
    """Time assign_splits + build_release on ``rows`` (a list, iterated twice), metadata only."""
    import pyarrow as pa
    import pyarrow.parquet  # imported before the baseline: not the build's memory

    config = ReleaseConfig(name="bench", version="1", seed=0, formats=formats, images="none")
    rss_before = _rss_mib()
    marks: dict[str, float] = {}

    def progress(phase: str, done: int, total: int) -> None:
        marks.setdefault(phase, time.perf_counter())

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    splits = assign_splits(rows, config)
    t1 = time.perf_counter()
    manifest = build_release(rows, splits, config, out_root / "timed",
                             platform_version="bench", extra_config={}, progress=progress)
    t2 = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "rows": len(rows),
        "assign_s": t1 - t0,
        "write_s": marks["datasheet"] - t1,
        "finish_s": t2 - marks["datasheet"],
        "total_s": t2 - t0,
        "cpu_s": usage.ru_utime + usage.ru_stime - usage0.ru_utime - usage0.ru_stime,
        "peak_rss_mib": peak_rss,
        "rss_growth_mib": peak_rss - rss_before,
        "arrow_peak_mib": pa.default_memory_pool().max_memory() / 2**20,
        "files": len(manifest["files"]),
        "mb": _tree_mb(out_root / "timed"),
    }
    shutil.rmtree(out_root / "timed")
    if trace:
        tracemalloc.start()
        build_release(rows, splits, config, out_root / "traced", platform_version="bench",
                      extra_config={})
        result["traced_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        shutil.rmtree(out_root / "traced")
    return result


def _child(n_rows: int, formats: tuple[str, ...]) -> None:
    rows = synthetic_rows(n_rows)
    with tempfile.TemporaryDirectory(prefix="release-bench-") as tmp:
        result = bench_core(rows, Path(tmp), formats)
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="27000,54000,108000")
    ap.add_argument("--quick", action="store_true", help="5,400 and 10,800 rows")
    ap.add_argument("--formats", default="official,parquet,csv,webdataset")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    formats = tuple(f for f in args.formats.split(",") if f)
    if args.child:
        _child(args.child, formats)
        return 0
    sizes = [5400, 10800] if args.quick else [int(s) for s in args.sizes.split(",")]
    results = []
    for n in sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--formats", ",".join(formats)],
            capture_output=True, text=True, check=False,
        )
        if proc.returncode:
            print(proc.stdout + proc.stderr, file=sys.stderr)
            return proc.returncode
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"release build, core only (images=none; formats {', '.join(formats)}); "
          f"{os.cpu_count()} CPUs")
    head = ("rows", "assign s", "write s", "datasheet+manifest s", "total s", "CPU s",
            "peak RSS MiB", "RSS growth MiB", "traced peak MiB", "Arrow peak MiB", "files",
            "MB written", "vs Label Studio")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---:" for _ in head) + "|")
    for r in results:
        ours_per_item = r["total_s"] / r["rows"]
        peer_per_item = PEER_SECONDS / PEER_ITEMS
        print(f"| {r['rows']:,} | {r['assign_s']:.2f} | {r['write_s']:.2f} | "
              f"{r['finish_s']:.2f} | {r['total_s']:.2f} | {r['cpu_s']:.2f} | "
              f"{r['peak_rss_mib']:.0f} | "
              f"{r['rss_growth_mib']:.0f} | {r['traced_peak_mib']:.1f} | "
              f"{r['arrow_peak_mib']:.1f} | {r['files']} | {r['mb']:.1f} | "
              f"{peer_per_item / ours_per_item:.1f}x faster per item |")
    largest = results[-1]
    if largest["rows"] >= 108_000:
        verdict = "meets" if largest["total_s"] < TARGET_SECONDS else "MISSES"
        print(f"\n108,000 rows in {largest['total_s']:.1f} s: {verdict} the < "
              f"{TARGET_SECONDS:.0f} s target; Label Studio: {PEER_SECONDS:.0f} s for "
              f"{PEER_ITEMS:,} annotations ({PEER_SECONDS / largest['total_s']:.1f}x our "
              f"time for {largest['rows'] / PEER_ITEMS:.1f}x the items).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
