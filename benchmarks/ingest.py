"""Ingest (issue 10): JPEGs through `import_images` (decode check, sha256, pHash + dHash,
near-duplicate clusters against the pool, stored in PostgreSQL) vs imagededup on the same files.

    python benchmarks/ingest.py              # 2,000 JPEGs of 2016 x 1344 (2.7 Mpx)
    python benchmarks/ingest.py --n 300      # a quicker run
    python benchmarks/ingest.py --quick      # 60 JPEGs, a smoke run

Ours: `manage.py import_images DIR --project bench` into a fresh database of its own
(BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/hb_ingest_bench, dropped and
recreated per run; its name must contain "bench") with MEDIA_ROOT in a temporary folder: every
file validated, hashed (one draft decode on all cores), copied into the content-addressed
store, inserted and clustered against the pool, and added to a rating project.
Peer: imagededup's `PHash().encode_images(image_dir, num_enc_workers=cores)` then
`find_duplicates(encoding_map, max_distance_threshold=10)` (our k), in memory, no storage.

Each method runs in a fresh Python process (imports, Django setup and migrations are outside
the timed part); the table gives images/s (wall clock) and CPU seconds per image: the process
and its worker processes, plus, for ours, the PostgreSQL backend serving it (read from /proc).
Best of --repeat runs, the methods interleaved per round. Target: ours >= 3x imagededup.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_images.py, rater_api.py

from rater_api import recreate_database  # noqa: E402 (local, 'bench' databases only)

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hb_ingest_bench")
K = 10


def _cpu() -> float:
    """CPU seconds of this process and of its waited-for children (worker pools)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _proc_cpu(pid: int) -> float:
    """CPU seconds of another process (the PostgreSQL backend), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_ours(folder: Path) -> dict:
    """In a child process: a fresh database, then the timed `import_images`."""
    recreate_database(DB_URL)
    media = tempfile.mkdtemp(prefix="ingest-media-")
    os.environ.update(DATABASE_URL=DB_URL, MEDIA_ROOT=media,
                      DJANGO_SETTINGS_MODULE="config.settings")
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()
    import io

    from django.core.management import call_command
    from django.db import connection

    from curation.models import DuplicateCluster, Image

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    db0, cpu0, t0 = _proc_cpu(backend), _cpu(), time.perf_counter()
    out = io.StringIO()
    call_command("import_images", str(folder), "--project", "bench", stdout=out, verbosity=0)
    wall = time.perf_counter() - t0
    cpu, db = _cpu() - cpu0, _proc_cpu(backend) - db0
    import shutil

    shutil.rmtree(media, ignore_errors=True)
    return {
        "wall": wall, "cpu": cpu, "db_cpu": db,
        "images": Image.objects.count(),
        "unclustered": Image.objects.filter(clustered_at__isnull=True).count(),
        "in_clusters": Image.objects.filter(cluster__isnull=False).count(),
        "clusters": DuplicateCluster.objects.count(),
        "report": out.getvalue().strip(),
    }


def run_imagededup(folder: Path, procs: int) -> dict:
    from imagededup.methods import PHash

    encoder = PHash(verbose=False)
    cpu0, t0 = _cpu(), time.perf_counter()
    encodings = encoder.encode_images(image_dir=str(folder), num_enc_workers=procs)
    duplicates = encoder.find_duplicates(encoding_map=encodings, max_distance_threshold=K,
                                         num_dist_workers=procs)
    wall = time.perf_counter() - t0
    return {"wall": wall, "cpu": _cpu() - cpu0, "db_cpu": 0.0, "images": len(encodings),
            "in_clusters": sum(1 for v in duplicates.values() if v)}


def _child(method: str, folder: Path, procs: int) -> dict:
    cmd = [sys.executable, __file__, "--child", method, "--dir", str(folder),
           "--processes", str(procs)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", "-n", type=int, default=2000, help="number of JPEGs")
    parser.add_argument("--quick", action="store_true", help="60 JPEGs: a smoke run")
    parser.add_argument("--size", default="2016x1344", help="WIDTHxHEIGHT of the JPEGs")
    parser.add_argument("--processes", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--dir", type=Path, default=None, help="keep the JPEGs here")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    parser.add_argument("--child", choices=["ours", "imagededup"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = (run_ours(args.dir) if args.child == "ours"
                  else run_imagededup(args.dir, args.processes))
        print(json.dumps(result))
        return 0

    from _images import make_jpegs

    n = 60 if args.quick else args.n
    size = tuple(int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.dir or Path(tmp) / "jpegs"
        t0 = time.perf_counter()
        paths = make_jpegs(folder, n, size)  # type: ignore[arg-type]
        stray = sorted(set(folder.iterdir()) - set(paths))
        if stray:
            raise SystemExit(f"{folder} holds other files too ({stray[0].name}, ...)")
        mb = sum(p.stat().st_size for p in paths) / n / 1e6
        for p in paths:  # warm the page cache: measure the work, not the disk
            p.read_bytes()
        print(f"{n} JPEGs of {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.1f} Mpx, "
              f"{mb:.2f} MB each, made in {time.perf_counter() - t0:.0f} s); "
              f"{args.processes} processes where parallel; {os.cpu_count()} CPUs visible; "
              f"best of {args.repeat}")
        load_before = os.getloadavg()[0]
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for method in ("imagededup", "ours"):
                r = _child(method, folder, args.processes)
                if "error" in r or r["wall"] < best.get(method, {"wall": float("inf")})["wall"]:
                    best[method] = r
        load_after = os.getloadavg()[0]

    print(f"load average (1 min) before/after: {load_before:.1f} / {load_after:.1f}\n")
    print(f"| {'method':<50} | {'img/s':>7} | {'CPU s/img':>9} | {'of it DB':>8} | "
          f"{'x imagededup':>12} | in clusters")
    print(f"|{'-' * 52}|{'-' * 9}|{'-' * 11}|{'-' * 10}|{'-' * 14}|------------")
    names = {
        "imagededup": "imagededup encode_images + find_duplicates",
        "ours": "ours: import_images (check, hash, store, cluster)",
    }
    peer = best.get("imagededup", {})
    for method in ("imagededup", "ours"):
        r = best[method]
        if "error" in r:
            print(f"| {names[method]:<50} | failed: {r['error']}")
            continue
        rate = r["images"] / r["wall"]
        ratio = (f"{rate / (peer['images'] / peer['wall']):.2f}x"
                 if "wall" in peer else "-")
        per_image = (r["cpu"] + r["db_cpu"]) / r["images"]
        print(f"| {names[method]:<50} | {rate:>7.1f} | {per_image:>9.4f} | "
              f"{r['db_cpu'] / r['images']:>8.4f} | {ratio:>12} | {r['in_clusters']}")
    ours = best["ours"]
    if "error" not in ours:
        print(f"\nours: {ours['report']}")
        print(f"ours: {ours['images']} images stored, {ours['unclustered']} not clustered, "
              f"{ours['clusters']} near-duplicate clusters")
        if "wall" in peer:
            ratio = (ours["images"] / ours["wall"]) / (peer["images"] / peer["wall"])
            verdict = f"{ratio:.2f}x {'MET' if ratio >= 3 else 'NOT MET'}"
        else:
            verdict = f"not measured ({peer.get('error')})"
        print(f"target >= 3x imagededup: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
