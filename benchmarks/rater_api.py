"""Rater API benchmark: concurrent raters loop next -> submit against a real gunicorn server.

    .venv/bin/python benchmarks/rater_api.py            # full run (a few minutes)
    .venv/bin/python benchmarks/rater_api.py --quick    # smoke run (well under a minute)

What it does, each run from scratch:

1. drops and recreates a PostgreSQL database (default `humanbeauty_bench` on 127.0.0.1; the name
   must contain "bench") and runs `manage.py migrate`;
2. seeds it with bulk SQL: one project per size (2,000, 20,000 and 200,000 images by default,
   overlap 3), image rows with fake sha256 sharing one tiny file, and N annotators with tokens;
3. starts `gunicorn config.wsgi:application` (sync workers, 2 x cores by default) on a free
   port of 127.0.0.1 with production-like settings (DEBUG=0, persistent DB connections);
4. runs N concurrent raters, each its own process with its own token and HTTP session, looping
   `GET /api/projects/{id}/next/` -> `POST /api/assignments/{id}/rating/` (12 scores, fresh
   request_id) with no think time, for a fixed duration (and at most a fixed count);
5. prints annotations/s and next/submit latency percentiles for each N on the 20,000-image
   project, the p50 of next per project size, and the ratio to Label Studio's figures on the
   same workload (6.7 annotations/s and next p99 of 1.9 s at 16 raters, from issue 2).

The server is always shut down at the end, also on Ctrl-C or errors. All HTTP traffic goes to
127.0.0.1 only. The benchmark database is left in place for inspection (dropped next run).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import math
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from humanbeauty.standard import DIMENSION_KEYS, LEVEL_MIDPOINTS  # noqa: E402 (pure Python)

DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/humanbeauty_bench"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

# Label Studio on these 2-core machines, PostgreSQL, 4 gunicorn workers, 16 raters (issue 2).
PEER_NAME = "Label Studio"
PEER_ANNOTATIONS_PER_S = 6.7
PEER_NEXT_P99_MS = 1900.0
TARGET_ANNOTATIONS_PER_S = 67.0
TARGET_NEXT_P99_MS = 50.0

SEED_CHUNK = 10_000
HTTP_TIMEOUT_S = 30.0
MAX_ERRORS_PER_RATER = 50
# A 1x1 grey PNG: every seeded image row points at this one file.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c63680000008200813dd0a1b20000000049454e44ae426082"
)


# --- results ----------------------------------------------------------------------------------


@dataclass
class RaterResult:
    next_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    annotations: int = 0
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    exhausted: bool = False
    started: float = 0.0
    finished: float = 0.0
    cpu_s: float = 0.0  # this rater process's own CPU time during the measured window


@dataclass
class RunResult:
    label: str
    raters: int
    images: int
    elapsed_s: float
    annotations: int
    next_ms: list[float]
    submit_ms: list[float]
    statuses: Counter
    errors: list[str]
    exhausted: bool
    cpu_s: dict[str, float] = field(default_factory=dict)  # server / postgres / raters
    # next latencies of each rater's first and last quarter of the run: does next slow down?
    next_first_ms: list[float] = field(default_factory=list)
    next_last_ms: list[float] = field(default_factory=list)
    paced: float = 0.0  # target annotations/s of the whole run; 0 = closed loop

    @property
    def rate(self) -> float:
        return self.annotations / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def other_cores(self) -> float:
        """CPU cores that other programs kept busy during the run (disturbance)."""
        return self.cpu_s.get("other", 0.0) / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(n for code, n in self.statuses.items() if code not in {"200", "201", "204"})


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


# --- one rater (runs in its own process) ------------------------------------------------------


def random_scores(rng: random.Random) -> dict[str, float]:
    return {key: rng.choice(LEVEL_MIDPOINTS) for key in DIMENSION_KEYS}


def rater_main(
    base_url: str,
    token: str,
    project_id: int,
    duration_s: float,
    max_iterations: int,
    warmup: int,
    interval_s: float,
    barrier,
    results,
    index: int,
    raters: int,
) -> None:
    """Loop next -> submit until the time or the count is up; put a RaterResult on `results`.

    With `interval_s` > 0 the rater starts an iteration every `interval_s` seconds (a paced
    load, staggered across raters) instead of right after the previous one (closed loop).
    """
    import requests

    result = RaterResult()
    rng = random.Random(index)
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: traffic stays on 127.0.0.1
    session.headers["Authorization"] = f"Token {token}"
    next_url = f"{base_url}/api/projects/{project_id}/next/"

    def one(record: bool) -> bool:
        """One next -> submit; False when the rater should stop."""
        t = time.perf_counter()
        r = session.get(next_url, timeout=HTTP_TIMEOUT_S)
        dt = (time.perf_counter() - t) * 1000
        if record:
            result.next_ms.append(dt)
            result.statuses[str(r.status_code)] += 1
        if r.status_code == 204:
            result.exhausted = True
            return False
        if r.status_code != 200:
            result.errors.append(f"next {r.status_code}: {r.text[:200]}")
            return len(result.errors) < MAX_ERRORS_PER_RATER
        assignment = r.json()["assignment"]
        body = {"scores": random_scores(rng), "request_id": str(uuid.uuid4())}
        t = time.perf_counter()
        r = session.post(
            f"{base_url}/api/assignments/{assignment}/rating/", json=body, timeout=HTTP_TIMEOUT_S
        )
        dt = (time.perf_counter() - t) * 1000
        if record:
            result.submit_ms.append(dt)
            result.statuses[str(r.status_code)] += 1
        if r.status_code != 201:
            result.errors.append(f"submit {r.status_code}: {r.text[:200]}")
            return len(result.errors) < MAX_ERRORS_PER_RATER
        if record:
            result.annotations += 1
        return True

    try:
        for _ in range(warmup):
            if not one(record=False):
                break
        result.errors.clear()
        barrier.wait(timeout=300)
        cpu0 = time.process_time()
        result.started = time.monotonic()
        deadline = result.started + duration_s
        due = result.started + (interval_s * index / raters if interval_s else 0.0)
        for _ in range(max_iterations):
            if interval_s:
                time.sleep(max(0.0, min(due, deadline) - time.monotonic()))
                due += interval_s
            if time.monotonic() >= deadline or not one(record=True):
                break
        result.finished = time.monotonic()
        result.cpu_s = time.process_time() - cpu0
    except KeyboardInterrupt:
        return
    except Exception as exc:  # reported by the parent, which decides what to do
        result.errors.append(f"{type(exc).__name__}: {exc}")
        result.finished = result.finished or time.monotonic()
        if not result.started:
            barrier.abort()
    finally:
        session.close()
    results.put(result)


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pids() -> list[tuple[int, int, str]]:
    """(pid, ppid, cmdline) of every process we can see."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        out.append((int(entry), ppid, cmd))
    return out


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (all cores, all processes) since boot."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(server_pid: int | None, db_name: str) -> dict[int, tuple[str, float]]:
    """CPU seconds per process of the gunicorn server and of this database's backends.

    Key -1 holds the machine-wide busy time, so that what other programs used shows too.
    """
    snap: dict[int, tuple[str, float]] = {-1: ("machine", machine_busy_s())}
    for pid, ppid, cmd in _pids():
        if server_pid and (pid == server_pid or ppid == server_pid):
            snap[pid] = ("server", _proc_cpu_s(pid))
        elif cmd.startswith("postgres:") and f" {db_name} " in cmd:
            snap[pid] = ("postgres", _proc_cpu_s(pid))
    return snap


