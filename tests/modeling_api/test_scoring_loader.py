"""Batch scoring through the loader (modeling.services.scoring.score_chunk / score_sources):
stored files read, validated, decoded and tiled in worker processes give the same rows as in the
calling thread and as the previous pipeline; bad files become error records in their place."""

from __future__ import annotations

import io

import pytest
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from modeling.hae.backbone import load_backbone
from modeling.hae.model import HumanAesExpert, LoraSettings
from modeling.hae.tiny import build_tiny_checkpoint
from modeling.selectors import ImageRow
from modeling.services import scoring
from tests.conftest import image_bytes


@pytest.fixture(scope="module")
def tiny_expert(tmp_path_factory):
    """A tiny random HumanAesExpert (LoRA adapters perturbed so they count)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    checkpoint = build_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt")
    torch.manual_seed(1)
    model = HumanAesExpert.wrap(load_backbone(checkpoint), LoraSettings()).eval()
    with torch.no_grad():
        for p in model.lora_parameters():
            p.add_(torch.randn_like(p) * 0.05)
    yield model
    torch.set_num_threads(before)


def _stored_rows() -> list[ImageRow]:
    """Four good JPEGs of different sizes, then a corrupt file and a missing one."""
    rows = []
    for i, size in enumerate([(64, 48), (90, 120), (200, 60), (77, 77)]):
        name = default_storage.save(f"pool/img{i}.jpg",
                                    ContentFile(image_bytes(size=size, seed=i, fmt="JPEG")))
        rows.append(ImageRow(i + 1, name, f"{i:064x}", f"set/img{i}.jpg"))
    bad = default_storage.save("pool/bad.jpg", ContentFile(b"\xff\xd8 not a jpeg"))
    rows.append(ImageRow(5, bad, "5" * 64, "set/bad.jpg"))
    rows.append(ImageRow(6, "pool/gone.jpg", "6" * 64, "set/gone.jpg"))
    return rows


def test_workers_give_the_rows_of_the_calling_thread_and_of_the_previous_pipeline(tiny_expert):
    rows = _stored_rows()
    serial = scoring.score_chunk(tiny_expert, rows, batch_size=2, workers=0)
    parallel = scoring.score_chunk(tiny_expert, rows, batch_size=2, workers=2)
    assert parallel == serial
    assert [r["image_id"] for r in serial] == [1, 2, 3, 4, 5, 6]
    # the previous pipeline: decode in this thread, then model.score on the PIL images
    images = []
    for row in rows[:4]:
        with default_storage.open(row.file, "rb") as fh:
            images.append(scoring.decode_image(fh))
    before = tiny_expert.score(images, batch_size=2)
    expected = [
        scoring.result_row(result, image_id=row.image_id, sha256=row.sha256, split=row.split,
                           path=row.path)
        for row, result in zip(rows[:4], before, strict=True)
    ]
    assert serial[:4] == expected
    assert len({r["overall"] for r in expected}) > 1
    assert all(r["overall_lm"] is not None for r in expected), "the full model has an LM head"


def test_bad_files_become_error_records_and_the_rest_is_scored(tiny_expert):
    records = scoring.score_chunk(tiny_expert, _stored_rows(), batch_size=4, workers=2)
    by_id = {r["image_id"]: r for r in records}
    assert all("error" not in by_id[i] for i in (1, 2, 3, 4))
    assert "error" in by_id[5] and "overall" not in by_id[5]
    assert by_id[5]["path"] == "set/bad.jpg"
    assert by_id[6]["error"].startswith("cannot read the file:")


def test_command_line_files_are_checked_like_uploads_in_the_workers(tiny_expert, tmp_path,
                                                                    settings):
    good = tmp_path / "good.png"
    good.write_bytes(image_bytes(size=(60, 40), seed=3))
    big = tmp_path / "big.png"
    big.write_bytes(image_bytes(size=(200, 200), seed=4))
    settings.MAX_UPLOAD_BYTES = len(good.read_bytes()) + 10
    items = [({"path": "good.png"}, good), ({"path": "big.png"}, big),
             ({"path": "missing.png"}, tmp_path / "missing.png")]
    out = list(scoring.score_sources(tiny_expert, items, decode=scoring.decode_file,
                                     batch_size=2, workers=2))
    assert [ident["path"] for ident, _, _ in out] == ["good.png", "big.png", "missing.png"]
    (_, row, error), (_, no_row, too_large), (_, _, missing) = out
    assert error is None and row["path"] == "good.png" and 0 <= row["overall_regression"] <= 1
    assert no_row is None and "bytes; the limit is" in too_large
    assert missing.startswith("unreadable:")
    direct = tiny_expert.score([scoring.decode_image(io.BytesIO(good.read_bytes()))])[0]
    assert row == scoring.result_row(direct, path="good.png")
