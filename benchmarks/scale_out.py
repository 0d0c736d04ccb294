"""Scale-out (issue 16): one filter job over generated photos, run by 1, 2 and 4 Celery worker
processes (concurrency 1 each, each with its own empty MEDIA_ROOT and scratch folder) with the
photos and the pool in an S3 bucket, against one worker reading the photos from local disk and
storing the pool on it, in the same run.

    python benchmarks/scale_out.py             # 20,000 photos of 640 x 480 (long)
    python benchmarks/scale_out.py --n 2000    # a shorter run
    python benchmarks/scale_out.py --quick     # 120 photos, 1 and 2 workers: a smoke run

The bucket is a moto S3 server started here (spoken to over HTTP, like MinIO); the database is
BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/hb_scale_bench, dropped and
recreated per configuration; its name must contain "bench"); the broker BENCH_BROKER_URL
(default redis://127.0.0.1:6379/13, its queues emptied first). The job: validate, hash,
near-duplicates and faces (CLIP off: no checkpoint on these machines), chunks of --chunk items.
Timed: from the job's creation to its last decision (the workers are up and idle before).

Printed per configuration: images/s, the speed-up against the local-disk single worker, the
scaling efficiency (speed-up / workers) and, for one worker in the bucket, what the storage
costs against the local disk. Targets: >= 1.7x with 2 workers on a 2-core machine, <= 10 %
lost to storage with one worker. Then an estimate, from the measured per-image cost, of the
worker-hours for 10 million images.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _images import make_jpegs  # noqa: E402
from rater_api import recreate_database  # noqa: E402 (local, 'bench' databases only)

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hb_scale_bench")
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13")
BUCKET = "hb-scale-bench"
KEYS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "AWS_S3_REGION_NAME": "us-east-1"}
QUEUES = "cpu,gpu,io"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the moto S3 server did not start") from None
            time.sleep(0.1)


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"],
                        region_name=KEYS["AWS_S3_REGION_NAME"])


def upload(client, folder: Path, prefix: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    files = sorted(p for p in folder.iterdir() if p.is_file())
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: client.upload_file(str(p), BUCKET, f"{prefix}/{p.name}"), files))


def base_env(work: Path, storage: dict[str, str], import_roots: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DATABASE_URL=DB_URL, CELERY_BROKER_URL=BROKER_URL, SECRET_KEY="bench",
               DEBUG="0", HTTPS="0", LOG_LEVEL="WARNING", DJANGO_SETTINGS_MODULE="config.settings",
               IMPORT_ROOTS=import_roots, MEDIA_ROOT=str(work / "web-media"),
               SCRATCH_DIR=str(work / "web-scratch"), **storage)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def empty_queues() -> None:
    import redis

    broker = redis.Redis.from_url(BROKER_URL)
    for queue in QUEUES.split(","):
        broker.delete(queue)


def job_state(job_id: int) -> tuple[str, int]:
    import psycopg

    with psycopg.connect(DB_URL) as conn:
        status = conn.execute("SELECT status FROM curation_filterjob WHERE id = %s",
                              (job_id,)).fetchone()[0]
        decided = conn.execute("SELECT count(*) FROM curation_decision WHERE job_id = %s",
                               (job_id,)).fetchone()[0]
    return status, decided


START_JOB = """
from curation.models import Source
from curation.services.jobs import start_job
job = start_job(Source.objects.get(name="bench"),
                overrides={{"clip": {{"enabled": False}}, "chunk_size": {chunk}}})
