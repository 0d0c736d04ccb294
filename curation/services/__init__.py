"""Writes to the image pool, one module per concern; the names callers use are here."""

from .images import (
    IMAGE_SUFFIXES,
    ImportReport,
    PoolError,
    check_upload_size,
    ensure_hashed,
    get_or_create_source,
    import_directory,
    iter_image_files,
    register_image,
)

__all__ = [
    "IMAGE_SUFFIXES",
    "ImportReport",
    "PoolError",
    "check_upload_size",
    "ensure_hashed",
    "get_or_create_source",
    "import_directory",
    "iter_image_files",
    "register_image",
]
