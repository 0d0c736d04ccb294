"""Datasheet of a release (Markdown and HTML) with per-dimension score distribution plots.

Statistics are accumulated batch by batch (memory flat in the number of images). Plots are SVG
written here, with fixed number formatting, so the files are byte-identical for the same input.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from humanbeauty.standard import DIMENSIONS, LEVEL_THRESHOLDS, LEVELS

from . import withdrawal
from .records import COL, DIM_COLS, KIND_EXPERT, KIND_OVERALL, KINDS
from .store import ReleaseFiles

N_BINS = 20
MEASURES: tuple[tuple[str, str], ...] = (
    ("overall", "Overall score (all images)"),
    *((d.key, f"{d.index}. {d.name}") for d in DIMENSIONS),
)
_MEASURE_COLS = (COL["overall"], *DIM_COLS)
COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}
KIND_LABELS = {KIND_OVERALL: "overall-only (58K style)", KIND_EXPERT: "12-dim (50K style)"}


class Stats:
    """Counts per split/source/kind and, per split and measure, a 20-bin histogram on [0, 1],
    level counts, sums for mean/std and the number of null ("not applicable") values."""

    def __init__(self, splits: tuple[str, ...]):
        self.splits = splits
        shape = (len(splits), len(MEASURES))
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.hist = np.zeros((*shape, N_BINS), dtype=np.int64)
        self.levels = np.zeros((*shape, len(LEVELS)), dtype=np.int64)
        self.rated = np.zeros(shape, dtype=np.int64)
        self.null = np.zeros(shape, dtype=np.int64)
        self.total = np.zeros(shape, dtype=np.float64)
        self.total_sq = np.zeros(shape, dtype=np.float64)

    def add_batch(self, split: str, columns: list[tuple]) -> None:
        s = self.splits.index(split)
        expert = np.asarray(columns[COL["is_expert"]], dtype=bool)
        thresholds = np.asarray(LEVEL_THRESHOLDS)
        for m, col in enumerate(_MEASURE_COLS):
            values = np.asarray(columns[col], dtype=np.float64)  # None -> NaN
            if m > 0:  # a dimension: only 12-dim images have one
                values = values[expert]
            ok = ~np.isnan(values)
            v = values[ok]
            self.null[s, m] += int((~ok).sum())
            self.rated[s, m] += v.size
            self.total[s, m] += float(v.sum())
            self.total_sq[s, m] += float((v * v).sum())
            self.hist[s, m] += np.bincount(
                np.minimum((v * N_BINS).astype(np.int64), N_BINS - 1), minlength=N_BINS
            )
            self.levels[s, m] += np.bincount(
                np.searchsorted(thresholds, v, side="right"), minlength=len(LEVELS)
            )

    # Summaries -----------------------------------------------------------------------------

    def split_counts(self) -> dict[str, dict[str, int]]:
        out = {s: {k: 0 for k in KINDS} for s in self.splits}
        for (split, _source, kind), n in self.counts.items():
            out[split][kind] += n
        for s in self.splits:
            out[s]["total"] = sum(out[s][k] for k in KINDS)
        return out

    def source_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (split, source, kind), n in sorted(self.counts.items(), key=lambda kv: kv[0][1]):
            entry = out.setdefault(source, {**{s: 0 for s in self.splits},
                                            **{k: 0 for k in KINDS}, "total": 0})
            entry[split] += n
            entry[kind] += n
            entry["total"] += n
        return out

    def measure_summary(self) -> dict[str, dict[str, Any]]:
        """Per measure over all splits: rated, null, mean, std (6 decimals), level counts."""
        out = {}
        for m, (key, _label) in enumerate(MEASURES):
            rated = int(self.rated[:, m].sum())
            total = float(self.total[:, m].sum())
            total_sq = float(self.total_sq[:, m].sum())
            mean = total / rated if rated else None
            var = max(total_sq / rated - mean * mean, 0.0) if rated else None
            out[key] = {
                "rated": rated,
                "not_applicable": int(self.null[:, m].sum()),
                "mean": None if mean is None else round(mean, 6),
                "std": None if var is None else round(var**0.5, 6),
                "levels": dict(zip(LEVELS, self.levels[:, m].sum(axis=0).tolist(), strict=True)),
            }
        return out


# Plots -------------------------------------------------------------------------------------

def plot_svg(stats: Stats, m: int, title: str) -> str:
    """Per split, the share of images in each of 20 bins of [0, 1], as step lines."""
    w, h, left, right, top, bottom = 440, 230, 44, 12, 28, 44
    pw, ph = w - left - right, h - top - bottom
    shares = []
    for s in range(len(stats.splits)):
        counts = stats.hist[s, m]
        n = int(counts.sum())
        shares.append(counts / n if n else counts.astype(np.float64))
    ymax = max([float(x.max()) for x in shares] + [0.0])
    ymax = 0.05 * np.ceil(ymax / 0.05) if ymax > 0 else 0.05

    def px(x: float) -> str:
        return f"{left + x * pw:.1f}"

    def py(y: float) -> str:
        return f"{top + ph - y / ymax * ph:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="10">',
        f'<text x="{w / 2:.1f}" y="16" text-anchor="middle" font-size="12">'
        f"{html.escape(title)}</text>",
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>',
    ]
    for t, name in zip((0.0, *LEVEL_THRESHOLDS), LEVELS, strict=True):
        if t > 0:
            parts.append(
                f'<line x1="{px(t)}" y1="{top}" x2="{px(t)}" y2="{top + ph}" '
                'stroke="#ccc" stroke-dasharray="3,3"/>'
            )
        parts.append(
            f'<text x="{px(t + 0.1)}" y="{top + ph + 26}" text-anchor="middle" '
            f'fill="#666">{name}</text>'
        )
    for i in range(6):
        x = i / 5
        parts.append(
            f'<text x="{px(x)}" y="{top + ph + 13}" text-anchor="middle">{x:.1f}</text>'
        )
    for i in range(3):
        y = ymax * i / 2
        parts.append(f'<text x="{left - 4}" y="{py(y)}" text-anchor="end">{y:.3f}</text>')
    for s, split in enumerate(stats.splits):
        points = []
        for b in range(N_BINS):
            y = py(float(shares[s][b]))
            points.append(f"{px(b / N_BINS)},{y} {px((b + 1) / N_BINS)},{y}")
        parts.append(
            f'<polyline fill="none" stroke="{COLORS[split]}" stroke-width="1.5" '
            f'points="{" ".join(points)}"/>'
        )
        n = int(stats.hist[s, m].sum())
        parts.append(
            f'<text x="{left + pw - 4}" y="{top + 12 + 12 * s}" text-anchor="end" '
            f'fill="{COLORS[split]}">{split} (n={n})</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# Documents ---------------------------------------------------------------------------------

LISTED = 200  # ids listed in the datasheet per list; the manifest lists them all
EXCLUDED_LABELS = {
    "open_flag": "with an open flag (a rater flagged it; no reviewer has decided since)",
    "reviewer_excluded": "excluded by a reviewer",
}


def _ids(ids: list[int]) -> str:
    more = f" and {len(ids) - LISTED:,} more (all in manifest.json)" if len(ids) > LISTED else ""
    return ", ".join(map(str, ids[:LISTED])) + more


def _check_sentences(checks: dict, total: int) -> list[str]:
    """Sentences made from what the build counted; none is true by default."""
    n = checks.get("images", total)
    out = []
    if "clustered" in checks:
        now = checks.get("hashed_now", 0)
        out.append(
            f"{checks['hashed']:,} of {n:,} images have perceptual hashes and "
            f"{checks['clustered']:,} of {n:,} were clustered against the whole image pool "
            f"before the split, checked by this build ({now:,} hashed and clustered by it)."
        )
    else:
        out.append(
            f"{checks['hashed']:,} of {n:,} images have a perceptual hash. Whether every image "
            "was clustered against the pool was not checked by this build: near-duplicates "
            "that were never clustered can sit in different splits."
        )
    out.append(
        f"Near-duplicate clusters in this release: {checks['near_duplicate_clusters']:,} "
        f"({checks['images_in_near_duplicate_clusters']:,} images). Clusters straddling two "
        f"splits, counted over the written split assignment: {checks['straddling_clusters']:,}."
    )
    if checks.get("earlier_versions_given"):
        out.append(
            f"Earlier versions: {checks['earlier_test_in_release']:,} images of this release "
            f"were in an earlier test split, {checks['earlier_test_now_in_test']:,} of them "
            f"are in test; {checks['earlier_trained_in_release']:,} were in an earlier train "
            f"or val split, {checks['trained_before_now_in_test']:,} of them are in test "
            "(counted over the written assignment)."
        )
    else:
        out.append("No earlier version's splits were given to this build to keep.")
    consensus = checks.get("consensus_refreshed")
    if consensus is not None:
        out.append(
            "Consensus labels were brought up to date just before they were read: "
            + ", ".join(f"{p}: {k:,} image(s) recomputed" if k else f"{p}: already up to date"
                        for p, k in sorted(consensus.items()))
            + "."
        )
    return out


def _report_blocks(report: dict, total: int) -> list[tuple]:
    blocks: list[tuple] = [("h3", "Checks"), ("list", _check_sentences(report["checks"], total))]
    if report["warnings"]:
        blocks += [("h3", "Warnings"), ("list", report["warnings"])]
    left: list[str] = []
    for reason, ids in report["excluded"].items():
        label = EXCLUDED_LABELS.get(reason, reason.replace("_", " "))
        left.append(f"{len(ids):,} image(s) {label}" + (f": {_ids(ids)}" if ids else ""))
    if report["withheld"]:
        ids = [w["image_id"] for w in report["withheld"]]
        left.append(
            f"Withheld by the version promise, {len(ids):,} image(s) an earlier version trained "
            f"on whose near-duplicate cluster is in test: {_ids(ids)}"
        )
    if left:
        blocks += [("h3", "Left out"), ("list", left)]
    return blocks


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _interval(point: float | None, ci: list[float] | None) -> str:
    if point is None:
        return "undefined"
    return _fmt(point) + ("" if ci is None else f" [{_fmt(ci[0])}, {_fmt(ci[1])}]")


NOT_GIVEN = "not given to this build"


def _motivation(name: str) -> list[tuple]:
    return [
        ("h2", "Motivation"),
        ("p", f"{name} was built with the HumanBeauty platform to train and evaluate models "
              "that assess the aesthetics of images of people (human image aesthetics "
              "assessment) on the HumanBeauty standard: an overall score for every image and, "
              "for expert-rated images, 12 dimensions. Who requested and funded this release "
              "is not recorded by the platform."),
    ]


def _composition(stats: Stats, config: dict, report: dict) -> list[tuple]:
    split_counts = stats.split_counts()
    total = sum(c["total"] for c in split_counts.values())
    requested = config["split"]
    off = max((abs(c["total"] / total - requested[s]) * 100 for s, c in split_counts.items()),
              default=0.0) if total else 0.0
    blocks: list[tuple] = [
        ("h2", "Composition"),
        ("p", f"{total:,} images: each instance is one image with its scores. Whole "
              "near-duplicate clusters were assigned per stratum "
              f"(source x {config['score_bins']} overall-score bins); the largest difference "
              f"between a split's share and the requested ratio is {off:.1f} points."),
        ("h3", "Splits"),
        ("table", ["split", KIND_LABELS[KIND_OVERALL], KIND_LABELS[KIND_EXPERT], "total",
                   "share", "requested"],
         [[s, f"{c[KIND_OVERALL]:,}", f"{c[KIND_EXPERT]:,}", f"{c['total']:,}",
           f"{c['total'] / total:.3f}" if total else "-", f"{requested[s]:.3f}"]
          for s, c in split_counts.items()]),
        ("h3", "Sources and kinds"),
        ("table", ["source", KIND_LABELS[KIND_OVERALL], KIND_LABELS[KIND_EXPERT],
                   *stats.splits, "total"],
         [[src, f"{c[KIND_OVERALL]:,}", f"{c[KIND_EXPERT]:,}",
           *(f"{c[s]:,}" for s in stats.splits), f"{c['total']:,}"]
          for src, c in stats.source_counts().items()]),
        *_report_blocks(report, total),
        ("h3", "Scores"),
        ("p", "Consensus scores in [0, 1]; the overall score of every image (the comprehensive "
              "score for 12-dim images) and each dimension over the 12-dim images. 'not "
              "applicable' counts nulls (e.g. no visible face). Levels: bad < 0.2 <= poor < 0.4 "
              "<= fair < 0.6 <= good < 0.8 <= excellent."),
    ]
    summary = stats.measure_summary()
    rows = []
    for key, label in MEASURES:
        s = summary[key]
        rows.append([label, f"{s['rated']:,}", f"{s['not_applicable']:,}", _fmt(s["mean"]),
                     _fmt(s["std"]), *(f"{s['levels'][lv]:,}" for lv in LEVELS)])
    blocks.append(("table", ["measure", "rated", "not applicable", "mean", "std", *LEVELS], rows))
    blocks.append(("h3", "Score distributions"))
    blocks.append(("p", "Share of each split's images per 0.05-wide bin."))
    for m, (key, label) in enumerate(MEASURES):
        blocks.append(("img", f"datasheet/{key}.svg", label, plot_svg(stats, m, label)))
    return blocks


def _source_blocks(src: dict) -> list[tuple]:
    scale = src.get("score_scale")
    facts = [
        f"Kind: {src['kind']}; imported from: {src.get('location') or 'not recorded'}.",
        f"Description: {src.get('description') or 'none recorded'}.",
        f"Licence: {src.get('licence') or 'not recorded by the platform'}.",
        ("Raw scores min-max normalised to [0, 1] from the scale "
         f"[{scale[0]:g}, {scale[1]:g}]." if scale else "No raw score scale is recorded."),
    ]
    job = src.get("filter_job")
    if job is None:
        facts.append("No finished filter job: its images came in through rating projects only.")
        return [("h3", f"Source {src['name']}"), ("list", facts)]
    c = job["counts"]
    facts.append(f"Filter job {job['id']} (the source's newest finished one, which the release "
                 f"takes): {c.get('accepted', 0):,} accepted, {c.get('rejected', 0):,} "
                 f"rejected, {c.get('error', 0):,} error(s).")
    blocks = [("h3", f"Source {src['name']}"), ("list", facts)]
    if job["reasons"]:
        blocks.append(("table", ["rejection reason", "images"],
                       [[r, f"{n:,}"] for r, n in job["reasons"].items()]))
    blocks.append(("table", ["filter setting", "value"],
                   [[k, json.dumps(v, sort_keys=True)] for k, v in sorted(job["config"].items())]))
    return blocks


def _collection(about: dict | None) -> list[tuple]:
    blocks: list[tuple] = [("h2", "Collection process")]
    if about is None:
        return [*blocks, ("p", f"Sources and their provenance: {NOT_GIVEN}.")]
    blocks.append(("p", "Images come from imported sources (public datasets, manifests, "
                        "folders, uploads), were decoded, hashed and clustered into "
                        "near-duplicate groups, and passed the source's filter job before any "
                        "release or rating project could take them."))
    for project in about.get("projects", []):
        per = project.get("image_sources") or {}
        blocks.append(("p", f"Rating project {project['name']} rated images of: "
                            + (", ".join(f"{k} ({n:,})" for k, n in per.items()) or "no source")
                            + "."))
    for src in about.get("sources", []):
        blocks += _source_blocks(src)
    return blocks


def _standard_blocks() -> list[tuple]:
    rows = [[str(d.index), d.name, d.key, ", ".join(d.children) or "-",
             "yes" if d.nullable else "no"] for d in DIMENSIONS]
    return [
        ("p", "The HumanBeauty standard: an overall score for every image; expert-rated images "
              "have 12 dimensions in the official order, each a score in [0, 1] with five "
              "verbal levels. Parent scores aggregate their children; 'not applicable' is "
              "allowed where the part is not visible."),
        ("table", ["#", "dimension", "key", "aggregates", "may be not applicable"], rows),
    ]


def _project_blocks(p: dict) -> list[tuple]:
    r, cert, gold = p["raters"], p["certification"], p["gold"]
    rule = (f"raters pass a qualification test: per dimension a mean absolute error of at most "
            f"{cert['qual_max_mae']:g} and a Spearman correlation of at least "
            f"{cert['qual_min_srcc']:g} against reference scores"
            if cert["track"] else
            "the project has no qualification track: joining it certified a rater")
    gold_text = (f"{gold['answers']:,} hidden gold answers, mean absolute error "
                 f"{_fmt(gold['mae'])} (raters above {gold['max_mae']:g} are flagged once they "
                 f"have {gold['min_n']} answers; gold rate {gold['rate']:g})"
                 if gold["answers"] else
                 f"no gold answers recorded (gold rate {gold['rate']:g})")
    s = p.get("screening") or {}
    screening = (f"method {s.get('method', 'unknown')}, judged once a rater shares "
                 f"{s.get('min_shared', '?')} images; raters excluded from the consensus: "
                 f"{r['excluded']}" + (f"; {s['warning']}" if s.get("warning") else ""))
    blocks: list[tuple] = [
        ("h3", f"Project {p['name']}"),
        ("list", [
            f"Raters who rated production images: {r['rated']:,} ({r['certified']:,} "
            f"certified members of {r['members']:,}); {p['overlap']} ratings wanted per image.",
            f"Certification rule: {rule}.",
            f"Gold accuracy: {gold_text}.",
            f"Screening: {screening}.",
        ]),
        ("p", "Guidelines shown to raters:"),
        ("pre", p.get("guidelines") or "(the project has no guidelines text)"),
    ]
    agreement = p.get("agreement") or {}
    if not agreement:
        blocks.append(("p", "Agreement: no production rating yet, so no figure."))
        return blocks
    blocks.append(("p", "Agreement per dimension over the project's production ratings (the "
                        "stored figures; in brackets 95% percentile bootstrap intervals over "
                        f"images, {p.get('agreement_resamples', 0)} resamples). ICC(2,k) takes "
                        "k = the overlap rating slots."))
    rows = []
    for d in DIMENSIONS:
        a = agreement.get(d.key) or {}
        rows.append([d.name, f"{a.get('n_images', 0):,}",
                     *(_interval(a.get(f), a.get(f"{f}_ci"))
                       for f in ("krippendorff_alpha", "icc2_1", "icc2_k"))])
    blocks.append(("table", ["dimension", "images rated twice or more",
                             "Krippendorff's alpha (interval)", "ICC(2,1)", "ICC(2,k)"], rows))
    return blocks


def _annotation(about: dict | None) -> list[tuple]:
    blocks: list[tuple] = [("h2", "Annotation"), *_standard_blocks()]
    if about is None:
        return [*blocks, ("p", f"Raters, guidelines and agreement: {NOT_GIVEN}.")]
    blocks.append(("p", "Overall-only images carry their source's own score (min-max "
                        "normalised); the platform's raters did not rate them."))
    projects = about.get("projects", [])
    if not projects:
        blocks.append(("p", "No rating project is in this release: no image was rated on the "
                            "platform."))
    for p in projects:
        blocks += _project_blocks(p)
    return blocks


def _image_files(config: dict, files: dict[str, int]) -> str:
    """What became of the images, as the build counted it."""
    if config["images"] == "none":
        return "Images: none released (labels only)."
    n, linked = files["written"], files["linked"]
    if not n:
        return "Images: inside the WebDataset shards only (no separate image files)."
    return (f"Images: {n:,} image files, {linked:,} of them hard links to the stored files "
            f"(--images {config['images']}), {n - linked:,} written.")


def _preprocessing(config: dict, files: dict[str, int]) -> list[tuple]:
    side = config.get("max_side")
    return [
        ("h2", "Preprocessing"),
        ("list", [
            f"Resizing: images whose longer side exceeds {side} pixels were shrunk to it "
            "(aspect kept) and re-encoded as JPEG; the others are the stored bytes."
            if side else "Resizing: none; released images are the stored bytes, unchanged.",
            _image_files(config, files),
            "Not-applicable dimensions stay null in Parquet and CSV and are masked in "
            f"WebDataset; the official layout (--na {config.get('na', 'fill')}): "
            + NA_TEXT[config.get("na", "fill")] + ".",
            "Near-duplicates were clustered by perceptual hash; whole clusters go to one split.",
        ]),
    ]


NA_TEXT = {"fill": "filled from the nearest rated parent and flagged in score_mask",
           "drop": "such images are left out of that layout",
           "overall": "such images are written as overall-only lines"}


def _uses() -> list[tuple]:
    return [
        ("h2", "Uses"),
        ("p", "Intended: training and evaluating image aesthetics assessment models on the "
              "HumanBeauty standard, and studying the agreement of human ratings."),
        ("p", "Out of scope: judging, ranking or selecting real people (hiring, dating, "
              "admission, policing, ...), identifying people, inferring protected "
              "attributes, and any use the source datasets' licences forbid. The scores are "
              "the opinion of the raters of this platform about photographs, not a property "
              "of the people shown."),
    ]


def _counted(by_key: dict[str, int] | None) -> str:
    return ", ".join(f"{k} ({n})" for k, n in (by_key or {}).items()) or "none counted"


def _distribution(config: dict, layout: list[str], terms: dict | None) -> list[tuple]:
    declared = config.get("licence") or None
    if terms is None:  # a build from before images carried their terms
        licences = ("The licences of the source images are listed under Collection process "
                    "where recorded.")
    else:
        licences = (f"Images per licence, as this build counted them: "
                    f"{_counted(terms.get('licences'))}; per image in the split files' "
                    "`licence` column and per source in manifest.json `terms`.")
    return [
        ("h2", "Distribution and licence"),
        ("p", f"Licence given to this release: {config['license']}. "
              + (f"Licence declared: {declared}; the build refused any image whose terms it "
                 "does not allow. " if declared else
                 "No licence declared (build option --licence): nothing was refused for its "
                 "terms. ")
              + licences
              + f" Formats: {', '.join(config['formats'])}; every file's sha256 is in "
                "manifest.json."),
        ("list", layout),
    ]


def _maintenance(about: dict | None, version: str) -> list[tuple]:
    blocks: list[tuple] = [("h2", "Maintenance")]
    prev = None if about is None else about.get("previous")
    if about is None:
        return [*blocks, ("p", f"Earlier versions: {NOT_GIVEN}.")]
    if prev is None:
        return [*blocks, ("p", f"Version {version} is the first ready version of this name: "
                               "nothing to compare with.")]
    c = prev["counts"]
    moved = ", ".join(f"{k}: {n:,}" for k, n in prev.get("moved_by_splits", {}).items())
    return [*blocks, ("p", f"Against version {prev['version']}: {c['added']:,} images added, "
                           f"{c['removed']:,} removed, {c['withheld']:,} withheld by the "
                           f"version promise, {c['moved']:,} moved between splits"
                           + (f" ({moved})" if moved else "") + f", {c['unchanged']:,} "
                           "unchanged. `release diff` lists them by id.")]


def _withdrawn_sentence(withdrawn: int) -> str:
    if not withdrawn:
        return ("No image has been withdrawn from an earlier version of this name on a "
                "takedown request.")
    return (f"{withdrawn:,} image(s) were withdrawn from earlier versions of this name on "
            "takedown requests (each such version lists them in withdrawn.jsonl beside its "
            "manifest, and its download leaves them out); this version does not hold them.")


def _consent_sentence(terms: dict | None) -> str:
    bases = (terms or {}).get("consent_bases") or {}
    if not bases or set(bases) == {"unknown"}:
        return ("The platform does not record whether the people shown consented to being "
                "photographed, to the images' publication or to their use here: nothing about "
                "consent was verified by this build.")
    return (f"Consent basis of the images, as recorded for them or their source: "
            f"{_counted(bases)}. These are the records the platform holds (consent references "
            "are kept per image in the platform); this build did not verify the consent "
            "itself.")


def _consent(about: dict | None, withdrawn: int, terms: dict | None = None) -> list[tuple]:
    contact = None if about is None else about.get("contact")
    return [
        ("h2", "Consent and takedown"),
        ("p", _consent_sentence(terms)),
        ("p", f"Takedown requests: {contact}." if contact else
              "No takedown contact was given for this release (build option --contact)."),
        ("p", _withdrawn_sentence(withdrawn)),
    ]


def summary(about: dict | None, config: dict) -> list[str]:
    """The datasheet in a few sentences, for the dataset card."""
    out = ["Intended for training and evaluating image aesthetics assessment models on the "
           "HumanBeauty standard; not for judging, ranking or identifying real people."]
    if about is not None:
        for p in about.get("projects", []):
            alpha = (p.get("agreement") or {}).get("comprehensive_aesthetic", {}).get(
                "krippendorff_alpha")
            out.append(f"Project {p['name']}: {p['raters']['rated']:,} raters, "
                       f"{p['overlap']} ratings wanted per image; Krippendorff's alpha of the "
                       "comprehensive score "
                       + ("undefined (too few shared ratings)." if alpha is None
                          else f"{_fmt(alpha)}."))
        prev = about.get("previous")
        if prev is not None:
            c = prev["counts"]
            out.append(f"Since version {prev['version']}: {c['added']:,} added, "
                       f"{c['removed']:,} removed, {c['withheld']:,} withheld, "
                       f"{c['moved']:,} moved.")
    out.append(f"Licence {config['license']}; source licences where recorded are in the "
               "datasheet. Consent of the people shown is not recorded by the platform.")
    contact = None if about is None else about.get("contact")
    out.append(f"Takedown requests: {contact}." if contact else
               "No takedown contact was given for this release.")
    return out


def _configuration(config: dict, extra_config: dict) -> list[tuple]:
    """The build's settings once each; the selection keys the Django side added after."""
    rows = [[k, json.dumps(v, sort_keys=True)] for k, v in config.items()]
    rows += [[k, json.dumps(v, sort_keys=True)] for k, v in sorted(extra_config.items())
             if k not in config]
    return [("h2", "Configuration"), ("table", ["setting", "value"], rows)]


