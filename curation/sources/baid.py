"""BAID (Yi et al., "Towards Artistic Image Aesthetics Assessment", CVPR 2023): CSV labels, [0, 10].

Layout (the official repository Dreemurr-T/BAID: "ground-truth labels of the dataset can be found
in the `dataset` folder", the images are downloaded to `images/`; its data.py joins
`images/<image>` and trains on score / 10):

    BAID/
      dataset/train_set.csv   header "image,score", e.g. "24429.jpg,4.034603"
      dataset/val_set.csv
      dataset/test_set.csv    (released after the CGI 2023 challenge; read when present)
      images/<image>

Score: the published aesthetic score on [0, 10] (the files hold values up to exactly 10.0, and
the authors' loader divides by 10). `extra`: split ("train"/"val"/"test", from the file name).
PATH may be the BAID folder or one of the CSV files (then only that file is read).
"""

from __future__ import annotations

from .common import CsvDataset
from .records import Scale

KIND = "baid"
SCALE: Scale = (0.0, 10.0)
# The official repository's README: "The dataset is licensed under CC BY-NC-ND 4.0".
ORIGIN = (
    "Yi et al., Towards Artistic Image Aesthetics Assessment, CVPR 2023; https://github.com/Dreemurr-T/BAID"
)
LICENCE = "CC-BY-NC-ND-4.0"

LABEL_FILES = ("dataset/train_set.csv", "dataset/val_set.csv", "dataset/test_set.csv")
IMAGE_DIRS = ("images",)


parse = CsvDataset(KIND, SCALE, label_files=LABEL_FILES, image_dirs=IMAGE_DIRS).parse
