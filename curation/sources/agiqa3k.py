"""AGIQA-3K (Li et al., IEEE TCSVT 2023): `data.csv`, perceptual quality MOS on [0, 5].

Layout (the official repository lcysyzxdxc/AGIQA-3k-Database ships `data.csv`; the images come
from its Baidu / Google Drive archive):

    AGIQA-3K/
      data.csv   header "name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align"
                 e.g. AttnGAN_normal_000.jpg,statue of a man,,,,0.965602553,0.223270101,...
      <name>     the images, next to data.csv or in images/ (both are recognised)

Score: `mos_quality`, the perceptual-quality mean opinion score. Raters scored on a continuous
0-5 scale (the paper, arXiv 2306.04717), so the scale is [0, 5]. The text-to-image alignment
MOS is not an aesthetic score: it is kept in `extra` (mos_align, std_align) with std_quality,
the prompt, its adj1/adj2/style parts (empty ones left out) and the generator and its setting
read from the file name ("sd1.5_lowstep_010.jpg" -> generator "sd1.5", variant "lowstep").
PATH may be the folder or data.csv.
"""

from __future__ import annotations

from .common import CsvDataset
from .records import LineError, Scale, parse_number

KIND = "agiqa-3k"
SCALE: Scale = (0.0, 5.0)
# The official repository's LICENSE file (MIT), the only terms it publishes; the images are
# downloaded from the archive its README links.
ORIGIN = (
    "Li et al., AGIQA-3K: An Open Database for AI-Generated Image Quality Assessment, "
    "IEEE TCSVT 2023; "
    "https://github.com/lcysyzxdxc/AGIQA-3k-Database"
)
LICENCE = "MIT"

LABEL_FILES = ("data.csv",)
IMAGE_DIRS = ("", "images")
TEXT_COLUMNS = ("prompt", "adj1", "adj2", "style")
NUMBER_COLUMNS = ("std_quality", "mos_align", "std_align")


def _extra(row: dict[str, str]) -> dict:
    extra: dict = {}
    for col in TEXT_COLUMNS:
        value = (row.get(col) or "").strip()
        if value:
            extra[col] = value
    for col in NUMBER_COLUMNS:
        value = (row.get(col) or "").strip()
        if value:
            try:
                extra[col] = parse_number(value, col)
            except LineError:
                extra[col] = value  # kept as written; only the score must be a number
    stem = row["name"].strip().rsplit(".", 1)[0]
    parts = stem.split("_")
    if len(parts) >= 3:
        extra["generator"], extra["variant"] = parts[0], "_".join(parts[1:-1])
    return extra


parse = CsvDataset(
    KIND,
    SCALE,
    label_files=LABEL_FILES,
    image_dirs=IMAGE_DIRS,
    image_column="name",
    score_column="mos_quality",
    extra=_extra,
).parse
