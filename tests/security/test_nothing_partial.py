"""Nothing partial (#11): a refused request leaves the platform as it found it.

Every write operation of the API (POST/PUT/PATCH/DELETE, read from the OpenAPI schema at
/api/schema/) is sent requests that must be refused: without credentials or with dead ones,
from a session without its CSRF token, from every role that may not, with malformed bodies,
out-of-range numbers, unknown ids, paths outside the roots, and (uploads) corrupt or oversized
files. Each answer must be a 4xx, and around each request the whole state is compared:

* every table's rows (count and a digest of the contents: an in-place update counts too),
* every file and folder under MEDIA_ROOT, RELEASE_ROOT, IMPORT_ROOTS, MODEL_ROOTS, the training
  runs folder, the upload temp folder and a folder outside all roots (name, size, mtime),
* the Celery broker's queues (with a broker, as in `make test`): no task queued.

The only change a refusal may leave is the login guard's count of failed logins (django-axes:
that count is the protection), and only on a failed login. Each operation's "valid" body is
also sent once by a user who may (where that is cheap), so the refusals above are known to be
refusals of the request, not of a body that could never pass.
"""

from __future__ import annotations

import functools
import io
import json
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import full_scores, image_bytes, write_image

# The sweep runs in a transaction rolled back after each test (fast); each request's on-commit
# callbacks are run as a commit would (`captured`), so a task it queued reaches the broker.
# `test_refusals_commit_nothing_either` sends the refusals again with real commits.
pytestmark = pytest.mark.django_db

HUGE = 99999999999999999999  # past a bigint: matches \d+, fits no id column
MISSING = 987654
# The only tables a refused request may change, and only where a case says so.
LOGIN_GUARD = frozenset({"axes.AccessAttempt"})


# --- the state around a request ---------------------------------------------------------------


def _tables() -> dict[str, str]:
    """db_table -> model label, for every concrete table (auto-created m2m tables included)."""
    tables: dict[str, str] = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        tables.setdefault(meta.db_table, meta.label)
    return tables


def db_rows() -> dict[str, tuple[int, str]]:
    """Per model: (row count, digest of every row's contents), in one query."""
    qn = connection.ops.quote_name
    tables = _tables()
    parts = [
        f"SELECT %s, count(*), md5(coalesce(string_agg(md5(t::text), '' ORDER BY md5(t::text)),"
        f" '')) FROM {qn(table)} AS t"
        for table in tables
    ]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), list(tables.values()))
        return {label: (count, digest) for label, count, digest in cursor.fetchall()}


def files_in(roots: list[Path]) -> dict[str, tuple[str, int, int]]:
    """Every file and folder under the roots: kind, size and mtime (folders: their names)."""
    out: dict[str, tuple[str, int, int]] = {}
    for root in roots:
        if not root.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames:
                out[os.path.join(dirpath, name) + "/"] = ("dir", 0, 0)
            for name in filenames:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                kind = "link" if stat.S_ISLNK(st.st_mode) else "file"
                out[path] = (kind, st.st_size, st.st_mtime_ns)
    return out


@functools.cache
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url)


def broker_queues() -> dict[bytes, int]:
    """The broker's lists, hashes and sorted sets (queues, unacked) with their sizes."""
    if not settings.CELERY_BROKER_URL:
        return {}  # tasks run in-process: whatever they wrote is in the tables
    flat = _redis(settings.CELERY_BROKER_URL).eval(QUEUE_SIZES, 0)
    return dict(zip(flat[::2], flat[1::2], strict=True))


# Every list, hash and sorted set of the broker's database with its size, in one round trip.
QUEUE_SIZES = """
local out = {}
local size = {list = 'LLEN', hash = 'HLEN', zset = 'ZCARD'}
for _, key in ipairs(redis.call('KEYS', '*')) do
  local command = size[redis.call('TYPE', key)['ok']]
  if command then
    table.insert(out, key)
    table.insert(out, redis.call(command, key))
  end
end
return out
"""


@dataclass
class State:
    rows: dict[str, tuple[int, str]]
    files: dict[str, tuple[str, int, int]]
    queues: dict[bytes, int]

    @classmethod
    def now(cls, roots: list[Path]) -> State:
        return cls(db_rows(), files_in(roots), broker_queues())

    def changes(self, after: State, allowed: frozenset[str] = frozenset()) -> list[str]:
        out = []
        for label, (count, digest) in self.rows.items():
            new_count, new_digest = after.rows[label]
            if label in allowed:
                continue
            if new_count != count:
                out.append(f"rows of {label}: {count} -> {new_count}")
            elif new_digest != digest:
                out.append(f"rows of {label} changed in place ({count} rows)")
        for path in sorted(set(self.files) | set(after.files)):
            if self.files.get(path) != after.files.get(path):
                out.append(f"file {path}: {self.files.get(path)} -> {after.files.get(path)}")
        for key in sorted(set(self.queues) | set(after.queues)):
            if self.queues.get(key, 0) != after.queues.get(key, 0):
                out.append(f"broker {key!r}: {self.queues.get(key, 0)} -> {after.queues.get(key)}")
        return out


# --- the world the requests are sent into -----------------------------------------------------


USERS = ("root", "ada", "cora", "remy", "rita", "alice", "bob", "otto")
PASSWORD = "pw-123456-long"


@dataclass
class World:
    """Users of every role, a project with leases, a review, a source with a finished and a
    queued filter job, a ready release, a registered model, scoring jobs and training runs,
    takedown requests in every state with a queued and a finished removal, and real files in
    every root (see `world`)."""

    root: Path
    capture: Callable[..., Any]  # django_capture_on_commit_callbacks
    users: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)

    @property
    def import_root(self) -> Path:
        return self.root / "imports"

    @property
    def model_root(self) -> Path:
        return self.root / "models"

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    def roots(self) -> list[Path]:
        return [
            Path(settings.MEDIA_ROOT),
            Path(settings.RELEASE_ROOT),
            *map(Path, settings.IMPORT_ROOTS),
            *map(Path, settings.MODEL_ROOTS),
            Path(settings.TRAINING_RUNS_DIR),
            Path(settings.FILE_UPLOAD_TEMP_DIR),
            self.outside,
        ]

    def client(self, user: str | None, *, token: str | None = None) -> APIClient:
        client = APIClient()
        client.raise_request_exception = False  # a crash is an answer to report, not to raise
        key = token if token is not None else (self.tokens.get(user) if user else None)
        if key:
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client