print(job.pk)
"""


def run(label: str, *, workers: int, env: dict[str, str], manifest: str, work: Path,
        n: int, chunk: int) -> dict:
    """One configuration on a fresh database: import, start the workers, time the job."""
    recreate_database(DB_URL)
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "import_source", "manifest", manifest, "--name", "bench", "-v", "0")
    empty_queues()
    procs = []
    for i in range(workers):
        machine = work / f"{label}-w{i}"
        wenv = {**env, "MEDIA_ROOT": str(machine / "media"),
                "SCRATCH_DIR": str(machine / "scratch")}
        if env.get("MEDIA_STORAGE") != "s3":
            wenv["MEDIA_ROOT"] = env["MEDIA_ROOT"]  # the local-disk baseline: one shared disk
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
             "-Q", QUEUES, "-n", f"{label}-{i}@%h", "--loglevel", "error",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=wenv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))
    time.sleep(3.0)  # the workers connect and wait
    try:
        t0 = time.perf_counter()
        job_id = int(manage(env, "shell", "-c", START_JOB.format(chunk=chunk)).split()[-1])
        status, decided = job_state(job_id)
        while status not in ("done", "failed", "cancelled"):
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"{label}: a worker died")
            time.sleep(0.2)
            status, decided = job_state(job_id)
        wall = time.perf_counter() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
    return {"label": label, "workers": workers, "status": status, "decided": decided,
            "wall": wall, "images_per_s": decided / wall if wall else 0.0, "n": n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="photos")
    parser.add_argument("--workers", default="1,2,4", help="worker counts in the bucket")
    parser.add_argument("--chunk", type=int, default=50, help="items per chunk")
    parser.add_argument("--size", default="640x480", help="photo size WxH")
    parser.add_argument("--quick", action="store_true", help="120 photos, 1 and 2 workers")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.workers, args.chunk = 120, "1,2", 10
    counts = [int(w) for w in args.workers.split(",")]
    size = tuple(int(v) for v in args.size.split("x"))

    work = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    moto, endpoint = start_moto()
    try:
        photos = work / "imports" / "bench"
        make_jpegs(photos, args.n, size)
        lines = ["path"] + [p.name for p in sorted(photos.glob("*.jpg"))]
        (photos / "manifest.csv").write_text("\n".join(lines) + "\n")
        client = s3_client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        upload(client, photos, "imports/bench")

        local = base_env(work, {"MEDIA_STORAGE": "filesystem"}, str(work / "imports"))
        s3 = base_env(work, {"MEDIA_STORAGE": "s3", "AWS_S3_ENDPOINT_URL": endpoint,
                             "AWS_STORAGE_BUCKET_NAME": BUCKET, **KEYS}, "storage:imports")
        results = [run("local", workers=1, env=local, manifest=str(photos / "manifest.csv"),
                       work=work, n=args.n, chunk=args.chunk)]
        for count in counts:
            # The pool of the previous run goes: each configuration stores every photo anew.
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET,
                                                                     Prefix="images/")
            for page in pages:
                for obj in page.get("Contents", []):
                    client.delete_object(Bucket=BUCKET, Key=obj["Key"])
            results.append(run(f"s3x{count}", workers=count, env=s3,
                               manifest="storage:imports/bench/manifest.csv", work=work,
                               n=args.n, chunk=args.chunk))
    finally:
        moto.terminate()
        moto.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    report(results)
    if args.json:
        print(json.dumps(results, indent=2))
    bad = [r for r in results if r["status"] != "done" or r["decided"] != args.n]
    return 1 if bad else 0


def report(results: list[dict]) -> None:
    base = results[0]["images_per_s"]
    cores = os.cpu_count() or 1
    print(f"\nfilter job (validate, hash, near-duplicates, faces) over {results[0]['n']:,} "
          f"photos; {cores} CPUs here")
    print(f"{'configuration':<28}{'images/s':>10}{'speed-up':>10}{'efficiency':>12}")
    for r in results:
        speed = r["images_per_s"] / base if base else 0.0
        what = ("local disk, 1 worker" if r["label"] == "local"
                else f"bucket, {r['workers']} worker{'s' if r['workers'] > 1 else ''}")
        print(f"{what:<28}{r['images_per_s']:>10.1f}{speed:>9.2f}x{speed / r['workers']:>11.0%}"
              + ("" if r["status"] == "done" else f"  ({r['status']}, {r['decided']} decided)"))
    one = next((r for r in results if r["label"] == "s3x1"), None)
    if one and base:
        print(f"storage cost with one worker: {1 - one['images_per_s'] / base:.0%} "
              "of the local-disk rate (target <= 10 %)")
    two = next((r for r in results if r["label"] == "s3x2"), None)
    if two and base:
        print(f"two workers: {two['images_per_s'] / base:.2f}x the local single worker "
              "(target >= 1.7x on 2 cores)")
    rate = (one or results[0])["images_per_s"]
    per_image = 1 / rate if rate else 0.0
    hours = 10_000_000 * per_image / 3600
    print(f"10 million images at {per_image * 1000:.0f} ms per image per worker process: "
          f"{hours:,.0f} worker-hours, e.g. {hours / 48:,.1f} h on 48 worker processes "
          "(CPU stages only; CLIP adds its GPU time)")


if __name__ == "__main__":
    raise SystemExit(main())
