"""Hash and cluster the images stored before every import path did it (as `hash_pool`).

It runs the service code (not historical models): what it computes is exactly what imports
compute. A file that cannot be read stops the migration with its image ids; fix or remove
those rows, or run with HASH_POOL_ON_MIGRATE=0 and use `manage.py hash_pool` later.
"""

import os

from django.db import migrations


def backfill(apps, schema_editor):
    if os.environ.get("HASH_POOL_ON_MIGRATE", "1") == "0":
        return
    from curation.services.images import backfill_pool

    backfill_pool(progress=False)


class Migration(migrations.Migration):
    # Clustering takes its own lock and commits per image.
    atomic = False

    dependencies = [
        ("curation", "0004_pool_clustering"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
