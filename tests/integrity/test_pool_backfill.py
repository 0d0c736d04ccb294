"""Rows stored before every door hashed and clustered are completed by `hash_pool` (and by the
data migration, which runs the same function); `ensure_hashed` is safe to run concurrently."""

from __future__ import annotations

import io
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from curation.models import DuplicateCluster, Image
from curation.selectors import unverified_image_ids
from curation.services import ensure_hashed, register_image

from .test_pool_ingest import assert_pool_clustered, near_duplicates_of_astronaut, other_photos

pytestmark = pytest.mark.django_db(transaction=True)


def legacy_pool() -> list[int]:
    """Images as the old import paths left them: stored, never hashed nor clustered."""
    for data in [*near_duplicates_of_astronaut().values(), *other_photos().values()]:
        register_image(io.BytesIO(data))
    Image.objects.update(cluster=None, clustered_at=None, phash=None, dhash=None,
                         phash_b0=None, phash_b1=None, phash_b2=None, phash_b3=None)
    DuplicateCluster.objects.all().delete()
    return list(Image.objects.order_by("id").values_list("id", flat=True))


def test_hash_pool_fills_existing_rows_and_is_idempotent():
    ids = legacy_pool()
    assert unverified_image_ids(ids) == ids
    out = io.StringIO()
    call_command("hash_pool", "--batch", "3", stdout=out, stderr=io.StringIO())
    assert out.getvalue().strip() == f"{len(ids)} image(s) hashed and clustered"
    assert unverified_image_ids(ids) == []
    assert_pool_clustered()
    out = io.StringIO()
    call_command("hash_pool", stdout=out, stderr=io.StringIO())
    assert out.getvalue().strip() == "0 image(s) hashed and clustered"


def test_the_migration_function_backfills():
    import importlib

    migration = importlib.import_module("curation.migrations.0005_backfill_pool")
    ids = legacy_pool()
    migration.backfill(None, None)
    assert unverified_image_ids(ids) == []
    assert_pool_clustered()


def test_ensure_hashed_concurrently_and_only_what_is_missing():
    ids = legacy_pool()
    # one image clustered but not the others: only the missing work is done
    assert ensure_hashed(ids[:1]) == 1
    assert ensure_hashed(ids[:1]) == 0
    results, errors = [], []
    barrier = threading.Barrier(2)

    def worker(order):
        try:
            barrier.wait(timeout=60)
            results.append(ensure_hashed(order))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(o,)) for o in (ids, ids[::-1])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert all(0 < n <= len(ids) - 1 for n in results)
    assert unverified_image_ids(ids) == []
    assert_pool_clustered()


def test_a_missing_file_is_reported_and_the_rest_is_done():
    ids = legacy_pool()
    lost = Image.objects.get(pk=ids[0])
    lost.file.storage.delete(lost.file.name)
    with pytest.raises(CommandError, match=f"image {lost.pk}"):
        call_command("hash_pool", stdout=io.StringIO(), stderr=io.StringIO())
    assert unverified_image_ids(ids) == [lost.pk]