def _blocks(
    stats: Stats, config: dict, extra_config: dict, platform_version: str, layout: list[str],
    report: dict, about: dict | None = None, withdrawn: int = 0,
) -> list[tuple]:
    name, version = config["name"], config["version"]
    total = sum(c["total"] for c in stats.split_counts().values())
    return [
        ("h1", f"{name} {version}: datasheet"),
        ("p", f"A HumanBeauty dataset release of {total:,} images, built by the HumanBeauty "
              f"platform {platform_version}, described after 'Datasheets for Datasets' (Gebru "
              "et al.). A section says so where the platform knows nothing. Checksums of "
              "every file are in manifest.json."),
        *_motivation(name),
        *_composition(stats, config, report),
        *_collection(about),
        *_annotation(about),
        *_preprocessing(config, report["image_files"]),
        *_uses(),
        *_distribution(config, layout, report.get("terms")),
        *_maintenance(about, version),
        *_consent(about, withdrawn, report.get("terms")),
        *_configuration(config, extra_config),
    ]


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list[tuple]) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h1":
            out.append(f"# {block[1]}\n")
        elif kind == "h2":
            out.append(f"## {block[1]}\n")
        elif kind == "h3":
            out.append(f"### {block[1]}\n")
        elif kind == "pre":
            fence = "````" if "```" in block[1] else "```"
            out.append(f"{fence}text\n{block[1].rstrip()}\n{fence}\n")
        elif kind == "p":
            out.append(f"{block[1]}\n")
        elif kind == "table":
            header, rows = block[1], block[2]
            out.append("| " + " | ".join(map(_md_cell, header)) + " |")
            out.append("|" + "|".join("---" for _ in header) + "|")
            out.extend("| " + " | ".join(map(_md_cell, r)) + " |" for r in rows)
            out.append("")
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})\n")
        elif kind == "list":
            out.extend(f"- {item}" for item in block[1])
            out.append("")
    return "\n".join(out)


