"""Django-free image processing for the curation pipeline.

Each module is usable on its own (a Celery task, a management command, a notebook):

- `validate`: full decode check, decompression-bomb guard, size and aspect-ratio rules.
- `hashing`: sha256, pHash and dHash (JPEG draft decoding), batch hashing on all cores.
- `near_dup`: all pairs within Hamming distance k (multi-index hashing), incremental queries,
  union-find clusters with a chosen representative.
- `faces`: offline face detection with the Haar cascades bundled in the OpenCV wheel.
- `calibrate_k`: the precision/recall measurement behind `near_dup.DEFAULT_K`.
- `synthetic`: random hashes with planted near-duplicates (tests, benchmarks).

Nothing here imports Django; the curation app wraps these functions in services and tasks.
"""

from curation.imaging.validate import (
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    InvalidImage,
    Reason,
    ValidationRules,
    inspect_image,
    validate_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageInfo",
    "InvalidImage",
    "Reason",
    "ValidationRules",
    "inspect_image",
    "validate_image",
]
