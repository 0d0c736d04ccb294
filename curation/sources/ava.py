"""AVA (Murray et al., CVPR 2012): `AVA.txt` vote counts -> mean score on [1, 10].

Layout (the June 2012 release; its README, `AVA_dataset/readme.txt`, describes AVA.txt column by
column; the same parse is in e.g. titu1994/neural-image-assessment utils/check_dataset.py):

    AVA_dataset/
      AVA.txt          one image per line, 15 space-separated integer columns:
                         1 index, 2 image id, 3-12 number of votes for the scores 1..10,
                         13-14 semantic tag ids (0 = no tag; names in tags.txt),
                         15 challenge id (names in challenges.txt)
      tags.txt         optional: "<id> <name>" per line
      challenges.txt   optional: "<id> <name>" per line
      aesthetics_image_lists/generic_test.jpgl, generic_ls_train.jpgl
                       optional: image ids of the official test / large-scale train split
      images/<image id>.jpg

Score: the mean of the votes, sum(k * votes_k) / sum(votes_k), on the rating scale [1, 10].
An image with no votes at all keeps no score (raw_score None). `extra`: index, image_id, votes
(10 counts), n_votes, semantic_tags (ids, zeros dropped) and their names, challenge_id and its
name, split ("train"/"test") where the image lists say.
"""

from __future__ import annotations

import os
from operator import mul
from pathlib import Path

from .common import check_roots, existing_path, expect_file, text_lines
from .records import ParseResult, RecordBuilder, Scale, check_scale

KIND = "ava"
SCALE: Scale = (1.0, 10.0)
# The release's readme ("Copyright Considerations"): rights to all images are retained by the
# photographers/dpchallenge; do not redistribute images or data.
ORIGIN = (
    "Murray, Marchesotti and Perronnin, AVA: A Large-Scale Database for Aesthetic Visual "
    "Analysis, CVPR 2012; "
    "images from www.dpchallenge.com"
)
LICENCE = "all-rights-reserved"

LABEL_FILE = "AVA.txt"
IMAGE_DIR = "images"
_RATINGS = range(1, 11)


def _names(path: Path) -> dict[int, str]:
    """{id: name} from tags.txt / challenges.txt ("<id> <name>" lines); unreadable lines skipped."""
    names: dict[int, str] = {}
    if path.is_file():
        for _, line in text_lines(path):
            head, _, name = line.strip().partition(" ")
            if head.isdigit() and name.strip():
                names[int(head)] = name.strip()
    return names


def _ids(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    return {line.strip() for _, line in text_lines(path) if line.strip()}


def parse(path: str | os.PathLike[str], *, scale: Scale | None = None, roots=None) -> ParseResult:
    """Parse an AVA folder (or its AVA.txt). See the module docstring for the layout."""
    p = existing_path(path, KIND)
    label = p if p.is_file() else p / LABEL_FILE
    expect_file(label, KIND, f"pass the AVA folder that holds {LABEL_FILE}, or the file itself")
    root = label.parent
    check_roots([label], roots)
    scale = check_scale(scale or SCALE)

    tags = _names(root / "tags.txt")
    challenges = _names(root / "challenges.txt")
    lists = root / "aesthetics_image_lists"
    test_ids = _ids(lists / "generic_test.jpgl")
    train_ids = _ids(lists / "generic_ls_train.jpgl")

    b = RecordBuilder(KIND, root, [label], scale, roots)
    for number, line in text_lines(label):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 15:
            b.error(
                label,
                number,
                f"expected 15 columns (index, image id, 10 vote counts, "
                f"2 semantic tags, challenge id), found {len(fields)}",
            )
            continue
        bad = [f for f in fields if not f.isdigit()]
        if bad:
            b.error(label, number, f"every column must be a non-negative integer, found {bad[0]!r}")
            continue
        index, image_id = int(fields[0]), fields[1]
        votes = [int(v) for v in fields[2:12]]
        tag_ids = [int(t) for t in fields[12:14] if int(t) != 0]
        challenge = int(fields[14])
        n_votes = sum(votes)
        raw = sum(map(mul, _RATINGS, votes)) / n_votes if n_votes else None
        extra: dict = {
            "index": index,
            "image_id": image_id,
            "votes": votes,
            "n_votes": n_votes,
            "semantic_tags": tag_ids,
            "challenge_id": challenge,
        }
        if tags:
            extra["semantic_tag_names"] = [tags.get(t, "") for t in tag_ids]
        if challenge in challenges:
            extra["challenge_name"] = challenges[challenge]
        if image_id in test_ids:
            extra["split"] = "test"
        elif image_id in train_ids:
            extra["split"] = "train"
        b.add(label, number, f"{IMAGE_DIR}/{image_id}.jpg", raw, extra)
    return b.finish()
