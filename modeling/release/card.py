"""The dataset card: ``README.md`` at the release root, a Hugging Face YAML header and prose.

``datasets`` reads one format per card (it picks its reader from the files of the first
config), so the root card names the Parquet files per split (else the CSV, else the WebDataset
files) and their exact types: ``datasets.load_dataset(RELEASE_DIR)`` gives train/validation/
test with no option. ``csv/`` and ``webdataset/`` carry their own card, so
``load_dataset(RELEASE_DIR/csv)`` and ``load_dataset(RELEASE_DIR/webdataset)`` read those
formats with their types. The prose sums the release up and shows one loading snippet per
client (the tests run every snippet).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from humanbeauty.standard import DIMENSION_KEYS

from .config import N_DIMS, ReleaseConfig
from .records import COLUMNS, KIND_EXPERT, KIND_OVERALL, NO_SCORE, WDS_JSON
from .writers import WDS_IMAGE_KEY

# The files say val (the official scripts' name); loaders and the Hub say validation.
HF_SPLIT = {"train": "train", "val": "validation", "test": "test"}
CARD_FORMATS = ("parquet", "csv", "webdataset")  # the first one built is the default
TASK_CATEGORIES = ("image-classification",)  # the Hub's closest: five verbal levels per score
TAGS = ("image-aesthetics-assessment", "human-beauty", "humanbeauty")
# pandas (under ``datasets``' CSV reader) cannot read an empty field into an integer column:
# the nullable integer columns are float64 in the csv config, their values unchanged.
CSV_NULLABLE_INTS = frozenset({"cluster", *(f"{k}_n" for k in DIMENSION_KEYS)})
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
          (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))


def size_category(n: int) -> str:
    """The Hub's size category of ``n`` examples."""
    for limit, name in _SIZES:
        if n < limit:
            return name
    return "100M<n<1B"


def _feature(name: str, dtype: str) -> dict[str, Any]:
    if dtype.startswith("list:"):
        return {"name": name, "list": dtype[5:], "length": N_DIMS}
    return {"name": name, "dtype": dtype}


def features(config_name: str, images: bool) -> list[dict[str, Any]]:
    """A config's features in the card's YAML form (``datasets.Features._to_yaml_list``)."""
    if config_name == "parquet":
        return [_feature(n, t) for n, t in COLUMNS]
    if config_name == "csv":
        return [_feature(n, "float64" if n in CSV_NULLABLE_INTS else t) for n, t in COLUMNS]
    out = [{"name": "__key__", "dtype": "string"}, {"name": "__url__", "dtype": "string"}]
    if images:
        out.append({"name": WDS_IMAGE_KEY, "dtype": "image"})
    out.append({"name": "json", "struct": [_feature(n, t) for n, t in WDS_JSON]})
    return out


FOLDER_CARDS = ("csv", "webdataset")  # formats whose folder has its own card
FOLDER_VAR = {"csv": "csv", "webdataset": "wds"}
_FILES = {"parquet": "{}.parquet", "csv": "{}.csv", "webdataset": "{}-*.tar"}


def _config(fmt: str, config: ReleaseConfig, splits: list[str], digest: str, *,
            in_folder: bool) -> tuple[dict, dict]:
    """The ``configs`` and ``dataset_info`` entries of one format's files, named from the
    release root or from inside the format's folder.

    The description names the files' digest: ``datasets`` caches a local folder under its
    name and a hash of its card, so two releases with the same card in folders of the same
    name (every release's ``csv/``) would share a cache and the second would load the
    first's rows."""
    prefix = "" if in_folder else f"{fmt}/"
    files = [{"split": HF_SPLIT[s], "path": prefix + _FILES[fmt].format(s)} for s in splits]
    description = (f"{config.name} {config.version}, {fmt} files; sha256 of their list of "
                   f"checksums: {digest}")
    return ({"config_name": "default", "data_files": files, "description": description},
            {"config_name": "default", "features": features(fmt, config.shard_images)})