class CpuSampler:
    """CPU used by the server, the database backends and the machine while a run lasts.

    Polls /proc twice a second, so that a database connection that closes during the run
    (DB_CONN_MAX_AGE) still counts up to its last sample instead of vanishing.
    """

    def __init__(self, server_pid: int | None, db_name: str, every_s: float = 0.5):
        import threading

        self.server_pid, self.db_name, self.every_s = server_pid, db_name, every_s
        self.first: dict[int, tuple[str, float]] = {}
        self.last: dict[int, tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.first = cpu_snapshot(self.server_pid, self.db_name)
        self.last = dict(self.first)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.last.update(cpu_snapshot(self.server_pid, self.db_name))

    def cancel(self) -> None:
        self._stop.set()

    def stop(self) -> dict[str, float]:
        """CPU seconds by kind ("server", "postgres", "machine") since start()."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if not self.first:
            return {}
        self.last.update(cpu_snapshot(self.server_pid, self.db_name))
        totals: Counter = Counter()
        for pid, (kind, cpu) in self.last.items():
            totals[kind] += cpu - self.first.get(pid, (kind, 0.0))[1]
        return dict(totals)


def wait_until_quiet(max_wait_s: float, busy_cores: float = 0.25) -> float:
    """Wait (at most `max_wait_s`) until other programs leave the CPUs alone; returns the load.

    The benchmark shares the machine's cores with the server and the database, so anything
    else running skews it. Returns the busy cores measured over the last 2-second sample.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        b0, t0 = machine_busy_s(), time.monotonic()
        time.sleep(2.0)
        busy = (machine_busy_s() - b0) / (time.monotonic() - t0)
        if busy <= busy_cores or time.monotonic() >= deadline:
            return busy
        print(f"  waiting: other programs keep {busy:.2f} cores busy", flush=True)


def run_raters(
    base_url: str,
    tokens: list[str],
    project_id: int,
    images: int,
    label: str,
    duration_s: float,
    max_iterations: int,
    warmup: int,
    *,
    paced: float = 0.0,
    server_pid: int | None = None,
    db_name: str = "",
) -> RunResult:
    """Start one process per token, release them together, gather their measurements."""
    import multiprocessing as mp
    import queue as queue_mod
    import threading

    n = len(tokens)
    interval = n / paced if paced else 0.0
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n + 1)  # the raters and this process: CPU accounting starts with them
    results = ctx.Queue()
    procs = [
        ctx.Process(
            target=rater_main,
            args=(base_url, token, project_id, duration_s, max_iterations, warmup, interval),
            kwargs={"barrier": barrier, "results": results, "index": i, "raters": n},
            daemon=True,
        )
        for i, token in enumerate(tokens)
    ]
    gathered: list[RaterResult] = []
    sampler = CpuSampler(server_pid, db_name)
    try:
        for p in procs:
            p.start()
        try:
            barrier.wait(timeout=300)
            sampler.start()
        except threading.BrokenBarrierError:
            pass
        deadline = time.monotonic() + duration_s + 2 * HTTP_TIMEOUT_S + 30
        while len(gathered) < n and time.monotonic() < deadline:
            try:
                gathered.append(results.get(timeout=1.0))
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs) and results.empty():
                    break
        cpu = sampler.stop()
        for p in procs:
            p.join(timeout=10)
    finally:
        sampler.cancel()
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)
    if len(gathered) < n:
        raise RuntimeError(f"{label}: only {len(gathered)} of {n} raters reported back")
    started = [g.started for g in gathered if g.started]
    finished = [g.finished for g in gathered if g.finished]
    elapsed = (max(finished) - min(started)) if started and finished else 0.0
    statuses: Counter = Counter()
    for g in gathered:
        statuses.update(g.statuses)
    cpu["raters"] = sum(g.cpu_s for g in gathered)
    if "machine" in cpu:
        # Everything else the machine did meanwhile (other programs, the kernel, this script).
        cpu["other"] = max(0.0, cpu.pop("machine") - sum(cpu.values()))
    return RunResult(
        label=label,
        raters=n,
        images=images,
        elapsed_s=elapsed,
        annotations=sum(g.annotations for g in gathered),
        next_ms=[x for g in gathered for x in g.next_ms],
        submit_ms=[x for g in gathered for x in g.submit_ms],
        statuses=statuses,
        errors=[e for g in gathered for e in g.errors],
        exhausted=any(g.exhausted for g in gathered),
        cpu_s=cpu,
        paced=paced,
        next_first_ms=[x for g in gathered for x in g.next_ms[: len(g.next_ms) // 4]],
        next_last_ms=[x for g in gathered for x in g.next_ms[len(g.next_ms) * 3 // 4 :]],
    )


# --- database ---------------------------------------------------------------------------------


def check_database_url(url: str) -> tuple[str, str]:
    """(maintenance URL, database name); refuses non-local hosts and non-benchmark names."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise SystemExit(f"--database-url must be a PostgreSQL URL, got {url!r}")
    if (parts.hostname or "127.0.0.1") not in LOCAL_HOSTS:
        raise SystemExit(f"refusing a non-local database host {parts.hostname!r}")
    name = parts.path.lstrip("/")
    if "bench" not in name:
        raise SystemExit(f"refusing to drop database {name!r}: its name must contain 'bench'")
    return urlunsplit(parts._replace(path="/postgres")), name


def recreate_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    maintenance, name = check_database_url(url)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def server_env(database_url: str, media_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DEBUG="0",
        HTTPS="0",
        SECRET_KEY="bench",
        ALLOWED_HOSTS="127.0.0.1",
        DB_CONN_MAX_AGE="60",
        MEDIA_ROOT=str(media_root),
        CELERY_BROKER_URL="",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env.pop(proxy, None)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
    )


@dataclass
class Seeded:
    projects: dict[int, int]  # size -> project id
    tokens: list[str]
    usernames: list[str]


def _insert_columns(model, explicit: dict[str, tuple[str, list]]) -> tuple[str, str, list]:
    """Columns, SELECT expressions and their parameters to INSERT ... SELECT rows of `model`.

    `explicit` maps field names to (SQL expression, parameters); every other column gets the
    model's Python-side default (or now() for auto_now fields), so that columns added to the
    model later need no change here.
    """
    from django.db import connection

    qn = connection.ops.quote_name
    cols, exprs, params = [], [], []
    for f in model._meta.concrete_fields:
        if (f.primary_key and f.name not in explicit) or getattr(f, "generated", False):
            continue
        cols.append(qn(f.column))
        if f.name in explicit:
            expr, p = explicit[f.name]
            exprs.append(expr)
            params += p
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            exprs.append("now()")
        else:
            value = f.get_default()
            if value is None and not f.null:
                raise RuntimeError(f"seeding: no value for {model.__name__}.{f.name}")
            exprs.append("%s")
            params.append(f.get_db_prep_save(value, connection))
    return ", ".join(cols), ", ".join(exprs), params


def seed(sizes: list[int], raters: int, media_root: Path) -> Seeded:
    """Projects of the given sizes (overlap 3), their images and `raters` annotators.

    Images and queue rows go in with one INSERT ... SELECT per chunk; members are added with
    the platform's own service (which also certifies them where there is no qualification
    track); one API token per rater.
    """

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from tqdm import tqdm

    from accounts.services import issue_token
    from annotation import services
    from annotation.models import Project, ProjectImage
    from curation.models import Image, Source
    from humanbeauty.roles import Role

    rel_file = "bench/tiny.png"
    (media_root / "bench").mkdir(parents=True, exist_ok=True)
    (media_root / rel_file).write_bytes(TINY_PNG)

    source = Source.objects.create(name="benchmark", kind="synthetic")
    projects: dict[int, int] = {}
    serial = 0
    for size in sizes:
        project = Project.objects.create(name=f"bench-{size}", overlap=3)
        projects[size] = project.pk
        img_cols, img_exprs, img_params = _insert_columns(
            Image,
            {
                "file": ("%s", [rel_file]),
                "sha256": ("encode(sha256(convert_to('bench-' || g, 'UTF8')), 'hex')", []),
                "width": ("1", []),
                "height": ("1", []),
                "format": ("'PNG'", []),
                "source": ("%s", [source.pk]),
                "original_path": ("'bench/' || g || '.png'", []),
            },
        )
        item_cols, item_exprs, item_params = _insert_columns(
            ProjectImage,
            {
                "project": ("%s", [project.pk]),
                "image": ("img.id", []),
                "target": ("%s", [project.overlap]),
                "completed": ("0", []),
                "leased": ("0", []),
            },
        )
        statement = f"""
            WITH img AS (
                INSERT INTO {Image._meta.db_table} ({img_cols})
                SELECT {img_exprs} FROM generate_series(%s, %s) AS g
                RETURNING id
            )
            INSERT INTO {ProjectImage._meta.db_table} ({item_cols})
            SELECT {item_exprs} FROM img
        """
        with tqdm(total=size, desc=f"seed {size:,} images", unit="img") as bar:
            done = 0
            while done < size:
                n = min(SEED_CHUNK, size - done)
                with transaction.atomic(), connection.cursor() as cur:
                    cur.execute(statement, [*img_params, serial, serial + n - 1, *item_params])
                serial += n
                done += n
                bar.update(n)

    usernames = [f"bench-rater-{i:03d}" for i in range(raters)]
    for pid in tqdm(projects.values(), desc="seed members", unit="project"):
        project = Project.objects.get(pk=pid)
        for u in usernames:
            services.add_member(project, u, Role.ANNOTATOR)
    users = list(get_user_model().objects.filter(username__in=usernames))
    tokens = {u.username: issue_token(u, device="benchmark")[1] for u in users}
    with connection.cursor() as cur:
        cur.execute(f"VACUUM ANALYZE {Image._meta.db_table}")
        cur.execute(f"VACUUM ANALYZE {ProjectImage._meta.db_table}")
        cur.execute("ANALYZE")
    return Seeded(projects, [tokens[u] for u in usernames], usernames)


def explain_next(project_id: int, username: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the next-task row-lock query, as the service issues it.

    Runs the real `services.next_task` once inside a rolled-back transaction to capture its
    SQL, then explains that statement (also rolled back, so no lease is kept).
    """
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from annotation import services
    from annotation.models import Project

    class Rollback(Exception):
        pass

    captured: list[tuple[str, object]] = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    project = Project.objects.get(pk=project_id)
    user = get_user_model().objects.get(username=username)
    try:
        with connection.execute_wrapper(capture), transaction.atomic():
            services.next_task(project, user)
            raise Rollback
    except Rollback:
        pass
    lock_queries = [(s, p) for s, p in captured if "SKIP LOCKED" in s.upper()]
    if not lock_queries:
        return "(no SKIP LOCKED query captured from next_task)"
    sql, params = lock_queries[0]
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            plan = "\n".join(row[0] for row in cur.fetchall())
            raise Rollback
    except Rollback:
        pass
    try:
        shown = connection.ops.compose_sql(sql, params)  # the statement with its values
    except Exception:
        shown = f"{sql}  -- params: {params!r}"
    return f"{shown}\n\n{plan}"


# --- server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn in its own process group, always stopped by `stop()`."""

    def __init__(
        self, env: dict[str, str], workers: int, worker_class: str, threads: int, log: Path
    ):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.workers = workers
        self.cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--threads",
            str(threads),
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            "--error-logfile",
            str(log),
            "--log-level",
            "warning",
        ]
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self, token: str, timeout_s: float = 60.0) -> None:
        import requests

        with open(self.log, "ab") as log:  # Django's own error log goes to stderr
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=ROOT,
                env=self.env,
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        session = requests.Session()
        session.trust_env = False
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"gunicorn exited early:\n{self.log_tail()}")
                try:
                    r = session.get(
                        f"{self.base_url}/api/dimensions/",
                        headers={"Authorization": f"Token {token}"},
                        timeout=15,
                    )
                except requests.RequestException:  # not listening yet, or still booting
                    time.sleep(0.5)
                    continue
                if r.status_code != 200:
                    raise RuntimeError(
                        f"server answered {r.status_code}: {r.text[:300]}\n{self.log_tail()}"
                    )
                self._warm(token)
                return
            raise RuntimeError(f"gunicorn not ready after {timeout_s:.0f} s:\n{self.log_tail()}")
        finally:
            session.close()

    def _warm(self, token: str, rounds: int = 5) -> None:
        """Concurrent requests, so that every worker has loaded the app before timing starts."""
        from concurrent.futures import ThreadPoolExecutor

        import requests

        def get(_: int) -> int:
            with requests.Session() as s:
                s.trust_env = False
                url = f"{self.base_url}/api/projects/"
                return s.get(
                    url, headers={"Authorization": f"Token {token}"}, timeout=30
                ).status_code

        with ThreadPoolExecutor(max_workers=2 * self.workers) as pool:
            for _ in range(rounds):
                list(pool.map(get, range(2 * self.workers)))

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.proc.terminate()  # the master stops its workers gracefully
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own session: gunicorn only
            self.proc.wait(timeout=5)