@pytest.fixture
def world(settings, tmp_path, django_capture_on_commit_callbacks) -> Iterator[World]:
    from accounts.models import ApiToken
    from accounts.services import issue_token
    from annotation import services as annotation
    from annotation.models import ReviewItem
    from annotation.services.members import create_invitation
    from curation.models import Decision, FilterJob, Source, SourceImport
    from curation.services.images import register_image
    from modeling.models import ModelVersion, Release, ScoringJob, TrainingRun

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    world = World(root=tmp_path, capture=django_capture_on_commit_callbacks)
    for name in ("imports", "models", "runs", "releases", "uploads", "outside"):
        (tmp_path / name).mkdir()
    settings.IMPORT_ROOTS = [world.import_root.resolve()]
    settings.MODEL_ROOTS = [world.model_root.resolve(), (tmp_path / "runs").resolve()]
    settings.TRAINING_RUNS_DIR = (tmp_path / "runs").resolve()
    settings.RELEASE_ROOT = (tmp_path / "releases").resolve()
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "uploads")
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1_000  # bigger uploads go through a temp file
    settings.CLIP_CHECKPOINT = ""
    settings.TAKEDOWN_FACE_MODEL = ""  # matching by face: see test_a_refused_match_by_face_...
    settings.IMPORT_WAIT_SECONDS = 1

    # Files in every root, and outside them (with a link from inside pointing out).
    (world.outside / "secret.csv").write_text("path,score\nsecret.jpg,5\n")
    write_image(world.outside / "secret.jpg", seed=99)
    photos = world.import_root / "photos"
    paths = [write_image(photos / f"p{i}.jpg", seed=1000 + i) for i in range(4)]
    (world.import_root / "manifest.csv").write_text(
        "path,score\n" + "".join(f"photos/{p.name},{i + 3}\n" for i, p in enumerate(paths))
    )
    (world.import_root / "link.csv").symlink_to(world.outside / "secret.csv")
    (world.import_root / "empty").mkdir()
    (world.model_root / "empty-model").mkdir()
    (world.model_root / "mv1").mkdir()
    (world.model_root / "mv1" / "config.json").write_text("{}")

    User = get_user_model()
    source = Source.objects.create(name="set1", kind="manifest", score_min=1, score_max=10)
    images = []
    for i, path in enumerate(paths):
        with path.open("rb") as fh:
            image, _ = register_image(fh, source=source, original_path=f"photos/{path.name}")
        images.append(image)
        source.items.create(path=f"photos/{path.name}", raw_score=i + 3, score=i / 10,
                            image=image, linked_at=timezone.now())
    empty_source = Source.objects.create(name="no-items", kind="manifest")
    project, _ = annotation.get_or_create_project("P", overlap=2)
    annotation.add_images(project, images[:3])
    other, _ = annotation.get_or_create_project("Q", overlap=1)
    annotation.add_images(other, images[3:])
    for name, role in (("cora", "curator"), ("rita", "reviewer"), ("alice", "annotator"),
                       ("bob", "annotator")):
        annotation.add_member(project, name, role)
    annotation.add_member(other, "otto_q", "annotator")
    User.objects.create_superuser("root", password=PASSWORD)
    remy = User.objects.create_user("remy")
    remy.groups.add(Group.objects.get_or_create(name="researcher")[0])
    User.objects.create_user("otto")
    # A platform admin by the group alone (root is a superuser, who holds every role anyway).
    ada = User.objects.create_user("ada")
    ada.groups.add(Group.objects.get_or_create(name="admin")[0])
    alice = User.objects.get(username="alice")
    alice.set_password(PASSWORD)
    alice.save()
    world.users = {u.username: u for u in User.objects.all()}
    invitation, invitation_token = create_invitation(project, "annotator",
                                                     actor=world.users["root"])
    lease_a = annotation.next_task(project.pk, world.users["alice"])
    lease_b = annotation.next_task(project.pk, world.users["bob"])
    review = ReviewItem.objects.create(project=project, image=images[0], reasons=["disagreement"])
    leased = {lease_a.image_id, lease_b.image_id}
    free_image = next(i for i in images[:3] if i.pk not in leased)  # may become a reference

    done_job = FilterJob.objects.create(source=source, status="done", config={},
                                        finished_at=timezone.now())
    decision = None
    for item in source.items.order_by("pk"):
        d = Decision.objects.create(job=done_job, item=item, decision="accepted", reasons=[])
        decision = decision or d
    queued_job = FilterJob.objects.create(source=source, status="queued", config={})

    release_dir = settings.RELEASE_ROOT / "r1"
    release_dir.mkdir()
    (release_dir / "manifest.jsonl").write_text("{}\n")
    release = Release.objects.create(name="r", version="1", status="ready",
                                     out_dir=str(release_dir), config={})
    building = Release.objects.create(name="r", version="2", status="building",
                                      out_dir=str(settings.RELEASE_ROOT / "r2"), config={})
    (settings.RELEASE_ROOT / "r2").mkdir()
    (settings.RELEASE_ROOT / "r2" / "part.jsonl").write_text("{}\n")
    queued_import = SourceImport.objects.create(kind="manifest", name="later",
                                                path=str(world.import_root / "manifest.csv"))
    done_import = SourceImport.objects.create(kind="manifest", name="set1", source=source,
                                              path=str(world.import_root / "manifest.csv"),
                                              status="done", finished_at=timezone.now())
    model = ModelVersion.objects.create(version="mv1", backbone="tiny",
                                        checkpoint_path=str(world.model_root / "mv1"))
    ModelVersion.objects.create(version="gone", backbone="tiny",
                                checkpoint_path=str(world.model_root / "no-such-dir"))
    queued_scoring = ScoringJob.objects.create(scope="pool", model_version=model,
                                               progress={"done": 0, "total": 4, "failed": 0})
    done_scoring = ScoringJob.objects.create(scope="pool", model_version=model,
                                             status="done", finished_at=timezone.now())
    queued_run = TrainingRun.objects.create(data_dir=str(world.import_root), backbone="tiny")
    done_run = TrainingRun.objects.create(data_dir=str(world.import_root), backbone="tiny",
                                          status="done", finished_at=timezone.now())

    takedowns = _takedown_world(images, world.users["ada"])

    for name in USERS:
        token, key = issue_token(world.users[name], device="sweep")
        world.tokens[name] = key
        world.ids[f"token:{name}"] = token.pk
    # Touched now, so authenticating does not write last_used_at during the sweep.
    ApiToken.objects.update(last_used_at=timezone.now())
    revoked, world.tokens["revoked"] = issue_token(world.users["root"], device="old")
    revoked.revoked_at = timezone.now()
    revoked.save()
    expired, world.tokens["expired"] = issue_token(world.users["root"], device="old")
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now())

    world.ids.update(
        project=project.pk, other_project=other.pk, lease_a=lease_a.pk, lease_b=lease_b.pk,
        review=review.pk, source=source.pk, empty_source=empty_source.pk, done_job=done_job.pk,
        queued_job=queued_job.pk, decision=decision.pk, release=release.pk,
        building=building.pk, image=images[0].pk, other_image=images[3].pk,
        free_image=free_image.pk, leased_image=lease_a.image_id,
        queued_scoring=queued_scoring.pk, done_scoring=done_scoring.pk,
        queued_run=queued_run.pk, done_run=done_run.pk, queued_import=queued_import.pk,
        done_import=done_import.pk, invitation=invitation.pk,
        invitation_token=invitation_token, **takedowns,
    )
    yield world
    if settings.CELERY_BROKER_URL:
        from config.celery import app

        app.control.purge()  # what the positive controls queued: no worker takes it here


def _takedown_world(images: list, admin: Any) -> dict[str, int]:
    """Takedown requests in each state an action may meet: open (naming an image), naming
    nothing, matched with a pending match, decided (a match confirmed), declined (its only
    match rejected), rejected, one whose removal is queued and one removed (its removal done).
    Filed, matched and decided through the services, as the API does."""
    from rights import services as rights
    from rights.models import Removal, RequestStatus, TakedownRequest

    def filed(person: str, **names: Any) -> Any:
        return rights.file_request(person=person, contact=f"{person.lower()}@example.org",
                                   reason="photos of me without my consent", user=admin,
                                   **names)

    def matched(person: str, image: Any, decision: str | None = None) -> tuple[Any, Any]:
        request = filed(person, image_ids=[image.pk])
        match = next(m for m in rights.find_matches(request, user=admin)
                     if m.image_ref == image.pk)
        if decision:
            rights.decide_matches(request, [{"match": match.pk, "decision": decision}],
                                  user=admin)
        return request, match

    open_request = filed("Olive", image_ids=[images[1].pk],
                         file_names=["p1.jpg"])
    bare = filed("Nadia")  # names nothing, has no photos yet
    pending, match = matched("Mona", images[2])
    decided, decided_match = matched("Dora", images[3], "confirmed")
    declined, _ = matched("Dina", images[0], "rejected")
    rejected = filed("Rhea", image_ids=[images[1].pk])
    rights.reject_request(rejected, why="not a photo of her", user=admin)
    removing = TakedownRequest.objects.create(person="Cleo", contact="c@example.org",
                                              reason="mine", status=RequestStatus.CONFIRMED)
    queued_removal = Removal.objects.create(request=removing, progress={"done": 0, "total": 1})
    removed = TakedownRequest.objects.create(person="Gwen", contact="g@example.org",
                                             reason="mine", status=RequestStatus.REMOVED)
    done_removal = Removal.objects.create(request=removed, status="done",
                                          progress={"done": 1, "total": 1},
                                          finished_at=timezone.now())
    return {
        "takedown_open": open_request.pk, "takedown_bare": bare.pk,
        "takedown_matched": pending.pk, "match": match.pk,
        "takedown_decided": decided.pk, "decided_match": decided_match.pk,
        "takedown_declined": declined.pk, "takedown_rejected": rejected.pk,
        "takedown_removing": removing.pk, "takedown_removed": removed.pk,
        "queued_removal": queued_removal.pk, "done_removal": done_removal.pk,
    }


# --- requests ---------------------------------------------------------------------------------


@dataclass
class Req:
    """One request: `data` is a dict (sent as JSON, or multipart when it holds a file), a str
    (sent raw with `content_type`) or None."""

    label: str
    user: str | None
    url: str
    data: Any = None
    method: str = "post"
    content_type: str = "application/json"
    statuses: tuple[int, ...] = ()  # the exact answers expected, else any 4xx
    allowed: frozenset[str] = frozenset()  # tables this refusal may change
    token: str | None = None
    client: Any = None  # a prepared client (a session), else one for `user` / `token`

    def send(self, world: World):
        client = self.client or world.client(self.user, token=self.token)
        call = getattr(client, self.method)
        if self.data is None:
            return call(self.url)
        if isinstance(self.data, str | bytes):
            return call(self.url, self.data, content_type=self.content_type)
        if any(_is_upload(v) for v in self.data.values()):
            return call(self.url, self.data, format="multipart")
        return call(self.url, self.data, format="json")


def _is_upload(value: Any) -> bool:
    """A file, or a list of files (sent as one multipart field repeated)."""
    if isinstance(value, list):
        return bool(value) and all(isinstance(v, SimpleUploadedFile) for v in value)
    return isinstance(value, SimpleUploadedFile)


def check_refused(world: World, reqs: list[Req]) -> list[str]:
    """Send each request; the problems: an answer that is no refusal, or any change."""
    problems = []
    roots = world.roots()
    for req in reqs:
        before = State.now(roots)
        with world.capture(execute=True) as callbacks:
            response = req.send(world)
        after = State.now(roots)
        code = response.status_code
        expected = code in req.statuses if req.statuses else 400 <= code < 500
        where = f"[{req.label}] {req.method.upper()} {req.url} as {req.user}"
        if not expected:
            body = getattr(response, "content", b"")[:300]
            crash = getattr(response, "exc_info", None)
            problems.append(f"{where}: answered {code} {body!r}"
                            + (f" ({crash[0].__name__}: {crash[1]})" if crash else ""))
        problems += [f"{where}: {change}" for change in before.changes(after, req.allowed)]
        if callbacks:
            problems.append(f"{where}: left {len(callbacks)} on-commit callback(s): {callbacks}")
    return problems


# --- uploads --------------------------------------------------------------------------------


def png(seed: int = 1, size=(64, 48)) -> bytes:
    return image_bytes(size=size, seed=seed, fmt="PNG")