def render_html(blocks: list[tuple], title: str) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;"
        "padding:.2rem .5rem;text-align:left}"
        "figure{display:inline-block;margin:.3rem;max-width:calc(100% - .6rem)}"
        "body,pre{overflow-wrap:anywhere}pre{white-space:pre-wrap}"
        "svg{display:block;max-width:100%;height:auto}"
        ".wide{overflow-x:auto}</style>",
        "</head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p"):
            out.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "pre":
            out.append(f"<pre>{e(block[1])}</pre>")
        elif kind == "table":
            head = "".join(f"<th>{e(str(c))}</th>" for c in block[1])
            out.append(f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>')
            out.extend("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>"
                       for r in block[2])
            out.append("</tbody></table></div>")
        elif kind == "img":
            out.append(f"<figure>{block[3].strip()}</figure>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in block[1]) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_datasheet(log, stats: Stats, config: dict, extra_config: dict, platform_version: str,
                    layout: list[str], report: dict, about: dict | None = None,
                    earlier: Iterable[ReleaseFiles] | None = None) -> None:
    """``report``: {"checks", "warnings", "excluded", "withheld"} as in the manifest;
    ``about``: what the caller knows beyond the rows (sources, projects, the previous
    version, the contact; see ``build_release``), None when nothing. The images withdrawn
    from earlier versions of the name are counted from their notices: those of ``earlier``
    (the other versions, wherever they are kept) or, when None, beside the folder the
    release is built in (``withdrawal.withdrawn_from_earlier``)."""
    if earlier is None:
        withdrawn = withdrawal.withdrawn_from_earlier(Path(log.root).parent, config["name"],
                                                      config["version"])
    else:
        withdrawn = withdrawal.withdrawn_from(earlier, config["name"], config["version"])
    blocks = _blocks(stats, config, extra_config, platform_version, layout, report, about,
                     withdrawn)
    for block in blocks:
        if block[0] == "img":
            log.write_bytes(block[1], block[3].encode())
    log.write_bytes("datasheet.md", render_markdown(blocks).encode())
    title = f"{config['name']} {config['version']}: datasheet"
    log.write_bytes("datasheet.html", render_html(blocks, title).encode())