# --- report ---------------------------------------------------------------------------------


def fmt_ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1f}"


def _table_head(intro: list[str], columns: str) -> list[str]:
    """A table's opening lines: what it shows, its column names and a rule as long."""
    return [*intro, columns, "-" * len(columns)]


def report(throughput: list[RunResult], scan: list[RunResult], header: str) -> str:
    lines = [header, ""]
    lines += _table_head(
        ["Throughput and latency (ms); closed loop = no think time, paced = fixed total rate"],
        f"{'run':<22}{'raters':>7}{'images':>9}{'annot/s':>9}"
        f"{'next p50':>10}{'p95':>8}{'p99':>8}{'submit p50':>12}{'p95':>8}{'p99':>8}"
        f"{'errors':>8}",
    )
    for r in throughput:
        lines.append(
            f"{r.label:<22}{r.raters:>7}{r.images:>9,}{r.rate:>9.1f}"
            f"{fmt_ms(percentile(r.next_ms, 50)):>10}{fmt_ms(percentile(r.next_ms, 95)):>8}"
            f"{fmt_ms(percentile(r.next_ms, 99)):>8}{fmt_ms(percentile(r.submit_ms, 50)):>12}"
            f"{fmt_ms(percentile(r.submit_ms, 95)):>8}{fmt_ms(percentile(r.submit_ms, 99)):>8}"
            f"{r.error_count:>8}"
        )
    lines += _table_head(
        [
            "",
            "CPU time per annotation (ms) by gunicorn, the database's backends and the rater",
            "processes; cores = CPU cores they kept busy; other = cores busy with anything else",
            "(other programs on the machine: a high value means the figures above are "
            "disturbed);",
            "capacity/s = annotations/s all the machine's cores would give at this CPU cost",
        ],
        f"{'run':<22}{'server':>8}{'postgres':>10}{'raters':>8}{'total':>8}{'cores':>7}"
        f"{'other':>7}{'capacity/s':>12}",
    )
    for r in throughput:
        ours = {k: v for k, v in r.cpu_s.items() if k != "other"}
        per = {k: 1000 * v / r.annotations if r.annotations else math.nan for k, v in ours.items()}
        total = sum(ours.values())
        secs = r.elapsed_s or math.nan
        lines.append(
            f"{r.label:<22}{fmt_ms(per.get('server', math.nan)):>8}"
            f"{fmt_ms(per.get('postgres', math.nan)):>10}{fmt_ms(per.get('raters', math.nan)):>8}"
            f"{fmt_ms(1000 * total / r.annotations if r.annotations else math.nan):>8}"
            f"{total / secs:>7.2f}{r.cpu_s.get('other', math.nan) / secs:>7.2f}"
            f"{(os.cpu_count() or 1) * r.annotations / total if total else math.nan:>12.0f}"
        )
    if scan:
        lines += _table_head(
            [
                "",
                "Cost of next vs project size (1 rater, closed loop; p50 of the first and the "
                "last",
                "quarter of the run show whether next slows down as the rater's history grows)",
            ],
            f"{'images':>9}{'next p50':>10}{'p95':>8}{'p99':>8}{'first 1/4':>11}"
            f"{'last 1/4':>10}{'samples':>9}{'other':>7}",
        )
        for r in scan:
            lines.append(
                f"{r.images:>9,}{fmt_ms(percentile(r.next_ms, 50)):>10}"
                f"{fmt_ms(percentile(r.next_ms, 95)):>8}{fmt_ms(percentile(r.next_ms, 99)):>8}"
                f"{fmt_ms(percentile(r.next_first_ms, 50)):>11}"
                f"{fmt_ms(percentile(r.next_last_ms, 50)):>10}{len(r.next_ms):>9}"
                f"{r.other_cores:>7.2f}"
            )
        small, large = scan[0], scan[-1]
        p_small, p_large = percentile(small.next_ms, 50), percentile(large.next_ms, 50)
        if len(scan) > 1 and p_small > 0 and not math.isnan(p_large):
            lines.append(
                f"next p50 at {large.images:,} / at {small.images:,} images: "
                f"{p_large / p_small:.2f}x (for {large.images / small.images:g}x the images)"
            )
    closed = [r for r in throughput if not r.paced]
    top = max(closed, key=lambda r: r.raters, default=None)
    if top is not None:
        p99 = percentile(top.next_ms, 99)
        lines += [
            "",
            f"Against {PEER_NAME} ({PEER_ANNOTATIONS_PER_S} annotations/s, next p99 "
            f"{PEER_NEXT_P99_MS / 1000:.1f} s at 16 raters, closed loop, same machines):",
            f"  annotations/s at {top.raters} raters: {top.rate:7.1f}  = "
            f"{top.rate / PEER_ANNOTATIONS_PER_S:.1f}x {PEER_NAME}",
            f"  next p99 at {top.raters} raters:  {fmt_ms(p99):>7} ms = "
            + (f"{PEER_NEXT_P99_MS / p99:.1f}x lower than {PEER_NAME}" if p99 > 0 else "-"),
            f"Targets (>= {TARGET_ANNOTATIONS_PER_S:.0f} annotations/s, "
            f"next p99 < {TARGET_NEXT_P99_MS:.0f} ms):",
            f"  closed loop, {top.raters} raters: annotations/s "
            f"{'PASS' if top.rate >= TARGET_ANNOTATIONS_PER_S else 'MISS'}, next p99 "
            f"{'PASS' if p99 < TARGET_NEXT_P99_MS else 'MISS'}",
        ]
        for r in throughput:
            if r.paced:
                rp99 = percentile(r.next_ms, 99)
                lines.append(
                    f"  paced at {r.paced:g}/s, {r.raters} raters: achieved {r.rate:.1f}/s "
                    f"{'PASS' if r.rate >= 0.97 * TARGET_ANNOTATIONS_PER_S else 'MISS'}, "
                    f"next p99 {'PASS' if rp99 < TARGET_NEXT_P99_MS else 'MISS'}"
                )
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------