def upload(name: str, data: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def flat_png(size: tuple[int, int]) -> bytes:
    """A one-colour image: many pixels in very few bytes (the shape of a decompression bomb)."""
    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.new("RGB", size, (200, 120, 90)).save(buf, format="PNG")
    return buf.getvalue()


def bad_crc_png() -> bytes:
    data = bytearray(png(seed=7))
    at = data.index(b"IDAT") + 8
    data[at] ^= 0xFF  # one bit of the compressed pixels: the chunk's CRC no longer matches
    return bytes(data)


def corrupt_image_files(field_name: str) -> list[tuple[str, dict]]:
    """Upload bodies no image endpoint may store: broken files, a bomb, an oversized file."""
    return [
        ("text as jpg", {field_name: upload("a.jpg", b"not an image at all", "image/jpeg")}),
        ("empty file", {field_name: upload("e.png", b"")}),
        ("truncated png", {field_name: upload("t.png", png(seed=3)[:300])}),
        ("png with a bad CRC", {field_name: upload("c.png", bad_crc_png())}),
        ("html named png", {field_name: upload("x.png", b"<html><script>1</script></html>")}),
        ("gzip named jpg", {field_name: upload("z.jpg", b"\x1f\x8b\x08\x00" + b"\x00" * 64)}),
    ]


def bomb_and_oversized(field_name: str) -> list[tuple[str, dict]]:
    """Under the fixture's limits (set by `tight_limits`): more pixels than allowed, more bytes."""
    return [
        ("decompression bomb", {field_name: upload("bomb.png", flat_png((300, 300)))}),
        ("over MAX_UPLOAD_BYTES", {field_name: upload("big.png", png(seed=6, size=(80, 80)))}),
    ]


@pytest.fixture
def tight_limits(settings):
    settings.MAX_IMAGE_PIXELS = 250 * 250  # a 300x300 image is a bomb here
    settings.MAX_UPLOAD_BYTES = 15_000  # an 80x80 noise PNG (~19 kB) is too big


def reference_csv(rows: list[str]) -> SimpleUploadedFile:
    from humanbeauty.standard import DIMENSION_KEYS

    header = "image," + ",".join(DIMENSION_KEYS)
    return SimpleUploadedFile("refs.csv", ("\n".join([header, *rows]) + "\n").encode(),
                              content_type="text/csv")


def score_row(image: Any, value: str = "0.5") -> str:
    from humanbeauty.standard import DIMENSION_KEYS

    return f"{image}," + ",".join(value for _ in DIMENSION_KEYS)


# --- the operations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One write operation of the schema: its URL in the world, who may call it, a body they
    could send, who must be refused it, and the refusals of its input."""

    method: str
    path: str  # its route, "{id}" standing for the id (and "{username}" for a rater's name)
    allowed: str | None  # a user who may (the refusals of input are sent as them)
    refused: tuple[str, ...]  # users who must be refused with 403 or 404
    # The world id that fills {id} ({username} is alice): `url` and `url_ids` are the path
    # filled; without it, and without {id}, `url` is the path itself.
    id_of: str | None = None
    url: Callable[[World], str] | None = None
    valid: Callable[[World], Any] = lambda w: None
    bad: Callable[[World], list[tuple[str, Any] | Req]] = lambda w: []
    success: tuple[int, ...] = ()  # the valid body's answer as `allowed` (empty: not sent)
    url_ids: Callable[[World, Any], str] | None = None  # the URL with another id
    json_body: bool = True  # takes a JSON body (gets the malformed-JSON cases)
    needs_auth: bool = True

    def __post_init__(self) -> None:
        if self.id_of is not None:
            key = self.id_of
            object.__setattr__(self, "url", lambda w: self.with_id(w.ids[key]))
            object.__setattr__(self, "url_ids", lambda w, i: self.with_id(i))
        elif self.url is None:
            assert "{" not in self.path, f"{self.path}: say which id fills it (id_of) or give url"
            object.__setattr__(self, "url", lambda w: self.path)

    def with_id(self, value: Any) -> str:
        return self.path.format(id=value, username="alice")

    def bad_requests(self, world: World) -> list[Req]:
        out = []
        for case in self.bad(world):
            if isinstance(case, Req):
                out.append(case)
            else:
                label, data = case
                out.append(Req(label, self.allowed, self.url(world), data, self.method))
        return out


def _rating(w: World) -> dict:
    return {"scores": full_scores(), "request_id": str(uuid.uuid4())}


def _uuid() -> str:
    return str(uuid.uuid4())


def cancel_op(path: str, queued: str, allowed: str, refused: tuple[str, ...], *,
              ended: tuple[str, str]) -> Op:
    """A cancel endpoint: `allowed` cancels the world's `queued` object (200); `ended` is
    (what it is, its world id) for one that already ended, refused with a 409."""
    label, ended_id = ended
    return Op(
        "post", path, id_of=queued, allowed=allowed, refused=refused, json_body=False,
        success=(200,),
        bad=lambda w: [Req(label, allowed, path.format(id=w.ids[ended_id]), statuses=(409,))],
    )


MANAGERS_REFUSED = ("alice", "bob", "cora", "remy", "otto")
CURATION_REFUSED = ("alice", "bob", "rita", "remy", "otto")
RESEARCH_REFUSED = ("alice", "bob", "rita", "cora", "otto")

OPS: list[Op] = [
    Op(
        "post", "/api/assignments/{id}/rating/", id_of="lease_a",
        allowed="alice", refused=("bob", "rita", "cora", "remy", "otto", "root"),
        valid=_rating, success=(201,),
        bad=lambda w: [
            ("empty object", {}),
            ("no request_id", {"scores": full_scores()}),
            ("no scores", {"request_id": _uuid()}),
            ("eleven scores", {"scores": dict(list(full_scores().items())[:11]),
                               "request_id": _uuid()}),
            ("an unknown dimension", {"scores": {**full_scores(), "charm": 0.5},
                                      "request_id": _uuid()}),
            ("score 1.5", {"scores": full_scores(**{next(iter(full_scores())): 1.5}),
                           "request_id": _uuid()}),
            ("score -0.01", {"scores": full_scores(**{next(iter(full_scores())): -0.01}),
                             "request_id": _uuid()}),
            ("score 'high'", {"scores": full_scores(**{next(iter(full_scores())): "high"}),
                              "request_id": _uuid()}),
            ("score a list", {"scores": full_scores(**{next(iter(full_scores())): [0.5]}),
                              "request_id": _uuid()}),
            ("scores a list", {"scores": list(full_scores().values()), "request_id": _uuid()}),
            ("request_id not a uuid", {"scores": full_scores(), "request_id": "abc"}),
            ("time_spent_ms -1", {**_rating(w), "time_spent_ms": -1}),
            ("time_spent_ms over a day", {**_rating(w), "time_spent_ms": 86_400_001}),
            ("time_spent_ms 2**63", {**_rating(w), "time_spent_ms": 2**63}),
            Req("someone else's lease", "alice", f"/api/assignments/{w.ids['lease_b']}/rating/",
                _rating(w)),
        ],
    ),
    Op(
        "post", "/api/assignments/{id}/skip/", id_of="lease_a",
        allowed="alice", refused=("bob", "rita", "cora", "remy", "otto", "root"),
        valid=lambda w: {"reason": "skip"}, success=(201,),
        bad=lambda w: [
            ("no reason", {}),
            ("unknown reason", {"reason": "boring"}),
            ("reason a number", {"reason": 3}),
            ("text over 2000", {"reason": "other", "text": "x" * 2001}),
            Req("someone else's lease", "alice", f"/api/assignments/{w.ids['lease_b']}/skip/",
                {"reason": "skip"}),
        ],
    ),
    Op(
        "post", "/api/auth/logout/",
        allowed="alice", refused=(), json_body=False, success=(204,),
    ),
    Op(
        "post", "/api/auth/token/",
        allowed=None, refused=(), needs_auth=False,
        valid=lambda w: {"username": "alice", "password": PASSWORD}, success=(200,),
        bad=lambda w: [
            Req("no body", None, "/api/auth/token/", {}),
            Req("no password", None, "/api/auth/token/", {"username": "alice"}),
            Req("password a list", None, "/api/auth/token/",
                {"username": "alice", "password": [PASSWORD]}),
            Req("username over 150", None, "/api/auth/token/",
                {"username": "u" * 151, "password": PASSWORD}),
            Req("username of 10,000", None, "/api/auth/token/",
                {"username": "u" * 10_000, "password": PASSWORD}),
            Req("device over 100", None, "/api/auth/token/",
                {"username": "alice", "password": PASSWORD, "device": "d" * 101}),
            # A wrong password is counted by the login guard: that count is the protection.
            Req("wrong password", None, "/api/auth/token/",
                {"username": "alice", "password": "nope"}, allowed=LOGIN_GUARD),
            Req("unknown user", None, "/api/auth/token/",
                {"username": "nobody", "password": "nope"}, allowed=LOGIN_GUARD),
            Req("user without a password", None, "/api/auth/token/",
                {"username": "remy", "password": ""}),
        ],
    ),
    Op(
        "delete", "/api/auth/tokens/{id}/", id_of="token:alice",
        allowed="alice", refused=("bob", "root", "otto"), json_body=False, success=(204,),
        bad=lambda w: [
            Req("someone else's token", "alice",
                f"/api/auth/tokens/{w.ids['token:bob']}/", method="delete"),
        ],
    ),
    Op(
        "post", "/api/decisions/{id}/override/", id_of="decision",
        allowed="cora", refused=CURATION_REFUSED,
        valid=lambda w: {"decision": "rejected", "reason": "blurry"}, success=(200,),
        bad=lambda w: [
            ("no reason", {"decision": "rejected"}),
            ("blank reason", {"decision": "rejected", "reason": "   "}),
            ("reason over 2000", {"decision": "rejected", "reason": "r" * 2001}),
            ("decision 'error'", {"decision": "error", "reason": "x"}),
            ("decision 'maybe'", {"decision": "maybe", "reason": "x"}),
            ("decision null", {"decision": None, "reason": "x"}),
        ],
    ),
    Op(
        "post", "/api/images/",
        allowed="cora", refused=CURATION_REFUSED, json_body=False,
        valid=lambda w: {"file": upload("new.png", png(seed=42)), "source": "uploads"},
        success=(201,),
        bad=lambda w: [
            *corrupt_image_files("file"),
            *bomb_and_oversized("file"),
            ("no file", {"source": "uploads"}),
            ("source name over 200", {"file": upload("n.png", png(seed=43)), "source": "s" * 201}),
            ("a file under another field", {"image": upload("n.png", png(seed=44))}),
            Req("JSON instead of a file", "cora", "/api/images/", {"file": "aGVsbG8="}),
        ],
    ),
    Op(
        "post", "/api/jobs/",
        allowed="cora", refused=CURATION_REFUSED,
        valid=lambda w: {"source": w.ids["source"], "config": {"clip": {"enabled": False}}},
        success=(201,),
        bad=lambda w: [
            ("no source", {"config": {"clip": {"enabled": False}}}),
            ("unknown source", {"source": MISSING, "config": {"clip": {"enabled": False}}}),
            ("source id past bigint", {"source": HUGE, "config": {"clip": {"enabled": False}}}),
            ("source a name", {"source": "set1", "config": {"clip": {"enabled": False}}}),
            ("source without items", {"source": w.ids["empty_source"],
                                      "config": {"clip": {"enabled": False}}}),
            ("config a list", {"source": w.ids["source"], "config": [1]}),
            ("unknown setting", {"source": w.ids["source"],
                                 "config": {"clip": {"enabled": False}, "speed": 11}}),
            ("chunk_size 0", {"source": w.ids["source"],
                              "config": {"clip": {"enabled": False}, "chunk_size": 0}}),
            ("min_short_side -5", {"source": w.ids["source"],
                                   "config": {"clip": {"enabled": False}, "min_short_side": -5}}),
            ("max_pixels 1e23", {"source": w.ids["source"],
                                 "config": {"clip": {"enabled": False}, "max_pixels": 1e23}}),
            ("CLIP without a checkpoint", {"source": w.ids["source"], "config": {}}),
            ("CLIP checkpoint outside MODEL_ROOTS", {
                "source": w.ids["source"],
                "config": {"clip": {"checkpoint": str(w.outside / "secret.jpg")}}}),
            ("CLIP checkpoint /etc/passwd", {
                "source": w.ids["source"], "config": {"clip": {"checkpoint": "/etc/passwd"}}}),
        ],
    ),
    cancel_op("/api/jobs/{id}/cancel/", "queued_job", "cora", CURATION_REFUSED,
              ended=("a finished job", "done_job")),
    Op(
        "post", "/api/jobs/{id}/project/", id_of="done_job",
        allowed="cora", refused=CURATION_REFUSED,
        valid=lambda w: {"name": "from-job"}, success=(201,),
        bad=lambda w: [
            ("no name", {}),
            ("blank name", {"name": ""}),
            ("name over 200", {"name": "n" * 201}),
            ("a name taken", {"name": "P"}),
            ("sample 0", {"name": "x", "sample": 0}),
            ("sample 2**31", {"name": "x", "sample": 2**31}),
            ("seed -1", {"name": "x", "seed": -1}),
            ("seed 2**32", {"name": "x", "seed": 2**32}),
            ("overlap 0", {"name": "x", "overlap": 0}),
            ("overlap 101", {"name": "x", "overlap": 101}),
            ("overlap 2.5", {"name": "x", "overlap": 2.5}),
            Req("a job still queued", "cora", f"/api/jobs/{w.ids['queued_job']}/project/",
                {"name": "x"}),
        ],
    ),
    Op(
        "post", "/api/models/",
        allowed="remy", refused=RESEARCH_REFUSED,
        valid=lambda w: {"version": "mv2", "checkpoint_path": str(w.model_root / "mv1")},
        bad=lambda w: [
            ("no version", {"checkpoint_path": str(w.model_root / "mv1")}),
            ("version with a slash", {"version": "a/b",
                                      "checkpoint_path": str(w.model_root / "mv1")}),
            ("version '..'", {"version": "..", "checkpoint_path": str(w.model_root / "mv1")}),
            ("version over 100", {"version": "v" * 101,
                                  "checkpoint_path": str(w.model_root / "mv1")}),
            ("a version taken", {"version": "mv1", "checkpoint_path": str(w.model_root / "mv1")}),
            ("path /etc", {"version": "x1", "checkpoint_path": "/etc"}),
            ("path climbing out", {"version": "x1",
                                   "checkpoint_path": str(w.model_root / ".." / "outside")}),
            ("path outside", {"version": "x1", "checkpoint_path": str(w.outside)}),
            ("not a model directory", {"version": "x1",
                                       "checkpoint_path": str(w.model_root / "empty-model")}),
            ("a missing directory", {"version": "x1",
                                     "checkpoint_path": str(w.model_root / "nothing")}),
            ("unknown release", {"version": "x1", "checkpoint_path": str(w.model_root / "mv1"),
                                 "release": MISSING}),
            ("metrics a list", {"version": "x1", "checkpoint_path": str(w.model_root / "mv1"),
                                "metrics": [1]}),
        ],
    ),
    Op(
        "post", "/api/models/{version}/activate/",
        url=lambda w: "/api/models/mv1/activate/",
        url_ids=lambda w, i: f"/api/models/v{i}/activate/",
        allowed="remy", refused=RESEARCH_REFUSED, json_body=False,
        bad=lambda w: [
            Req("a version whose files are gone", "remy", "/api/models/gone/activate/"),
            Req("a version named '..'", "remy", "/api/models/../activate/"),
        ],
    ),
    Op(
        "post", "/api/projects/{id}/raters/{username}/exclusion/", id_of="project",
        allowed="rita", refused=MANAGERS_REFUSED,
        valid=lambda w: {"decision": "exclude", "reason": "careless"}, success=(200,),
        bad=lambda w: [
            ("no decision", {"reason": "x"}),
            ("decision 'maybe'", {"decision": "maybe"}),
            ("reason over 2000", {"decision": "exclude", "reason": "r" * 2001}),
            Req("an unknown user", "rita",
                f"/api/projects/{w.ids['project']}/raters/nobody/exclusion/",
                {"decision": "exclude"}),
            Req("someone of another project", "rita",
                f"/api/projects/{w.ids['project']}/raters/otto_q/exclusion/",
                {"decision": "exclude"}),
            Req("a curator, who does not rate", "rita",
                f"/api/projects/{w.ids['project']}/raters/cora/exclusion/",
                {"decision": "exclude"}),
        ],
    ),
    Op(
        "post", "/api/projects/{id}/raters/{username}/status/", id_of="project",
        allowed="rita", refused=MANAGERS_REFUSED,
        valid=lambda w: {"status": "paused", "reason": "a break"}, success=(200,),
        bad=lambda w: [
            ("no status", {}),
            ("status 'king'", {"status": "king"}),
            ("reason over 2000", {"status": "paused", "reason": "r" * 2001}),
            Req("an unknown user", "rita",
                f"/api/projects/{w.ids['project']}/raters/nobody/status/", {"status": "paused"}),
            Req("a curator, who does not rate", "rita",
                f"/api/projects/{w.ids['project']}/raters/cora/status/", {"status": "paused"}),
            Req("their own status", "rita",
                f"/api/projects/{w.ids['project']}/raters/rita/status/", {"status": "certified"}),
        ],
    ),
    Op(
        "post", "/api/projects/{id}/references/", id_of="project",
        allowed="rita", refused=MANAGERS_REFUSED, json_body=False,
        valid=lambda w: {"file": reference_csv([score_row(w.ids["free_image"])]),
                         "kind": "gold"},
        success=(200,),
        bad=lambda w: [
            ("no file", {"kind": "gold"}),
            ("kind 'platinum'", {"file": reference_csv([score_row(w.ids["image"])]),
                                 "kind": "platinum"}),
            ("not UTF-8", {"file": SimpleUploadedFile("r.csv", b"image\n\xff\xfe\xfa\n")}),
            ("an image", {"file": upload("r.png", png(seed=9))}),
            Req("JSON instead of a file", "rita",
                f"/api/projects/{w.ids['project']}/references/", {"file": "image,x\n1,2\n"}),
        ],
    ),
    Op(
        "post", "/api/projects/{id}/refresh/", id_of="project",
        allowed="rita", refused=MANAGERS_REFUSED, json_body=False,
    ),
    Op(
        "post", "/api/releases/",
        allowed="remy", refused=RESEARCH_REFUSED,
        valid=lambda w: {"name": "rel", "version": "1", "out": "rel-1", "sources": ["set1"]},
        bad=lambda w: [
            ("no out", {"name": "rel", "version": "1", "sources": ["set1"]}),
            ("out /etc", {"name": "rel", "version": "1", "out": "/etc", "sources": ["set1"]}),
            ("out climbing out", {"name": "rel", "version": "1", "out": "../outside/rel",
                                  "sources": ["set1"]}),
            ("out the root itself", {"name": "rel", "version": "1", "out": ".",
                                     "sources": ["set1"]}),
            ("out an existing release", {"name": "rel", "version": "1", "out": "r1",
                                         "sources": ["set1"]}),
            ("out with a NUL", {"name": "rel", "version": "1", "out": "a\u0000b",
                                "sources": ["set1"]}),
            ("a version that exists", {"name": "r", "version": "1", "out": "rel-x",
                                       "sources": ["set1"]}),
            ("an unknown source", {"name": "rel", "version": "1", "out": "rel-1",
                                   "sources": ["nope"]}),
            ("an unknown project", {"name": "rel", "version": "1", "out": "rel-1",
                                    "projects": ["nope"]}),
            ("nothing selected", {"name": "rel", "version": "1", "out": "rel-1"}),
            ("max_side 15", {"name": "rel", "version": "1", "out": "rel-1", "sources": ["set1"],
                             "max_side": 15}),
            ("max_side 65536", {"name": "rel", "version": "1", "out": "rel-1",
                                "sources": ["set1"], "max_side": 65_536}),
            ("min_raters 0", {"name": "rel", "version": "1", "out": "rel-1",
                              "sources": ["set1"], "min_raters": 0}),
            ("seed 2**63", {"name": "rel", "version": "1", "out": "rel-1", "sources": ["set1"],
                            "seed": 2**63}),
            ("split negative", {"name": "rel", "version": "1", "out": "rel-1",
                                "sources": ["set1"], "split": {"train": -1, "test": 2}}),
            ("split unknown part", {"name": "rel", "version": "1", "out": "rel-1",
                                    "sources": ["set1"], "split": {"holdout": 1}}),
            ("format 'zip'", {"name": "rel", "version": "1", "out": "rel-1",
                              "sources": ["set1"], "formats": ["zip"]}),
            ("no formats", {"name": "rel", "version": "1", "out": "rel-1",
                            "sources": ["set1"], "formats": []}),
            ("images 'move'", {"name": "rel", "version": "1", "out": "rel-1",
                               "sources": ["set1"], "images": "move"}),
            ("blank name", {"name": " ", "version": "1", "out": "rel-1", "sources": ["set1"]}),
        ],
    ),
    cancel_op("/api/releases/{id}/cancel/", "building", "remy", RESEARCH_REFUSED,
              ended=("a ready release", "release")),
    Op(
        "post", "/api/reviews/{id}/decision/", id_of="review",
        allowed="rita", refused=MANAGERS_REFUSED,
        valid=lambda w: {"decision": "exclude", "note": "not a person"}, success=(200,),
        bad=lambda w: [
            ("no decision", {}),
            ("decision 'ignore'", {"decision": "ignore"}),
            ("set_final without scores", {"decision": "set_final"}),
            ("final score 1.5", {"decision": "set_final",
                                 "final_scores": full_scores(**{next(iter(full_scores())): 1.5})}),
            ("final score 'x'", {"decision": "set_final",
                                 "final_scores": full_scores(**{next(iter(full_scores())): "x"})}),
            ("final scores unknown key", {"decision": "set_final",
                                          "final_scores": {**full_scores(), "charm": 0.5}}),
            ("final scores a list", {"decision": "set_final", "final_scores": [0.5]}),
            ("note over 4000", {"decision": "accept", "note": "n" * 4001}),
        ],
    ),
    Op(
        "post", "/api/score/",
        allowed="remy", refused=RESEARCH_REFUSED, json_body=False,
        valid=lambda w: {"image": upload("s.png", png(seed=50))},
        bad=lambda w: [
            *corrupt_image_files("image"),
            *bomb_and_oversized("image"),
            ("no image", {"model": "mv1"}),
            ("an unknown model", {"image": upload("s.png", png(seed=51)), "model": "nope"}),
            ("no model active", {"image": upload("s.png", png(seed=52))}),
        ],
    ),
    Op(
        "post", "/api/scoring-jobs/",
        allowed="remy", refused=RESEARCH_REFUSED,
        valid=lambda w: {"model": "mv1"},
        bad=lambda w: [
            ("no model active", {}),
            ("an unknown model", {"model": "nope"}),
            ("format 'xml'", {"model": "mv1", "format": "xml"}),
            ("chunk_size 0", {"model": "mv1", "chunk_size": 0}),
            ("chunk_size 10001", {"model": "mv1", "chunk_size": 10_001}),
            ("unknown release", {"model": "mv1", "release": MISSING}),
            ("release id past bigint", {"model": "mv1", "release": HUGE}),
            ("a release still building", {"model": "mv1", "release": w.ids["building"]}),
            ("unknown source", {"model": "mv1", "source": "nope"}),
            ("a release and a source", {"model": "mv1", "release": w.ids["release"],
                                        "source": "set1"}),
            ("a source without images", {"model": "mv1", "source": "no-items"}),
        ],
    ),
    cancel_op("/api/scoring-jobs/{id}/cancel/", "queued_scoring", "remy", RESEARCH_REFUSED,
              ended=("a finished job", "done_scoring")),
    Op(
        "post", "/api/sources/",
        allowed="cora", refused=CURATION_REFUSED,
        valid=lambda w: {"kind": "manifest", "path": str(w.import_root / "manifest.csv"),
                         "name": "new-source"},
        bad=lambda w: [
            ("path /etc/passwd", {"kind": "manifest", "path": "/etc/passwd", "name": "n"}),
            ("path outside", {"kind": "manifest", "path": str(w.outside / "secret.csv"),
                              "name": "n"}),
            ("path climbing out", {"kind": "manifest",
                                   "path": str(w.import_root / ".." / "outside" / "secret.csv"),
                                   "name": "n"}),
            ("relative path", {"kind": "manifest", "path": "../outside/secret.csv",
                               "name": "n"}),
            ("a link pointing out", {"kind": "manifest", "path": str(w.import_root / "link.csv"),
                                     "name": "n"}),
            ("path /", {"kind": "manifest", "path": "/", "name": "n"}),
            ("path with a NUL", {"kind": "manifest",
                                 "path": str(w.import_root / "manifest.csv") + "\u0000.txt",
                                 "name": "n"}),
            ("kind 'zip'", {"kind": "zip", "path": str(w.import_root / "manifest.csv"),
                            "name": "n"}),
            ("no name", {"kind": "manifest", "path": str(w.import_root / "manifest.csv")}),
            ("name over 200", {"kind": "manifest", "path": str(w.import_root / "manifest.csv"),
                               "name": "n" * 201}),
            ("scale of one number", {"kind": "manifest", "name": "n", "scale": [1],
                                     "path": str(w.import_root / "manifest.csv")}),
            ("priority 10**7", {"kind": "manifest", "path": str(w.import_root / "manifest.csv"),
                                "name": "n", "priority": 10**7}),
            ("background 'maybe'", {"kind": "manifest",
                                    "path": str(w.import_root / "manifest.csv"), "name": "n",
                                    "background": "maybe"}),
        ],
    ),
    Op(
        "patch", "/api/sources/{id}/", id_of="source",
        allowed="cora", refused=CURATION_REFUSED, success=(200,),
        valid=lambda w: {"licence": "CC-BY-4.0", "consent_basis": "public_dataset_terms"},
        bad=lambda w: [
            ("licence 'CC BY!'", {"licence": "CC BY!"}),
            ("licence over 64", {"licence": "L" * 65}),
            ("licence a list", {"licence": ["CC-BY-4.0"]}),
            ("licence null", {"licence": None}),
            # One bad field of three: the good ones are not saved either.
            ("consent_basis 'maybe'", {"origin": "x", "consent_basis": "maybe"}),
            ("a good licence and a bad consent_basis", {"licence": "CC-BY-4.0",
                                                         "consent_basis": "maybe"}),
            ("origin over 1000", {"origin": "o" * 1001}),
            ("origin an object", {"origin": {"url": "https://example.org"}}),
        ],
    ),
    Op(
        "delete", "/api/sources/{id}/", id_of="empty_source",
        allowed="cora", refused=CURATION_REFUSED, json_body=False, success=(204,),
        bad=lambda w: [
            Req("a source in use", "cora", f"/api/sources/{w.ids['source']}/", method="delete",
                statuses=(409,)),
        ],
    ),
    cancel_op("/api/source-imports/{id}/cancel/", "queued_import", "cora", CURATION_REFUSED,
              ended=("a finished import", "done_import")),
    Op(
        "post", "/api/sources/{id}/project/", id_of="source",
        allowed="cora", refused=CURATION_REFUSED,
        valid=lambda w: {"name": "from-source"}, success=(201,),
        bad=lambda w: [
            ("no name", {}),
            ("a name taken", {"name": "Q"}),
            ("sample -1", {"name": "x", "sample": -1}),
            ("overlap 1000", {"name": "x", "overlap": 1000}),
            ("seed 'one'", {"name": "x", "seed": "one"}),
            Req("a source with no finished job", "cora",
                f"/api/sources/{w.ids['empty_source']}/project/", {"name": "x"}),
        ],
    ),
    Op(
        "post", "/api/training-runs/",
        allowed="remy", refused=RESEARCH_REFUSED,
        valid=lambda w: {"release": w.ids["release"], "backbone": "tiny"},
        bad=lambda w: [
            ("neither release nor data", {"backbone": "tiny"}),
            ("release and data", {"release": w.ids["release"], "data": str(w.import_root),
                                  "backbone": "tiny"}),
            ("unknown release", {"release": MISSING, "backbone": "tiny"}),
            ("a release still building", {"release": w.ids["building"], "backbone": "tiny"}),
            ("data /etc", {"data": "/etc", "backbone": "tiny"}),
            ("data outside", {"data": str(w.outside), "backbone": "tiny"}),
            ("data climbing out", {"data": str(w.import_root / ".." / "outside"),
                                   "backbone": "tiny"}),
            ("data not a release", {"data": str(w.import_root / "empty"), "backbone": "tiny"}),
            ("backbone /etc", {"release": w.ids["release"], "backbone": "/etc"}),
            ("backbone an option", {"release": w.ids["release"], "backbone": "--help"}),
            ("clip checkpoint outside", {"release": w.ids["release"], "backbone": "lite",
                                         "clip_model": "ViT-B-32",
                                         "clip_checkpoint": str(w.outside / "secret.jpg")}),
            ("lite without clip", {"release": w.ids["release"], "backbone": "lite"}),
            ("max_steps 0", {"release": w.ids["release"], "backbone": "tiny", "max_steps": 0}),
            ("max_steps 10**7+1", {"release": w.ids["release"], "backbone": "tiny",
                                   "max_steps": 10_000_001}),
            ("unknown setting", {"release": w.ids["release"], "backbone": "tiny",
                                 "settings": {"warp_speed": 9}}),
            ("settings a list", {"release": w.ids["release"], "backbone": "tiny",
                                 "settings": [1]}),
            ("version with a slash", {"release": w.ids["release"], "backbone": "tiny",
                                      "version": "a/b"}),
            ("a version taken", {"release": w.ids["release"], "backbone": "tiny",
                                 "version": "mv1"}),
        ],
    ),
    cancel_op("/api/training-runs/{id}/cancel/", "queued_run", "remy", RESEARCH_REFUSED,
              ended=("a finished run", "done_run")),
]
def _guides_bad(w: World) -> list:
    return [
        ("no dimensions", {}),
        ("dimensions a list", {"dimensions": ["looks"]}),
        ("an unknown dimension", {"dimensions": {"charm": {"definition": "x"}}}),
        ("an unknown level", {"dimensions": {"looks": {"levels": {"superb": "x"}}}}),
        ("definition a number", {"dimensions": {"looks": {"definition": 3}}}),
        ("definition over 600", {"dimensions": {"looks": {"definition": "d" * 601}}}),
        ("a level's line over 300", {"dimensions": {"looks": {"levels": {"good": "g" * 301}}}}),
    ]


OPS += [
    *(
        Op(
            method, "/api/projects/{id}/guides/", id_of="project",
            allowed="rita", refused=MANAGERS_REFUSED,
            valid=lambda w: {"dimensions": {"looks": {"definition": "Grooming."}}},
            success=(200,), bad=_guides_bad,
        )
        for method in ("patch", "put")
    ),
    Op(
        "post", "/api/projects/{id}/guides/examples/", id_of="project",
        allowed="rita", refused=MANAGERS_REFUSED,
        bad=lambda w: [
            ("no image", {"dimension": "looks", "level": "good"}),
            ("a production image", {"dimension": "looks", "level": "good",
                                    "image": w.ids["image"]}),
            ("an image past a bigint", {"dimension": "looks", "level": "good", "image": 2**63}),
            ("an unknown dimension", {"dimension": "charm", "level": "good",
                                      "image": w.ids["image"]}),
            ("an unknown level", {"dimension": "looks", "level": "superb",
                                  "image": w.ids["image"]}),
        ],
    ),
    Op(
        "delete", "/api/projects/{id}/guides/examples/{example}/",
        url=lambda w: f"/api/projects/{w.ids['project']}/guides/examples/{MISSING}/",
        allowed="rita", refused=MANAGERS_REFUSED, json_body=False,
    ),
]


MEMBERS_REFUSED = ("alice", "bob", "rita", "cora", "remy", "otto")
LONG_NAME = "n" * 151


def _invitation_url(w: World) -> str:
    return f"/api/projects/{w.ids['project']}/invitations/{w.ids['invitation']}/"


def _accept_url(w: World, token: str | None = None) -> str:
    return f"/api/invitations/{token or w.ids['invitation_token']}/accept/"


OPS += [
    Op(
        "post", "/api/projects/{id}/members/", id_of="project",
        allowed="root", refused=MEMBERS_REFUSED,
        valid=lambda w: {"username": "otto", "role": "annotator"}, success=(201,),
        bad=lambda w: [
            ("no username", {"role": "annotator"}),
            ("role overlord", {"username": "otto", "role": "overlord"}),
            ("username over 150", {"username": LONG_NAME, "role": "annotator"}),
            ("no such user", {"username": "nobody", "role": "annotator"}),
            ("already a member", {"username": "bob", "role": "annotator"}),
        ],
    ),
    Op(
        "patch", "/api/projects/{id}/members/{username}/", id_of="project",
        allowed="root", refused=MEMBERS_REFUSED,
        valid=lambda w: {"role": "reviewer"}, success=(200,),
        bad=lambda w: [
            ("no role", {}),
            ("role overlord", {"role": "overlord"}),
            Req("another project's member", "root",
                f"/api/projects/{w.ids['project']}/members/otto_q/", {"role": "reviewer"},
                "patch"),
            Req("no such user", "root", f"/api/projects/{w.ids['project']}/members/nobody/",
                {"role": "reviewer"}, "patch"),
        ],
    ),
    Op(
        "delete", "/api/projects/{id}/members/{username}/", id_of="project",
        allowed="root", refused=MEMBERS_REFUSED, json_body=False, success=(200,),
        bad=lambda w: [
            Req("another project's member", "root",
                f"/api/projects/{w.ids['project']}/members/otto_q/", method="delete"),
        ],
    ),
    Op(
        "post", "/api/projects/{id}/invitations/", id_of="project",
        allowed="root", refused=MEMBERS_REFUSED,
        valid=lambda w: {"role": "annotator"}, success=(201,),
        bad=lambda w: [
            ("no role", {}),
            ("role overlord", {"role": "overlord"}),
            ("days 0", {"role": "annotator", "days": 0}),
            ("days 31", {"role": "annotator", "days": 31}),
            ("days 2**63", {"role": "annotator", "days": 2**63}),
        ],
    ),
    Op(
        "delete", "/api/projects/{id}/invitations/{invitation_id}/", url=_invitation_url,
        allowed="root", refused=MEMBERS_REFUSED, json_body=False, success=(204,),
    ),
    Op(
        "post", "/api/invitations/{token}/accept/", url=_accept_url,
        allowed="otto", refused=(), needs_auth=False, valid=lambda w: {}, success=(201,),
        bad=lambda w: [
            Req("an unknown link", "otto", _accept_url(w, "0" * 43), {}),
            Req("already a member", "alice", _accept_url(w), {}),
            Req("a weak password", None, _accept_url(w),
                {"username": "newcomer", "password": "123"}),
            Req("a username taken", None, _accept_url(w),
                {"username": "alice", "password": "A-long-pass-2026"}),
            Req("a username over 150", None, _accept_url(w),
                {"username": LONG_NAME, "password": "A-long-pass-2026"}),
        ],
    ),
]


# --- takedowns (platform admins only) ---------------------------------------------------------

ADMIN_REFUSED = ("alice", "bob", "rita", "cora", "remy", "otto")


def _takedown_url(w: World, key: str, action: str) -> str:
    return f"/api/takedowns/{w.ids[key]}/{action}/"


def _takedown(**fields: Any) -> dict:
    body = {"person": "Ann Example", "contact": "ann@example.org",
            "reason": "a photo of me I never agreed to"}
    return {**body, **fields}


def _without(field_name: str) -> dict:
    body = _takedown()
    del body[field_name]
    return body


def _decision(match: Any, decision: Any = "confirmed", **more: Any) -> dict:
    return {"decisions": [{"match": match, "decision": decision, **more}]}


def _in_states(w: World, action: str, body: Any, *keys: str) -> list[Req]:
    """The action on requests whose state does not allow it: a 409 each. `body`: a callable
    gives each request its own (an uploaded file is read once)."""
    return [Req(f"a request {key.removeprefix('takedown_')}", "ada",
                _takedown_url(w, key, action), body() if callable(body) else body,
                statuses=(409,)) for key in keys]


def _photos_bad(w: World) -> list:
    url = _takedown_url(w, "takedown_open", "photos")
    good = png(seed=61)

    def fresh(seed: int) -> SimpleUploadedFile:
        """A good photo no case before has sent (a photo already kept is not kept again)."""
        return upload(f"good{seed}.png", png(seed=seed))

    return [
        *corrupt_image_files("photos"),
        *bomb_and_oversized("photos"),
        ("a photo under another field", {"photo": upload("p.png", good)}),
        Req("JSON instead of a file", "ada", url, {"photos": "aGVsbG8="}),
        # Several photos are checked before any is kept: one bad photo keeps none.
        ("a good photo and a corrupt one", {"photos": [
            fresh(62), upload("bad.png", png(seed=3)[:300])]}),
        ("a good photo and a bomb", {"photos": [
            fresh(63), upload("bomb.png", flat_png((300, 300)))]}),
        ("a good photo and one too big", {"photos": [
            fresh(64), upload("big.png", png(seed=6, size=(80, 80)))]}),
        ("101 photos (past DATA_UPLOAD_MAX_NUMBER_FILES)", {"photos": [
            upload(f"p{i}.png", good) for i in range(101)]}),
        *_in_states(w, "photos", lambda: {"photos": fresh(65)},
                    "takedown_rejected", "takedown_removing", "takedown_removed"),
    ]


OPS += [
    Op(
        "post", "/api/takedowns/",
        allowed="ada", refused=ADMIN_REFUSED, success=(201,),
        valid=lambda w: _takedown(image_ids=[w.ids["image"]]),
        bad=lambda w: [
            ("no person", _without("person")),
            ("no contact", _without("contact")),
            ("no reason", _without("reason")),
            ("blank person", _takedown(person="   ")),
            ("person null", _takedown(person=None)),
            ("person a list", _takedown(person=["Ann"])),
            ("person over 200", _takedown(person="p" * 201)),
            ("contact over 300", _takedown(contact="c" * 301)),
            ("reason over 10,000", _takedown(reason="r" * 10_001)),
            ("image_ids a number", _takedown(image_ids=w.ids["image"])),
            ("image_ids an object", _takedown(image_ids={"id": w.ids["image"]})),
            ("an image id as text", _takedown(image_ids=["one"])),
            ("an image id 0", _takedown(image_ids=[0])),
            ("an image id -1", _takedown(image_ids=[-1])),
            ("an image id 2.5", _takedown(image_ids=[2.5])),
            ("an image id true", _takedown(image_ids=[True])),
            ("an image id past a bigint", _takedown(image_ids=[2**63])),
            ("a good image id and a bad one", _takedown(image_ids=[w.ids["image"], "x"])),
            ("1001 image ids", _takedown(image_ids=list(range(1, 1002)))),
            ("1001 file names", _takedown(file_names=[f"f{i}.jpg" for i in range(1001)])),
            ("a blank file name", _takedown(file_names=["  "])),
            ("a file name over 1000", _takedown(file_names=["f" * 1001])),
            ("a file name a number", _takedown(file_names=[7])),
            ("a source record as text", _takedown(source_records=["set1:photos/p0.jpg"])),
            ("a source record without its path", _takedown(source_records=[{"source": "set1"}])),
            ("a source record with more keys", _takedown(
                source_records=[{"source": "set1", "path": "photos/p0.jpg", "image": 1}])),
            ("a source record with a blank path", _takedown(
                source_records=[{"source": "set1", "path": " "}])),
            ("1001 source records", _takedown(
                source_records=[{"source": "set1", "path": f"x{i}.jpg"} for i in range(1001)])),
        ],
    ),
    Op(
        "post", "/api/takedowns/{id}/photos/", id_of="takedown_open",
        allowed="ada", refused=ADMIN_REFUSED, json_body=False, success=(201,),
        valid=lambda w: {"photos": upload("me.png", png(seed=60))},
        bad=_photos_bad,
    ),
    Op(
        "post", "/api/takedowns/{id}/match/", id_of="takedown_open",
        allowed="ada", refused=ADMIN_REFUSED, success=(200,),
        valid=lambda w: {"faces": False},
        bad=lambda w: [
            ("faces without a recognition model", {"faces": True}),
            ("faces 'maybe'", {"faces": "maybe"}),
            ("faces a list", {"faces": [True]}),
            Req("a request naming nothing, with no photos", "ada",
                _takedown_url(w, "takedown_bare", "match"), {}),
            *_in_states(w, "match", {}, "takedown_rejected", "takedown_removing",
                        "takedown_removed"),
        ],
    ),
    Op(
        "post", "/api/takedowns/{id}/decide/", id_of="takedown_matched",
        allowed="ada", refused=ADMIN_REFUSED, success=(200,),
        valid=lambda w: _decision(w.ids["match"], note="her face, her tattoo"),
        bad=lambda w: [
            ("no decisions", {}),
            ("no decision in the list", {"decisions": []}),
            ("decisions an object", {"decisions": {"match": w.ids["match"],
                                                   "decision": "confirmed"}}),
            ("a decision that is a number", {"decisions": [w.ids["match"]]}),
            ("a decision without its match", {"decisions": [{"decision": "confirmed"}]}),
            ("decision 'maybe'", _decision(w.ids["match"], "maybe")),
            ("decision 'pending'", _decision(w.ids["match"], "pending")),
            ("decision null", _decision(w.ids["match"], None)),
            ("match id as text", _decision(str(w.ids["match"]))),
            ("match id true", _decision(True)),
            ("match id past a bigint", _decision(2**63)),
            ("note over 5000", _decision(w.ids["match"], note="n" * 5001)),
            ("note a number", _decision(w.ids["match"], note=5)),
            ("a match that does not exist", _decision(MISSING)),
            ("a match of another request", _decision(w.ids["decided_match"])),
            # A good decision with a bad one: neither is taken.
            ("a good decision and an unknown match", {"decisions": [
                {"match": w.ids["match"], "decision": "confirmed"},
                {"match": MISSING, "decision": "rejected"}]}),
            ("a good decision and a bad one", {"decisions": [
                {"match": w.ids["match"], "decision": "confirmed"},
                {"match": w.ids["decided_match"], "decision": "maybe"}]}),
            ("10,000 decisions on matches that do not exist", {"decisions": [
                {"match": MISSING + i, "decision": "rejected"} for i in range(10_000)]}),
            *_in_states(w, "decide", _decision(w.ids["match"]), "takedown_open",
                        "takedown_rejected", "takedown_removing", "takedown_removed"),
        ],
    ),
    Op(
        "post", "/api/takedowns/{id}/remove/", id_of="takedown_decided",
        allowed="ada", refused=ADMIN_REFUSED, json_body=False, success=(202,),
        bad=lambda w: _in_states(w, "remove", None, "takedown_matched", "takedown_declined",
                                 "takedown_open", "takedown_rejected", "takedown_removing",
                                 "takedown_removed"),
    ),
    Op(
        "post", "/api/takedowns/{id}/reject/", id_of="takedown_open",
        allowed="ada", refused=ADMIN_REFUSED, success=(200,),
        valid=lambda w: {"why": "the photos are not of her"},
        bad=lambda w: [
            ("no why", {}),
            ("blank why", {"why": "   "}),
            ("why null", {"why": None}),
            ("why a list", {"why": ["no"]}),
            ("why over 5000", {"why": "w" * 5001}),
            *_in_states(w, "reject", {"why": "no"}, "takedown_rejected",
                        "takedown_removing", "takedown_removed"),
        ],
    ),
    cancel_op("/api/takedown-removals/{id}/cancel/", "queued_removal", "ada", ADMIN_REFUSED,
              ended=("a finished removal", "done_removal")),
]


OPS_BY_KEY = {(op.method, op.path): op for op in OPS}


def malformed_json(op: Op, world: World) -> list[Req]:
    """Bodies no JSON endpoint may act on, sent by a user who may call it."""
    url, user = op.url(world), op.allowed
    bodies = [
        ("not JSON", "{", "application/json"),
        ("a list", "[]", "application/json"),
        ("null", "null", "application/json"),
        ("a NUL in a string", '{"name": "a\\u0000b", "reason": "\\u0000"}', "application/json"),
        ("deep nesting", '{"a": ' + "[" * 5000 + "]" * 5000 + "}", "application/json"),
        ("NaN", '{"x": NaN}', "application/json"),
        ("plain text", "name=x", "text/plain"),
    ]
    return [Req(label, user, url, body, op.method, content_type=ct) for label, body, ct in bodies]


def unknown_ids(op: Op, world: World) -> list[Req]:
    if op.url_ids is None:
        return []
    body = op.valid(world)
    return [
        Req(f"id {value}", op.allowed, op.url_ids(world, value),
            op.valid(world) if i else body, op.method)
        for i, value in enumerate((MISSING, HUGE, 0, "abc"))
    ]


def dead_credentials(op: Op, world: World) -> list[Req]:
    """No credentials, a made-up token, a revoked one, an expired one, a malformed header."""
    url = op.url(world)
    reqs = [Req("no credentials", None, url, op.valid(world), op.method)]
    for label, token in (("a made-up token", "0" * 40),
                         ("a revoked token", world.tokens["revoked"]),
                         ("an expired token", world.tokens["expired"]),
                         ("a token with a space", "abc def")):
        reqs.append(Req(label, None, url, op.valid(world), op.method, token=token))
    return reqs


# --- the sweep ------------------------------------------------------------------------------


def test_every_write_operation_of_the_schema_is_swept(world):
    """The sweep below covers exactly the schema's write operations: a new one fails here."""
    response = world.client("root").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    writes = {
        (method, path)
        for path, ops in schema["paths"].items()
        for method in ops
        if method in ("post", "put", "patch", "delete")
    }
    assert writes == set(OPS_BY_KEY), (
        f"not swept: {sorted(writes - set(OPS_BY_KEY))}; "
        f"gone from the schema: {sorted(set(OPS_BY_KEY) - writes)}"
    )


def session_without_csrf(op: Op, world: World) -> list[Req]:
    """The pages' forms post with the session and its CSRF token; a forged one has no token."""
    if not op.needs_auth:
        return []
    client = APIClient(enforce_csrf_checks=True)
    client.raise_request_exception = False
    client.force_login(world.users[op.allowed])
    return [Req("session without its CSRF token", op.allowed, op.url(world), op.valid(world),
                op.method, statuses=(403,), client=client)]


def wrong_roles(op: Op, world: World) -> list[Req]:
    return [
        Req(f"role of {user}", user, op.url(world), op.valid(world), op.method,
            statuses=(403, 404))
        for user in op.refused
    ]


def refusals(op: Op, world: World) -> list[Req]:
    reqs = dead_credentials(op, world) if op.needs_auth else []
    reqs += wrong_roles(op, world) + session_without_csrf(op, world)
    if op.json_body:
        reqs += malformed_json(op, world)
    return reqs + unknown_ids(op, world) + op.bad_requests(world)


def report(problems: list[str], reqs: list[Req]) -> str:
    return f"{len(problems)} problem(s) in {len(reqs)} refusals:\n" + "\n".join(problems)


@pytest.mark.parametrize("op", OPS, ids=[f"{op.method} {op.path}" for op in OPS])
def test_a_refused_request_changes_nothing(world, tight_limits, op):
    reqs = refusals(op, world)
    problems = check_refused(world, reqs)
    assert not problems, report(problems, reqs)
    if op.success:
        # The control: the valid body from a user who may is taken, and changes something.
        before = State.now(world.roots())
        with world.capture(execute=True):
            response = Req("valid", op.allowed, op.url(world), op.valid(world),
                           op.method).send(world)
        assert response.status_code in op.success, response.content[:500]
        assert before.changes(State.now(world.roots())), "the accepted request changed nothing"


@pytest.mark.django_db(transaction=True)
def test_refusals_commit_nothing_either(world, tight_limits):
    """Refusals of every operation (by role, and of its own bad input) once more with real
    commits (autocommit, as in production), all into one world: it must come out unchanged."""
    reqs = []
    for op in OPS:  # a sample: the full sweep is above
        reqs += wrong_roles(op, world)[:2] + op.bad_requests(world)[:6]
    problems = check_refused(world, reqs)
    assert not problems, report(problems, reqs)


def test_a_refused_match_by_face_indexes_nothing(world, settings):
    """With a face model configured (the random SFace-like model of tests/rights), a match by
    face that the request's state or input refuses writes nothing, not even the pool's face
    index; an accepted one indexes the pool and finds its matches."""
    from rights.models import FaceEmbedding
    from tests.rights.test_face_matching import TEST_THRESHOLD, sface_like_onnx

    model = world.model_root / "sface_like.onnx"
    model.write_bytes(sface_like_onnx())
    settings.TAKEDOWN_FACE_MODEL = str(model)
    settings.TAKEDOWN_FACE_THRESHOLD = TEST_THRESHOLD
    reqs = [
        *_in_states(world, "match", {"faces": True}, "takedown_rejected", "takedown_removing",
                    "takedown_removed"),
        Req("a request naming nothing, with no photos", "ada",
            _takedown_url(world, "takedown_bare", "match"), {"faces": True}),
        Req("faces 'maybe'", "ada", _takedown_url(world, "takedown_open", "match"),
            {"faces": "maybe"}),
        Req("no admin", "cora", _takedown_url(world, "takedown_open", "match"),
            {"faces": True}, statuses=(403,)),
    ]
    problems = []
    for req in reqs:  # each into a pool not indexed yet (a refusal may not index it)
        FaceEmbedding.objects.all().delete()
        problems += check_refused(world, [req])
    assert not problems, report(problems, reqs)
    FaceEmbedding.objects.all().delete()
    before = State.now(world.roots())
    response = world.client("ada").post(_takedown_url(world, "takedown_open", "match"),
                                        {"faces": True}, format="json")
    assert response.status_code == 200, response.content[:500]
    changes = before.changes(State.now(world.roots()))
    assert any("rights.FaceEmbedding" in c for c in changes), changes


# --- the second submit of a form --------------------------------------------------------------


def test_a_second_submit_of_a_rating_or_skip_changes_nothing(world):
    """The rating page may send twice (a double click, a retry): the replay answers the first
    rating and writes nothing; a second, different rating or a skip after it is refused."""
    url = f"/api/assignments/{world.ids['lease_a']}"
    first = _rating(world)
    alice = world.client("alice")
    assert alice.post(f"{url}/rating/", first, format="json").status_code == 201
    reqs = [
        Req("a different second rating", "alice", f"{url}/rating/", _rating(world),
            statuses=(409,)),
        Req("a skip after the rating", "alice", f"{url}/skip/", {"reason": "skip"},
            statuses=(409,)),
        Req("the first request_id on another lease", "bob",
            f"/api/assignments/{world.ids['lease_b']}/rating/",
            {"scores": full_scores(), "request_id": first["request_id"]}, statuses=(409,)),
    ]
    assert check_refused(world, reqs) == []
    before = State.now(world.roots())
    replay = alice.post(f"{url}/rating/", first, format="json")
    assert replay.status_code == 201 and replay["Idempotent-Replayed"] == "true"
    assert before.changes(State.now(world.roots())) == []


def test_a_second_decision_or_cancel_changes_nothing(world):
    rita, cora = world.client("rita"), world.client("cora")
    review_url = f"/api/reviews/{world.ids['review']}/decision/"
    assert rita.post(review_url, {"decision": "exclude"}, format="json").status_code == 200
    cancel = f"/api/jobs/{world.ids['queued_job']}/cancel/"
    assert cora.post(cancel).status_code == 200
    token = f"/api/auth/tokens/{world.ids['token:alice']}/"
    assert world.client("alice").delete(token).status_code == 204
    reqs = [
        Req("a second decision", "rita", review_url, {"decision": "accept"}),
        Req("a second cancel", "cora", cancel, statuses=(409,)),
        Req("a request with the token just revoked", "alice", token, method="delete",
            statuses=(401,)),
    ]
    assert check_refused(world, reqs) == []


# --- the HTML pages' own forms ----------------------------------------------------------------


def _html_client(**kwargs) -> Client:
    client = Client(**kwargs)
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_the_login_forms_refuse_without_leaving_anything(world, url):
    """A wrong password leaves only the login guard's count; a post without the CSRF token
    (a forged form on another site) leaves nothing at all, not even that."""
    roots = world.roots()
    client = _html_client()
    cases = [
        ({"username": "alice", "password": "wrong"}, LOGIN_GUARD),
        ({"username": "alice", "password": ""}, frozenset()),
        ({"username": "", "password": ""}, frozenset()),
        ({"username": "alice\u0000", "password": PASSWORD}, frozenset()),
        ({"username": "a" * 255, "password": "x" * 10_000}, LOGIN_GUARD),
        ({"username": "nobody", "password": PASSWORD, "next": "https://evil.example/"},
         LOGIN_GUARD),
    ]
    problems = []
    for body, allowed in cases:
        before = State.now(roots)
        response = client.post(url, body)
        changes = before.changes(State.now(roots), allowed)
        if response.status_code not in (200, 400) or changes or "_auth_user_id" in client.session:
            problems.append(f"{body['username'][:20]!r}: {response.status_code} {changes}")
    forged = _html_client(enforce_csrf_checks=True)
    before = State.now(roots)
    response = forged.post(url, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403
    problems += before.changes(State.now(roots))
    assert problems == []


def test_the_logout_form_without_its_csrf_token_keeps_the_session(world):
    client = _html_client(enforce_csrf_checks=True)
    client.force_login(world.users["alice"])
    before = State.now(world.roots())
    assert client.post("/accounts/logout/").status_code == 403
    assert before.changes(State.now(world.roots())) == []
    assert client.get("/api/me/").status_code == 200  # still logged in


def test_the_admin_forms_refuse_empty_and_unauthorised_posts(world):
    """The admin's add forms (Django's own <form method="post">): an empty one is sent back
    with its errors, and a user who is no staff is sent to the login: nothing is written."""
    from django.contrib import admin

    staff = _html_client()
    staff.force_login(world.users["root"])
    nobody = _html_client()
    nobody.force_login(world.users["alice"])
    problems = []
    roots = world.roots()
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/add/"
        for who, client, ok in (("root", staff, (200, 403)), ("alice", nobody, (302,))):
            before = State.now(roots)
            response = client.post(url, {})
            changes = before.changes(State.now(roots))
            if response.status_code not in ok or changes:
                problems.append(f"{url} as {who}: {response.status_code} {changes}")
    assert problems == []


# --- uploads stopped while streaming, and the login guard's columns ---------------------------


def test_an_upload_refused_while_streaming_leaves_no_temp_file(world, settings):
    """A body past MAX_UPLOAD_BYTES goes to a temp file first (it is over the in-memory size):
    the refusal deletes it at once, not when the request is garbage collected."""
    settings.MAX_UPLOAD_BYTES = 50_000
    data = png(seed=77, size=(200, 200))  # ~120 kB of noise
    assert len(data) > 50_000
    reqs = [
        Req("an image past the limit", "cora", "/api/images/",
            {"file": upload("big.png", data)}, statuses=(413,)),
        Req("a reference file past the limit", "rita",
            f"/api/projects/{world.ids['project']}/references/",
            {"file": SimpleUploadedFile("r.csv", b"image\n" + b"1\n" * 40_000)},
            statuses=(413,)),
        Req("an image to score past the limit", "remy", "/api/score/",
            {"image": upload("big.png", data)}, statuses=(413,)),
        Req("a second file past the limit", "cora", "/api/images/",
            {"file": upload("ok.png", png(seed=78)), "more": upload("big.png", data)},
            statuses=(413,)),
    ]
    assert check_refused(world, reqs) == []


@pytest.mark.parametrize("forwarded", ["not-an-ip", "1.2.3.4:5678", "<script>", "999.1.1.1"])
def test_a_forged_forwarded_address_is_no_crash(world, settings, forwarded):
    """Behind a proxy the login guard stores the forwarded address in an inet column: a
    header that is no address (sent past the proxy) is counted as an unknown address."""
    from axes.models import AccessAttempt

    settings.PROXY_COUNT = 1
    reqs = [
        Req("the login page", None, "/accounts/login/", "username=alice&password=wrong",
            content_type="application/x-www-form-urlencoded", statuses=(200,),
            allowed=LOGIN_GUARD, client=_html_client(HTTP_X_FORWARDED_FOR=forwarded)),
        Req("the token endpoint", None, "/api/auth/token/",
            {"username": "alice", "password": "wrong"}, statuses=(400,), allowed=LOGIN_GUARD,
            client=world.client(None)),
    ]
    reqs[1].client.credentials(HTTP_X_FORWARDED_FOR=forwarded)
    assert check_refused(world, reqs) == []
    assert AccessAttempt.objects.filter(username="alice", ip_address=None).exists()


def test_a_username_longer_than_the_guards_column_is_counted_cut(world, settings):
    """`config.login_guard.client_username` (AXES_USERNAME_CALLABLE) cuts the name to the
    column: the failed login is a form error, counted, not a 500."""
    from axes.models import AccessAttempt

    from config.login_guard import client_username

    settings.AXES_USERNAME_CALLABLE = "config.login_guard.client_username"
    assert client_username(None, {"username": "u" * 300}) == "u" * 255
    assert client_username(None, {"username": None}) is None
    reqs = [
        Req(f"a {n}-character username on {url}", None, url,
            f"username={'u' * n}&password=wrong",
            content_type="application/x-www-form-urlencoded", statuses=(200,),
            allowed=LOGIN_GUARD, client=_html_client())
        for n in (256, 10_000) for url in ("/accounts/login/", "/admin/login/")
    ]
    assert check_refused(world, reqs) == []
    assert AccessAttempt.objects.filter(username="u" * 255).exists()
