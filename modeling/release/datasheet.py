"""Datasheet of a release (Markdown and HTML) with per-dimension score distribution plots.

Statistics are accumulated batch by batch (memory flat in the number of images). Plots are SVG
written here, with fixed number formatting, so the files are byte-identical for the same input.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from typing import Any

import numpy as np

from humanbeauty.standard import DIMENSIONS, LEVEL_THRESHOLDS, LEVELS

from .records import COL, DIM_COLS, KIND_EXPERT, KIND_OVERALL, KINDS

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
    blocks: list[tuple] = [("h2", "Checks"), ("list", _check_sentences(report["checks"], total))]
    if report["warnings"]:
        blocks += [("h2", "Warnings"), ("list", report["warnings"])]
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
        blocks += [("h2", "Left out"), ("list", left)]
    return blocks


def _blocks(
    stats: Stats, config: dict, extra_config: dict, platform_version: str, layout: list[str],
    report: dict,
) -> list[tuple]:
    name, version = config["name"], config["version"]
    split_counts = stats.split_counts()
    total = sum(c["total"] for c in split_counts.values())
    requested = config["split"]
    off = max((abs(c["total"] / total - requested[s]) * 100 for s, c in split_counts.items()),
              default=0.0) if total else 0.0
    blocks: list[tuple] = [
        ("h1", f"{name} {version}: datasheet"),
        ("p", f"A HumanBeauty dataset release of {total:,} images, built by the HumanBeauty "
              f"platform {platform_version}. Checksums of every file are in manifest.json."),
        ("h2", "Configuration"),
        ("table", ["setting", "value"],
         [[k, json.dumps(v, sort_keys=True)] for k, v in config.items()]
         + [[k, json.dumps(v, sort_keys=True)] for k, v in sorted(extra_config.items())]),
        ("h2", "Splits"),
        ("p", f"Whole near-duplicate clusters were assigned per stratum (source x "
              f"{config['score_bins']} overall-score bins); the largest difference between a "
              f"split's share and the requested ratio is {off:.1f} points."),
        ("table", ["split", KIND_LABELS[KIND_OVERALL], KIND_LABELS[KIND_EXPERT], "total",
                   "share", "requested"],
         [[s, f"{c[KIND_OVERALL]:,}", f"{c[KIND_EXPERT]:,}", f"{c['total']:,}",
           f"{c['total'] / total:.3f}" if total else "-", f"{requested[s]:.3f}"]
          for s, c in split_counts.items()]),
        *_report_blocks(report, total),
        ("h2", "Sources"),
        ("table", ["source", KIND_LABELS[KIND_OVERALL], KIND_LABELS[KIND_EXPERT],
                   *stats.splits, "total"],
         [[src, f"{c[KIND_OVERALL]:,}", f"{c[KIND_EXPERT]:,}",
           *(f"{c[s]:,}" for s in stats.splits), f"{c['total']:,}"]
          for src, c in stats.source_counts().items()]),
        ("h2", "Scores"),
        ("p", "Consensus scores in [0, 1]; the overall score of every image (the comprehensive "
              "score for 12-dim images) and each dimension over the 12-dim images. 'not "
              "applicable' counts nulls (e.g. no visible face). Levels: bad < 0.2 <= poor < 0.4 "
              "<= fair < 0.6 <= good < 0.8 <= excellent."),
    ]
    summary = stats.measure_summary()
    rows = []
    for key, label in MEASURES:
        s = summary[key]
        rows.append([label, f"{s['rated']:,}", f"{s['not_applicable']:,}",
                     "-" if s["mean"] is None else f"{s['mean']:.3f}",
                     "-" if s["std"] is None else f"{s['std']:.3f}",
                     *(f"{s['levels'][lv]:,}" for lv in LEVELS)])
    blocks.append(("table", ["measure", "rated", "not applicable", "mean", "std", *LEVELS], rows))
    blocks.append(("h2", "Score distributions"))
    blocks.append(("p", "Share of each split's images per 0.05-wide bin."))
    for m, (key, label) in enumerate(MEASURES):
        blocks.append(("img", f"datasheet/{key}.svg", label, plot_svg(stats, m, label)))
    blocks.append(("h2", "Files"))
    blocks.append(("list", layout))
    return blocks


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
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #ccc;"
        "padding:.2rem .5rem;text-align:left}figure{display:inline-block;margin:.3rem}</style>",
        "</head><body>",
    ]
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "p"):
            out.append(f"<{kind}>{e(block[1])}</{kind}>")
        elif kind == "table":
            head = "".join(f"<th>{e(str(c))}</th>" for c in block[1])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>")
            out.extend("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>"
                       for r in block[2])
            out.append("</tbody></table>")
        elif kind == "img":
            out.append(f"<figure>{block[3].strip()}</figure>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in block[1]) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_datasheet(log, stats: Stats, config: dict, extra_config: dict, platform_version: str,
                    layout: list[str], report: dict) -> None:
    """``report``: {"checks", "warnings", "excluded", "withheld"} as in the manifest."""
    blocks = _blocks(stats, config, extra_config, platform_version, layout, report)
    for block in blocks:
        if block[0] == "img":
            log.write_bytes(block[1], block[3].encode())
    log.write_bytes("datasheet.md", render_markdown(blocks).encode())
    title = f"{config['name']} {config['version']}: datasheet"
    log.write_bytes("datasheet.html", render_html(blocks, title).encode())
