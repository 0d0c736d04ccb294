"""Build a release directory from rows and their splits, in one streaming pass.

Every format is written as the rows go by (a batch of records in memory at a time, an image
at a time), into ``.{name}.building`` beside the target, renamed into place when complete: a
crashed or killed build leaves no half release, and running it again starts afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curation.sources.terms import licence_mix_error

from .card import write_card
from .config import ReleaseConfig, ReleaseRow
from .datasheet import Stats, summary, write_datasheet
from .errors import ReleaseConfigError, ReleaseDataError
from .files import FileLog
from .images import image_ext, needs_resize, read_verified, resize, stable_name
from .records import (
    KIND_EXPERT,
    KIND_OVERALL,
    check_overall,
    dimension_columns,
    level_of,
    official_scores,
    wds_record,
)
from .splits import SplitHistory, SplitPlan, share_warnings
from .store import ReleaseFiles
from .writers import (
    OFFICIAL_ROOT,
    PARTS,
    WDS_IMAGE_KEY,
    CsvWriter,
    OfficialWriter,
    ParquetWriter,
    WebDatasetWriter,
    image_dir,
)

MANIFEST_FORMAT = 3  # 2: checks, withheld, excluded and warnings; 3: terms
BATCH_ROWS = 4096
PROGRESS_EVERY = 1000

Progress = Callable[[str, int, int], None]


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ReleaseConfigError(
            f"'{out_dir}' already exists and is not empty; a release is immutable: choose a new "
            "directory (or a new version)"
        )


def _json_safe(extra_config: dict) -> dict:
    try:
        return json.loads(json.dumps(extra_config, sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ReleaseConfigError(f"extra_config must be plain JSON data: {exc}") from None


NA_DONE = {"fill": "filled from the nearest rated parent (flagged in score_mask)",
           "drop": "left out of the official layout (kept in the other formats)",
           "overall": "written as overall-only lines (is_expert false, their comprehensive score)"}


def layout_lines(config: ReleaseConfig, official: Mapping[str, Any] | None = None) -> list[str]:
    """What the release directory holds, for the datasheet and the card; ``official``: the
    official layout's counts, once built."""
    splits = ", ".join(config.splits)
    lines = ["manifest.json: sha256 and size of every other file, counts, configuration",
             "README.md: the dataset card (splits, features, licence and how to load)",
             "datasheet.md, datasheet.html, datasheet/*.svg: the datasheet"]
    if "official" in config.formats:
        val = " and val_label.jsonl" if "val" in config.split else ""
        lines.append(
            f"{OFFICIAL_ROOT}/: the official HumanAesExpert layout ({PARTS[False]} and "
            f"{PARTS[True]}, each with images/ and label.jsonl; train_label.jsonl, "
            f"test_label.jsonl{val}); 12-dim images with a not-applicable dimension "
            f"(--na {config.na}): {NA_DONE[config.na]}"
            + (f"; {official['with_na']:,} such image(s)" if official else "")
        )
        lines.append(
            f"{OFFICIAL_ROOT}/*_label.jsonl are final: do not re-run the official "
            "generate_split.py on this release (it appends to the split files, duplicating "
            "every line)"
        )
    if "parquet" in config.formats:
        lines.append(f"parquet/{{split}}.parquet for {splits}: one row per image")
    if "csv" in config.formats:
        lines.append(f"csv/{{split}}.csv for {splits}: the Parquet columns as CSV; "
                     "csv/README.md: their card")
    if "webdataset" in config.formats:
        if config.shard_images:
            what = "jpg (the image's bytes, whatever its encoding) + json (its typed record)"
        elif config.images == "none":
            what = "json only (images=none)"
        else:
            what = "json only, whose `path` names the image file (images are stored once)"
        lines.append(f"webdataset/{{split}}-NNNNNN.tar: {config.shard_size:,} samples "
                     f"per shard, shuffled into shards (seeded from the release: the same "
                     f"order on a rebuild), {what}; webdataset/README.md: their card")
    if config.images == "none":
        lines.append("images were not released (images=none): `path` is where each would be, "
                     "`original_file` where it was left")
    elif config.shard_images:
        lines.append("images are stored once, inside the WebDataset shards (no format here "
                     "reads loose files): `path` is `{shard}#{member}`")
    else:
        where = "the official layout's images/ folders" if "official" in config.formats \
            else "images/"
        lines.append(f"images are stored once, as files in {where}, which every format names "
                     "by `path`" + (" (the WebDataset shards do not hold a second copy)"
                                    if "webdataset" in config.formats else ""))
    return lines


