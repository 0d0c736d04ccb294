"""MEBeauty (Lebedeva et al., Neural Computing and Applications 2022): CSV labels, [1, 10].

Layout (the official repository fbplab/MEBeauty-database, folder `scores/`; ratings are on a
1-10 scale, per its benchmark's dataset card, dr-irina-lebedeva/MEBeauty-Benchmark):

    MEBeauty-database/
      scores/train_universal_scores.csv   header "image,score"; image is relative to the
      scores/test_universal_scores.csv    dataset folder: images/<gender>/<ethnicity>/<file>
      scores/train_crop.csv, test_crop.csv  the same for the aligned face crops
                                          (cropped_images/images_crop_align_mtcnn/...)

A folder PATH reads the *_universal_scores.csv files (the original photos; a val file is read
too if one exists); pass train_crop.csv or test_crop.csv itself to import the crops instead.
Score: the mean "universal" attractiveness rating on [1, 10]. `extra`: split (from the file
name), gender and ethnicity (from the image's folders).
"""

from __future__ import annotations

from pathlib import PurePosixPath

from .common import CsvDataset
from .records import Scale

KIND = "mebeauty"
SCALE: Scale = (1.0, 10.0)
# The official repository's README: "The MEBeauty can be only used for non-commercial research
# purpose".
ORIGIN = (
    "Lebedeva et al., MEBeauty: a multi-ethnic facial beauty dataset in-the-wild, Neural "
    "Computing and Applications 2022; "
    "https://github.com/fbplab/MEBeauty-database"
)
LICENCE = "research-only"

LABEL_FILES = (
    "scores/train_universal_scores.csv",
    "scores/val_universal_scores.csv",
    "scores/test_universal_scores.csv",
)
GENDERS = {"female", "male"}


def _extra(row: dict[str, str]) -> dict:
    parts = PurePosixPath(row["image"].strip().replace("\\", "/")).parts
    if len(parts) >= 3 and parts[-3].lower() in GENDERS:
        return {"gender": parts[-3].lower(), "ethnicity": parts[-2].lower()}
    return {}


parse = CsvDataset(KIND, SCALE, label_files=LABEL_FILES, image_dirs=("",), extra=_extra).parse