def default_format(config: ReleaseConfig) -> str | None:
    """The format the root card serves (``datasets`` reads one format per card)."""
    return next((f for f in CARD_FORMATS if f in config.formats), None)


def card_header(config: ReleaseConfig, split_counts: dict[str, dict[str, int]],
                fmt: str | None, digests: dict[str, str], *, in_folder: bool = False) -> dict:
    """The YAML header as data: for the release root, or for a format's own folder. An empty
    split is left out: ``datasets`` cannot hold a split with no row (it refuses to load)."""
    total = sum(c["total"] for c in split_counts.values())
    splits = [s for s in config.splits if split_counts[s]["total"]]
    header: dict[str, Any] = {
        "pretty_name": f"{config.name} {config.version}" + (f" ({fmt})" if in_folder else ""),
        "license": config.card_license,
        "task_categories": list(TASK_CATEGORIES),
        "tags": list(TAGS),
        "size_categories": [size_category(total)],
    }
    if fmt is not None:
        entry, info = _config(fmt, config, splits, digests[fmt], in_folder=in_folder)
        header["configs"] = [entry]
        header["dataset_info"] = info
    return header


def _yaml(header: dict) -> str:
    text = yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{text}---\n"


def _snippets(config: ReleaseConfig,
              split_counts: dict[str, dict[str, int]]) -> list[tuple[str, str]]:
    """(client, Python code) for each client that can read what was built; each starts by
    naming the release folder (``{name}-{version}`` in the current directory)."""
    formats = config.formats
    first = next((s for s in config.splits if split_counts[s]["total"]), config.splits[0])
    release = f"release = {f'{config.name}-{config.version}'!r}  # the path of this folder"

    def at(folder: str, name: str) -> str:
        return f'f"{{release}}/{folder}/{name}"'

    out: list[tuple[str, str]] = []
    served = default_format(config)
    if served is not None:
        lines = ["from datasets import load_dataset", "", release,
                 f"ds = load_dataset(release)  # the {served} files: "
                 + ", ".join(HF_SPLIT[s] for s in config.splits if split_counts[s]["total"])]
        lines += [f'ds_{FOLDER_VAR[f]} = load_dataset(f"{{release}}/{f}")'
                  for f in FOLDER_CARDS if f in formats and f != served]
        out.append(("datasets", "\n".join(lines)))
    if "parquet" in formats or "csv" in formats:
        lines = ["import pandas as pd", "", release]
        if "parquet" in formats:
            lines.append(f"frame = pd.read_parquet({at('parquet', f'{first}.parquet')})")
        if "csv" in formats:
            lines.append(f"frame_csv = pd.read_csv({at('csv', f'{first}.csv')})")
        out.append(("pandas", "\n".join(lines)))
    if "parquet" in formats:
        out.append(("pyarrow", "\n".join([
            "import pyarrow.parquet as pq", "", release,
            f"table = pq.read_table({at('parquet', f'{first}.parquet')})",
        ])))
    if "webdataset" in formats:
        keys = f'"{WDS_IMAGE_KEY}", "json"' if config.shard_images else '"json"'
        take = "image, record" if config.shard_images else "(record,)"
        loose = config.loose_images  # the json's path names the image file
        out.append(("webdataset", "\n".join([
            "import glob", "", "import webdataset as wds",
            *(["from PIL import Image"] if loose else []), "", release,
            f"shards = sorted(glob.glob({at('webdataset', f'{first}-*.tar')}))",
            'samples = wds.WebDataset(shards, shardshuffle=False).decode("pil")'
            f".to_tuple({keys})",
            f"{take} = next(iter(samples))",
            *(['image = Image.open(f"{release}/{record[\'path\']}")'] if loose else []),
        ])))
    return out