def check_official_test(plan: SplitPlan, config: ReleaseConfig) -> None:
    """At plan time, before any file is read: an official layout needs test images (the build
    checks the written lines again, after ``--na drop``)."""
    if "official" in config.formats and "test" not in set(plan.splits.values()):
        raise ReleaseConfigError(
            f"the official layout's test split is empty: none of the {len(plan.splits)} "
            "image(s) to release went to test, and its scripts evaluate on test_label.jsonl; "
            "select more images, raise the test ratio, or leave the official format out"
        )


def build_release(
    rows: Iterable[ReleaseRow],
    splits: dict[int, str] | SplitPlan,
    config: ReleaseConfig,
    out_dir: Path,
    *,
    platform_version: str,
    extra_config: dict,
    progress: Progress | None = None,
    verified: Mapping[str, Any] | None = None,
    excluded: Mapping[str, Sequence[int]] | None = None,
    about: Mapping[str, Any] | None = None,
    earlier: Iterable[ReleaseFiles] | None = None,
) -> dict:
    """Write the release under ``out_dir`` and return its manifest (also ``manifest.json``).

    ``rows`` is iterated once; the files follow its order, so pass rows in a stable order
    (e.g. by image id) for byte-identical files. ``splits`` is ``plan_splits``' answer (rows it
    withheld are skipped and listed) or a plain {image id: split}.

    The build checks its own output: clusters straddling two splits, earlier test images out
    of test and images trained on before now in test are counted over the written assignment
    and fail the build. ``verified`` (facts the caller checked, e.g. ``{"clustered": n}``) and
    ``excluded`` ({reason: image ids the caller left out}) go to the manifest and datasheet.
    ``earlier``: the other versions of the name, whose withdrawal notices the datasheet counts
    (None: the release folders beside ``out_dir``).
    """
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    extra = _json_safe(extra_config)
    plan = splits if isinstance(splits, SplitPlan) else SplitPlan(
        dict(splits), SplitHistory(), {}, tuple(share_warnings(dict(splits), config))
    )
    report = {
        "verified": _json_safe(dict(verified or {})),
        "excluded": {k: sorted(int(i) for i in v) for k, v in (excluded or {}).items()},
        "about": None if about is None else _json_safe(dict(about)),
    }
    work = out_dir.parent / f".{out_dir.name}.building"
    if work.exists():
        shutil.rmtree(work)  # a previous attempt that did not finish
    work.mkdir(parents=True)
    log = FileLog(work)
    try:
        manifest = _build(rows, plan, config, log, platform_version, extra, progress, report,
                          earlier)
        _check_out_dir(out_dir)
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(work, out_dir)
    except BaseException:
        log.close_all()
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


@dataclass(frozen=True, slots=True)
class _Image:
    """An image as released: its bytes (None with images=none), extension and size."""

    data: bytes | None
    ext: str
    width: int
    height: int
    resized: bool = False


def _release_image(row: ReleaseRow, config: ReleaseConfig) -> _Image:
    """The row's file, checked against its sha256 and, above max_side, resized to JPEG;
    nothing is read with images=none."""
    ext = image_ext(row.format)
    if config.images == "none":
        return _Image(None, ext, row.width, row.height)
    data = read_verified(row)
    if not needs_resize(row, config.max_side):
        return _Image(data, ext, row.width, row.height)
    data, width, height = resize(data, config.max_side, row.image_id)
    return _Image(data, "jpg", width, height, resized=True)