def int_list(text: str) -> list[int]:
    try:
        values = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,16, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("expected positive integers")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    cpus = os.cpu_count() or 1
    p = argparse.ArgumentParser(
        description="Benchmark the rater API (next -> submit) against a real gunicorn server."
    )
    p.add_argument("--quick", action="store_true", help="small sizes, short runs: a smoke test")
    p.add_argument("--duration", type=float, help="seconds per throughput run (default 30)")
    p.add_argument("--scan-duration", type=float, help="seconds per size-scan run (default 10)")
    p.add_argument("--raters", type=int_list, help="rater counts to run (default 1,16)")
    p.add_argument(
        "--sizes", type=int_list, help="project sizes for the next-cost scan (2000,20000,200000)"
    )
    p.add_argument("--images", type=int, help="images in the throughput project (default 20000)")
    p.add_argument(
        "--paced-rate",
        type=float,
        default=TARGET_ANNOTATIONS_PER_S,
        help="also run the largest rater count paced at this many annotations/s in total "
        f"(default {TARGET_ANNOTATIONS_PER_S:g}, the target; 0 to skip)",
    )
    p.add_argument("--workers", type=int, default=2 * cpus, help=f"gunicorn workers ({2 * cpus})")
    p.add_argument("--worker-class", default="sync", help="gunicorn worker class (sync)")
    p.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (1)")
    p.add_argument(
        "--max-iterations", type=int, default=100_000, help="cap on next->submit per rater"
    )
    p.add_argument("--warmup", type=int, default=10, help="untimed iterations per rater first")
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB_URL),
        help="PostgreSQL database to drop and recreate (local; name must contain 'bench')",
    )
    p.add_argument(
        "--explain", action="store_true", help="print EXPLAIN ANALYZE of next's queue query"
    )
    p.add_argument(
        "--max-other",
        type=float,
        default=0.25,
        metavar="CORES",
        help="a run during which other programs kept more CPU cores busy than this is repeated",
    )
    p.add_argument(
        "--retries", type=int, default=2, help="repeats of a disturbed run, cleanest kept (2)"
    )
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other programs to leave the CPUs idle",
    )
    args = p.parse_args(argv)
    quick = args.quick
    args.duration = args.duration or (3.0 if quick else 30.0)
    args.scan_duration = args.scan_duration or (2.0 if quick else 10.0)
    args.raters = args.raters or [1, 16]
    default_sizes = [1_000, 2_000, 5_000] if quick else [2_000, 20_000, 200_000]
    args.sizes = sorted(args.sizes or default_sizes)
    args.images = args.images or (2_000 if quick else 20_000)
    if args.duration <= 0 or args.scan_duration <= 0 or args.workers < 1 or args.paced_rate < 0:
        p.error("durations, --workers and --paced-rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _, db_name = check_database_url(args.database_url)
    # Two runs on one database would drop it under each other: one at a time.
    lock = open(Path(tempfile.gettempdir()) / f"hb-bench-{db_name}.lock", "w")  # noqa: SIM115 (held until exit)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"another benchmark is running on database {db_name!r}") from None

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)

    media_root = Path(tempfile.mkdtemp(prefix="hb-bench-media-"))
    env = server_env(args.database_url, media_root)
    server: Server | None = None
    load_before = os.getloadavg()[0]
    try:
        t0 = time.monotonic()
        print(f"database: recreating {db_name}", flush=True)
        recreate_database(args.database_url)
        migrate(env)
        for key in (
            "DATABASE_URL",
            "DEBUG",
            "HTTPS",
            "SECRET_KEY",
            "MEDIA_ROOT",
            "CELERY_BROKER_URL",
            "DJANGO_SETTINGS_MODULE",
        ):
            os.environ[key] = env[key]
        import django

        django.setup()
        from django.db import connection, connections

        sizes = sorted(set(args.sizes) | {args.images})
        seeded = seed(sizes, max(args.raters), media_root)
        with connection.cursor() as cur:
            cur.execute("SHOW server_version")
            pg_version = cur.fetchone()[0]
        connections.close_all()
        print(f"setup: {time.monotonic() - t0:.1f} s", flush=True)

        server = Server(
            env, args.workers, args.worker_class, args.threads, media_root / "gunicorn.log"
        )
        server.start(seeded.tokens[0])
        print(f"server: gunicorn {args.workers} {args.worker_class} workers at {server.base_url}")
        common = {
            "max_iterations": args.max_iterations,
            "warmup": args.warmup,
            "server_pid": server.proc.pid,
            "db_name": db_name,
        }

        def measured(label: str, run) -> RunResult:
            """Run; if other programs disturbed it, repeat (--retries) and keep the cleanest."""
            best: RunResult | None = None
            for attempt in range(1 + args.retries):
                if args.wait_idle:
                    wait_until_quiet(args.wait_idle)
                print(
                    f"run: {label}" + (f" (attempt {attempt + 1})" if attempt else ""), flush=True
                )
                result = run()
                if best is None or result.other_cores < best.other_cores:
                    best = result
                if result.other_cores <= args.max_other:
                    break
                print(f"  disturbed: other programs kept {result.other_cores:.2f} cores busy")
            return best

        scan: list[RunResult] = []
        for size in args.sizes:
            scan.append(
                measured(
                    f"next cost at {size:,} images, 1 rater, {args.scan_duration:g} s",
                    lambda size=size: run_raters(
                        server.base_url,
                        seeded.tokens[:1],
                        seeded.projects[size],
                        size,
                        f"size {size:,}",
                        args.scan_duration,
                        **common,
                    ),
                )
            )
        plan = [(n, 0.0) for n in args.raters]
        if args.paced_rate:
            plan.append((max(args.raters), args.paced_rate))
        throughput: list[RunResult] = []
        for n, paced in plan:
            label = f"{n} rater{'s' if n > 1 else ''}" + (f" @{paced:g}/s" if paced else "")
            throughput.append(
                measured(
                    f"{label}, {args.images:,} images, {args.duration:g} s",
                    lambda n=n, paced=paced, label=label: run_raters(
                        server.base_url,
                        seeded.tokens[:n],
                        seeded.projects[args.images],
                        args.images,
                        label,
                        args.duration,
                        paced=paced,
                        **common,
                    ),
                )
            )

        threads = f" x {args.threads} threads" if args.threads > 1 else ""
        header = (
            f"HumanBeauty rater API benchmark: gunicorn {args.workers} {args.worker_class} "
            f"workers{threads}, PostgreSQL {pg_version.split()[0]}, {os.cpu_count()} CPUs "
            f"({platform.machine()}, load {load_before:.2f} before), overlap 3, "
            f"{args.duration:g} s per run" + (" [--quick]" if args.quick else "")
        )
        print()
        print(report(throughput, scan, header))
        problems = [r for r in [*scan, *throughput] if r.error_count or r.exhausted]
        for r in problems:
            print(f"\n{r.label}: statuses {dict(r.statuses)}; project exhausted: {r.exhausted}")
            for e in r.errors[:5]:
                print(f"  {e}")
        if args.explain:
            for size in args.sizes:
                print(f"\nEXPLAIN ANALYZE of next's queue query at {size:,} images (rater 0):")
                print(explain_next(seeded.projects[size], seeded.usernames[0]))
        return 1 if problems else 0
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C or SIGTERM must not cut the cleanup short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if server is not None:
            server.stop()
        shutil.rmtree(media_root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
