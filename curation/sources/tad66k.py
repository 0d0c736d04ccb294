"""TAD66K (He et al., "Rethinking Image Aesthetics Assessment", IJCAI 2022): CSV labels, [1, 10].

Layout (the release on the authors' Google Drive, linked from woshidandan/TANet-image-aesthetics-
and-quality-assessment; its code/TAD66K reads `train.csv` / `test.csv` with pandas, columns
`image` and `score`, and trains on score / 10; public loaders read them as
`TAD66K/labels/merge/{train,test}.csv` with the images in `TAD66K/imgs/`):

    TAD66K/
      labels/merge/train.csv    header "image,score": file name, mean aesthetic score
      labels/merge/test.csv
      imgs/<image>              (some copies unpack to images/ instead; both are recognised)

Score: the mean rating, on [1, 10]. `extra`: split ("train"/"test", from the file name).
PATH may be the TAD66K folder or one of the CSV files (then only that file is read).
"""

from __future__ import annotations

from .common import CsvDataset
from .records import Scale

KIND = "tad66k"
SCALE: Scale = (1.0, 10.0)
# Not verified: the repository's Apache-2.0 badge is its code's; no licence for the dataset is
# published beside the download link.
ORIGIN = (
    "He et al., Rethinking Image Aesthetics Assessment: Models, Datasets and Benchmarks, "
    "IJCAI 2022; "
    "https://github.com/woshidandan/TANet-image-aesthetics-and-quality-assessment"
)
LICENCE = "unknown"

LABEL_FILES = ("labels/merge/train.csv", "labels/merge/test.csv")
IMAGE_DIRS = ("imgs", "images")


parse = CsvDataset(KIND, SCALE, label_files=LABEL_FILES, image_dirs=IMAGE_DIRS).parse