class _Builder:
    """The single pass: writers open for the whole build, a batch of records per split."""

    def __init__(self, config: ReleaseConfig, log: FileLog, splits: dict[int, str]):
        self.config, self.log, self.splits = config, log, splits
        self.names = names = config.splits
        formats = config.formats
        self.official = OfficialWriter(log, config) if "official" in formats else None
        self.parquet = ParquetWriter(log, names) if "parquet" in formats else None
        self.csv = CsvWriter(log, names) if "csv" in formats else None
        self.wds = WebDatasetWriter(log, config, splits) if "webdataset" in formats else None
        self.stats = Stats(names)
        self.buffers: dict[str, list[tuple]] = {s: [] for s in names}
        self.dirs = {e: image_dir(config, e) for e in (False, True)}
        # 8 + 1 + 8 + 8 bytes per image: the only per-image state kept
        self.ids = array("q")
        self.split_codes = array("b")
        self.name_keys = array("Q")
        self.clusters = array("q")  # -1: alone
        self.n_hashed = 0
        self.n_image_files = 0
        self.n_linked = 0  # of those, hard links (--images link; the rest were written)
        # (source, licence, consent basis) -> images: the release's terms, as written
        self.terms: Counter[tuple[str, str, str]] = Counter()
        # 12-dim images with a not-applicable dimension, and what the official layout did
        self.na_counts = {"with_na": 0, "filled": 0, "dropped": 0, "as_overall": 0}

    def add(self, row: ReleaseRow) -> None:
        """One row through every writer as it goes by; only its few numbers stay behind."""
        config = self.config
        split = self._split_of(row)
        expert = row.scores is not None
        overall = check_overall(row)
        overall_level = level_of(overall)
        dims = dimension_columns(row)
        sha = row.sha256.lower()
        image = _release_image(row, config)
        name = stable_name(row, image.ext)
        stem = name.rsplit(".", 1)[0]
        rel = self._path_of(split, row.image_id, expert, name, stem)
        self._store_loose(row, rel, image, sha)

        kind = KIND_EXPERT if expert else KIND_OVERALL
        record = (
            rel, row.image_id, split, row.source, kind, expert, overall, overall_level, *dims,
            name, sha, row.phash, row.cluster, image.width, image.height, row.format,
            row.file if config.images == "none" else None, row.licence, row.consent_basis,
        )
        if self.official:
            self.write_official(name, split, expert, row.source, dims, overall, overall_level)
        if self.wds:
            self.wds.write(split, stem, image.data if config.shard_images else None,
                           wds_record(record))
        self._buffer(split, record)
        self._remember(row, split, kind, name)

    def _split_of(self, row: ReleaseRow) -> str:
        split = self.splits.get(row.image_id)
        if split is None:
            raise ReleaseDataError(
                f"image {row.image_id} has no split; pass the answer of assign_splits for the "
                "same rows"
            )
        if split not in self.config.split:
            raise ReleaseDataError(
                f"image {row.image_id} is assigned to {split!r}, not a configured split"
            )
        return split

    def _path_of(self, split: str, image_id: int, expert: bool, name: str, stem: str) -> str:
        """The image's `path` in every format."""
        if self.config.shard_images:  # the bytes live in the shard: the path names the member
            return f"{self.wds.shard(split, image_id)}#{stem}.{WDS_IMAGE_KEY}"
        return f"{self.dirs[expert]}/{name}"

    def _store_loose(self, row: ReleaseRow, rel: str, image: _Image, sha: str) -> None:
        """The image file at ``rel``, where the formats that read files have it: written when
        copied or resized (a resized one has a new hash), else hard-linked."""
        config = self.config
        if not config.loose_images:
            return
        if config.images == "copy" or image.resized:
            self.log.write_bytes(rel, image.data, None if image.resized else sha)
        else:
            self.n_linked += self.log.link_or_copy(row.file, rel, sha, len(image.data))
        self.n_image_files += 1

    def _buffer(self, split: str, record: tuple) -> None:
        buf = self.buffers[split]
        buf.append(record)
        if len(buf) >= BATCH_ROWS:
            self.flush(split)

    def _remember(self, row: ReleaseRow, split: str, kind: str, name: str) -> None:
        """The counts, and the per-image state the checks read after the pass."""
        self.stats.counts[(split, row.source, kind)] += 1
        self.terms[(row.source, row.licence, row.consent_basis)] += 1
        self.ids.append(row.image_id)
        self.split_codes.append(self.names.index(split))
        self.name_keys.append(int(name[:16], 16))
        self.clusters.append(-1 if row.cluster is None else int(row.cluster))
        self.n_hashed += row.phash is not None

    def write_official(self, name: str, split: str, expert: bool, source: str, dims: tuple,
                       overall: float, overall_level: str) -> None:
        if not expert:
            self.official.write(name, split, False, source, overall, overall_level, None)
            return
        score, mask = official_scores(dims, overall)
        if mask is not None:
            na = self.config.na
            self.na_counts["with_na"] += 1
            self.na_counts[{"fill": "filled", "drop": "dropped", "overall": "as_overall"}[na]] += 1
            if na == "drop":
                return
            if na == "overall":
                self.official.write(name, split, False, source, overall, overall_level, None,
                                    part=True)
                return
        self.official.write(name, split, True, source, score, None, mask)

    def official_counts(self) -> dict[str, Any]:
        return {"na": self.config.na, **self.na_counts, "lines": dict(self.official.lines)}

    def flush(self, split: str) -> None:
        buf = self.buffers[split]
        if not buf:
            return
        columns = list(zip(*buf, strict=True))
        if self.parquet:
            self.parquet.write_batch(split, columns)
        if self.csv:
            self.csv.write_batch(split, buf)
        self.stats.add_batch(split, columns)
        buf.clear()

    def close_writers(self) -> None:
        for s in self.names:
            self.flush(s)
        for writer in (self.official, self.parquet, self.csv, self.wds):
            if writer:
                writer.close()

    def abort(self) -> None:
        if self.parquet:
            self.parquet.abort()  # else pyarrow writes to closed files when collected

    def splits_sha256(self) -> str:
        """sha256 of the lines "image_id split" by id; checks ids and names are unique."""
        ids = np.frombuffer(self.ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        sorted_ids = ids[order]
        dup = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
        if dup.size:
            raise ReleaseDataError(f"image id(s) {dup[:5].tolist()} appear more than once")
        keys = np.frombuffer(self.name_keys, dtype=np.uint64)
        if np.unique(keys).size != keys.size:
            raise ReleaseDataError(
                "two images share the first 16 hex digits of their sha256 (the same file "
                "imported twice?); their release names would collide"
            )
        codes = np.frombuffer(self.split_codes, dtype=np.int8)[order]
        digest = hashlib.sha256()
        step = 65536
        for start in range(0, ids.size, step):
            chunk = zip(sorted_ids[start:start + step].tolist(),
                        codes[start:start + step].tolist(), strict=True)
            digest.update("".join(f"{i} {self.names[c]}\n" for i, c in chunk).encode())
        return digest.hexdigest()


    def checks(self, history: SplitHistory) -> dict[str, Any]:
        """What the written assignment shows, counted (never assumed): hashes, clusters and
        the ones that straddle splits, and the version promise over ``history``."""
        ids = np.frombuffer(self.ids, dtype=np.int64)
        codes = np.frombuffer(self.split_codes, dtype=np.int8).astype(np.int64)
        clusters = np.frombuffer(self.clusters, dtype=np.int64)
        clustered = clusters >= 0
        _members, sizes = np.unique(clusters[clustered], return_counts=True)
        pairs = np.unique(clusters[clustered] * len(self.names) + codes[clustered])
        spread, n_splits = np.unique(pairs // len(self.names), return_counts=True)
        straddling = spread[n_splits > 1]
        test = self.names.index("test") if "test" in self.names else -1
        was_test = np.isin(ids, np.fromiter(history.test, dtype=np.int64))
        trained = np.isin(ids, np.fromiter(history.trained, dtype=np.int64))
        return {
            "images": int(ids.size),
            "hashed": int(self.n_hashed),
            "near_duplicate_clusters": int((sizes > 1).sum()),
            "images_in_near_duplicate_clusters": int(sizes[sizes > 1].sum()),
            "straddling_clusters": int(straddling.size),
            "straddling_cluster_ids": straddling[:20].tolist(),
            "earlier_test_in_release": int(was_test.sum()),
            "earlier_test_now_in_test": int((was_test & (codes == test)).sum()),
            "earlier_trained_in_release": int(trained.sum()),
            "trained_before_now_in_test": int((trained & (codes == test)).sum()),
            "earlier_versions_given": bool(history.test or history.trained),
        }


def terms_summary(counts: Mapping[tuple[str, str, str], int]) -> dict[str, Any]:
    """The release's terms as counted: images per licence and per consent basis, and per
    source {source: {licence: images}} (keys sorted)."""
    licences: Counter[str] = Counter()
    bases: Counter[str] = Counter()
    by_source: dict[str, Counter[str]] = {}
    for (source, licence, basis), n in counts.items():
        licences[licence] += n
        bases[basis] += n
        by_source.setdefault(source, Counter())[licence] += n
    return {
        "licences": dict(sorted(licences.items())),
        "consent_bases": dict(sorted(bases.items())),
        "by_source": {s: dict(sorted(c.items())) for s, c in sorted(by_source.items())},
    }


def _verify(checks: dict[str, Any]) -> None:
    """Refuse a release whose own output breaks a promise."""
    problems = []
    if checks["straddling_clusters"]:
        problems.append(
            f"{checks['straddling_clusters']} near-duplicate cluster(s) straddle two splits "
            f"(cluster ids {checks['straddling_cluster_ids']})"
        )
    out_of_test = checks["earlier_test_in_release"] - checks["earlier_test_now_in_test"]
    if out_of_test:
        problems.append(f"{out_of_test} image(s) of an earlier test split are not in test")
    if checks["trained_before_now_in_test"]:
        problems.append(
            f"{checks['trained_before_now_in_test']} image(s) an earlier version trained on "
            "are in test"
        )
    if problems:
        raise ReleaseDataError(
            "the split assignment leaks: " + "; ".join(problems) + "; nothing was released"
        )


def _build(rows, plan, config, log, platform_version, extra, progress, report,
           earlier=None) -> dict:
    """The single pass and its checks, the datasheet and card, then the manifest."""
    builder = _Builder(config, log, plan.splits)
    n_rows = _write_rows(builder, rows, plan, progress)
    splits_sha256 = builder.splits_sha256()
    report = _checked_report(builder, plan, report)

    config_dict = config.to_dict()
    if progress:
        progress("datasheet", 0, 1)
    official = builder.official_counts() if builder.official else None
    split_counts = _write_documents(builder, official, config_dict=config_dict, extra=extra,
                                    platform_version=platform_version, report=report,
                                    earlier=earlier)
    if progress:
        progress("datasheet", 1, 1)

    manifest: dict[str, Any] = {
        "manifest_format": MANIFEST_FORMAT,
        "name": config.name,
        "version": config.version,
        "platform_version": platform_version,
        "config": config_dict,
        "extra_config": extra,
        "counts": _counts(builder, n_rows, split_counts, official),
        "scores": builder.stats.measure_summary(),
        "terms": report["terms"],
        "checks": report["checks"],
        "withheld": report["withheld"],
        "excluded": report["excluded"],
        "warnings": report["warnings"],
        "splits_sha256": splits_sha256,
        "files": log.sorted_entries(),  # last: every other file is written
    }
    text = json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=False, allow_nan=False)
    (log.root / "manifest.json").write_text(text + "\n", encoding="utf-8")
    if progress:
        progress("manifest", 1, 1)
    return manifest


def _write_rows(builder: _Builder, rows: Iterable[ReleaseRow], plan: SplitPlan,
                progress: Progress | None) -> int:
    """The single pass over the rows not withheld, checked and with every writer closed (or
    aborted, whatever stops it); answers how many rows were written."""
    withheld, total = plan.withheld, len(plan.splits)
    try:
        n_rows = 0
        for row in rows:
            if row.image_id in withheld:
                continue
            builder.add(row)
            n_rows += 1
            if progress and n_rows % PROGRESS_EVERY == 0:
                progress("rows", n_rows, total)
        _check_selection(builder, n_rows)
        builder.close_writers()
    except BaseException:
        builder.abort()
        raise
    if progress:
        progress("rows", n_rows, total)
    return n_rows


def _check_selection(builder: _Builder, n_rows: int) -> None:
    """What only the whole selection can answer: is it empty, do its licences mix as the
    declared licence allows, did the official layout get test lines."""
    config = builder.config
    if n_rows == 0:
        raise ReleaseConfigError(
            "the selection is empty: no image matches the chosen sources, projects and rules"
        )
    refusal = licence_mix_error(config.licence, terms_summary(builder.terms)["licences"],
                                ships_images=config.images != "none")
    if refusal:
        raise ReleaseConfigError(refusal + "; nothing was released")
    if builder.official and not builder.official.lines["test"]:
        na = builder.na_counts["dropped"]
        raise ReleaseConfigError(
            "the official layout's test split is empty"
            + (f" ({na} test image(s) dropped by --na drop)" if na else
               f" (none of the {n_rows} selected image(s) went to test)")
            + ": its scripts evaluate on test_label.jsonl; select more images, raise the "
            "test ratio, choose another --na, or leave the official format out"
        )


def _checked_report(builder: _Builder, plan: SplitPlan, report: dict) -> dict:
    """``report`` with what the written release shows: its checks (refused if they break a
    promise), its terms, its image files, the rows withheld and the warnings."""
    checks = {**builder.checks(plan.history), **report["verified"]}
    _verify(checks)
    return {
        **report,
        "terms": {"declared": builder.config.licence or None, **terms_summary(builder.terms)},
        "checks": checks,
        "image_files": {"written": builder.n_image_files, "linked": builder.n_linked},
        "withheld": [{"image_id": i, **w} for i, w in sorted(plan.withheld.items())],
        "warnings": list(plan.warnings),
    }


def _write_documents(builder: _Builder, official: dict[str, Any] | None, *, config_dict: dict,
                     extra: dict, platform_version: str, report: dict,
                     earlier: Iterable[ReleaseFiles] | None) -> dict[str, dict[str, int]]:
    """The datasheet and the dataset card; answers the split counts they state."""
    config, stats = builder.config, builder.stats
    layout = layout_lines(config, official)
    write_datasheet(builder.log, stats, config_dict, extra, platform_version, layout, report,
                    report["about"], earlier)
    split_counts = stats.split_counts()
    write_card(builder.log, config, split_counts, platform_version=platform_version,
               layout=layout, sources=list(stats.source_counts()),
               summary=summary(report["about"], config_dict), terms=report["terms"])
    return split_counts


def _counts(builder: _Builder, n_rows: int, split_counts: dict[str, dict[str, int]],
            official: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest's counts: images and files, per split, kind and source."""
    names, kinds = builder.config.splits, (KIND_OVERALL, KIND_EXPERT)
    return {
        "images": n_rows,
        "image_files": builder.n_image_files,
        "splits": {s: split_counts[s]["total"] for s in names},
        "kinds": {k: sum(c[k] for c in split_counts.values()) for k in kinds},
        "split_kinds": {s: {k: split_counts[s][k] for k in kinds} for s in names},
        "sources": builder.stats.source_counts(),
        **({"official": official} if official else {}),
    }