def _counts_table(config: ReleaseConfig, split_counts: dict[str, dict[str, int]]) -> list[str]:
    rows = ["| split | file name | overall-only | 12-dim | total |", "|---|---|---|---|---|"]
    for s in config.splits:
        c = split_counts[s]
        rows.append(f"| {HF_SPLIT[s]} | {s} | {c[KIND_OVERALL]:,} | {c[KIND_EXPERT]:,} | "
                    f"{c['total']:,} |")
    return rows


def card_text(config: ReleaseConfig, split_counts: dict[str, dict[str, int]],
              digests: dict[str, str], *,
              platform_version: str, layout: list[str],
              sources: list[str], summary: Sequence[str] = (),
              terms: Mapping[str, Any] | None = None) -> str:
    """README.md at the release root: the YAML header, then the summary."""
    served = default_format(config)
    return "\n".join([
        _yaml(card_header(config, split_counts, served, digests)),
        *_intro(config, split_counts, platform_version=platform_version, sources=sources,
                summary=summary, terms=terms),
        "## Splits", "",
        *_splits(config, split_counts),
        "## Files", "",
        *(f"- {line}" for line in layout), "",
        "## Loading", "",
        *_loading(config, split_counts, served),
        "## Columns", "",
        *_COLUMNS,
        *(_CSV_NOTE if "csv" in config.formats else ()),
        *(_WDS_NOTE if "webdataset" in config.formats else ()),
    ])


def _intro(config: ReleaseConfig, split_counts: dict[str, dict[str, int]], *,
           platform_version: str, sources: list[str], summary: Sequence[str],
           terms: Mapping[str, Any] | None) -> list[str]:
    """The title and what the release is: its images, sources, licence and summary."""
    total = sum(c["total"] for c in split_counts.values())
    experts = sum(c[KIND_EXPERT] for c in split_counts.values())
    return [
        f"# {config.name} {config.version}", "",
        f"A HumanBeauty dataset release of {total:,} images ({total - experts:,} with an overall "
        f"score only, {experts:,} rated on the 12 dimensions), built by the HumanBeauty platform "
        f"{platform_version}. Sources: {', '.join(sources) or 'none'}. "
        + licence_line(config, terms)
        + " The datasheet (datasheet.md, datasheet.html) describes how it was "
        "made; manifest.json holds the sha256 of every file.", "",
        *(f"- {line}" for line in summary), *([""] if summary else []),
    ]


def _splits(config: ReleaseConfig, split_counts: dict[str, dict[str, int]]) -> list[str]:
    """The splits' promise and, per split, its images by kind."""
    return [
        "No near-duplicate cluster straddles two splits (the build checks it; the datasheet "
        "says how the images were clustered). The files name the validation split `val`; "
        "loaders name it `validation`."
        + "".join(f" The {s} split is empty: the card leaves it out, as `datasets` cannot "
                  "hold an empty split." for s in config.splits if not split_counts[s]["total"]),
        "",
        *_counts_table(config, split_counts), "",
    ]


def _loading(config: ReleaseConfig, split_counts: dict[str, dict[str, int]],
             served: str | None) -> list[str]:
    """How to read the release: one snippet per client, or the official scripts alone."""
    if served is None:
        return ["This release holds the official HumanAesExpert layout only: read it with "
                "the official scripts (HumanBeauty/train_label.jsonl, test_label.jsonl).", ""]
    folders = [f"`{f}/`" for f in FOLDER_CARDS if f in config.formats]
    lines = [f"This card gives `datasets` the {served} files and their exact types"
             + (f"; {' and '.join(folders)} hold their own card, with their types."
                if folders else "."),
             f"Each snippet runs as it is beside this folder named "
             f"`{config.name}-{config.version}`; else set `release` to its path.", ""]
    for client, code in _snippets(config, split_counts):
        lines += [f"### {client}", "", "```python", code, "```", ""]
    return lines


_COLUMNS = (  # what the columns hold
    "One row per image: `path` (the image file, relative to this folder), `image_id`, "
    "`split` (train/val/test), `source`, `kind` (`overall` or `12dim`), `is_expert`, "
    "`overall` (the normalised overall score in [0, 1]; for 12-dim images the "
    "comprehensive score) and `overall_level`; for each of the 12 dimensions `{key}` "
    "(consensus score in [0, 1]), `{key}_std`, `{key}_n` (raters) and `{key}_level`, "
    "null for overall-only images and where a dimension does not apply; then `name`, "
    "`sha256`, `phash`, `cluster` (near-duplicate cluster, null when alone), `width`, "
    "`height`, `format` (of the original file), `original_file` (images=none only), "
    "`licence` and `consent_basis` (the image's terms: its own over its source's; "
    "`unknown` where none is recorded).", "",
    "Dimensions, in the official order: " + ", ".join(f"`{k}`" for k in DIMENSION_KEYS)
    + ".", "",
)
_CSV_NOTE = (
    "CSV: an empty field is a null. Read through its card, the nullable integer columns "
    "(`cluster`, `{key}_n`) are float64: the CSV reader cannot hold an empty field in an "
    "integer column.", "",
)
_WDS_NOTE = (
    "WebDataset: the json has no null, so readers that guess types from a few samples guess "
    "them right: the same head and tail fields (`phash` \"\" and `cluster` -1 where none, "
    "`original_file` \"\" unless images=none), and the dimensions as lists of "
    f"{N_DIMS} in the official order: `scores` ({NO_SCORE} where not rated), `score_mask` "
    f"(true = rated), `std` ({NO_SCORE} where unknown), `n` (0 where none) and `levels` "
    f"(\"\" where not rated). Where the shards hold the images (no other format reads "
    f"files), the image is under `{WDS_IMAGE_KEY}` whatever its encoding (its bytes as "
    "released; `format` in the json names the original encoding); else `path` names its file "
    "and the shards hold no second copy.", "",
)


def folder_card(config: ReleaseConfig, fmt: str, split_counts: dict[str, dict[str, int]],
                digests: dict[str, str]) -> str:
    """README.md of a format's folder: its files and types, for ``load_dataset(FOLDER)``."""
    return (_yaml(card_header(config, split_counts, fmt, digests, in_folder=True))
            + f"\n# {config.name} {config.version}: {fmt}\n\nThe {fmt} files of the release; "
            "see ../README.md.\n")


def licence_line(config: ReleaseConfig, terms: Mapping[str, Any] | None) -> str:
    """The card's licence sentence, from what the build counted: the declared licence (or the
    card's identifier), then the images' licences with how many images each."""
    declared = config.licence or config.license
    line = f"Licence: {declared}" + ("" if config.licence else " (no licence declared)") + "."
    if terms:
        mix = ", ".join(f"{lic} ({n:,} image{'s' if n != 1 else ''})"
                        for lic, n in terms["licences"].items())
        line += (f" The images' own terms: {mix}; per image in the `licence` and "
                 "`consent_basis` columns, per source in manifest.json (`terms`).")
    return line


def write_card(log, config: ReleaseConfig, split_counts: dict[str, dict[str, int]], *,
               platform_version: str, layout: list[str],
               sources: list[str], summary: Sequence[str] = (),
               terms: Mapping[str, Any] | None = None) -> None:
    """README.md at the root, and in each folder of FOLDER_CARDS that was built."""
    digests = {}
    for fmt in CARD_FORMATS:
        lines = "".join(f"{rel} {sha}\n" for rel, (sha, _size) in sorted(log.files.items())
                        if rel.startswith(f"{fmt}/"))
        digests[fmt] = hashlib.sha256(lines.encode()).hexdigest()
    log.write_bytes("README.md", card_text(
        config, split_counts, digests, platform_version=platform_version,
        layout=layout, sources=sources, summary=summary, terms=terms,
    ).encode("utf-8"))
    for fmt in FOLDER_CARDS:
        if fmt in config.formats:
            text = folder_card(config, fmt, split_counts, digests)
            log.write_bytes(f"{fmt}/README.md", text.encode("utf-8"))
