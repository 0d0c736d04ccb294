"""python manage.py hash_pool: hash and cluster every pool image that is not yet."""

from django.core.management.base import BaseCommand, CommandError

from core.cli import require_positive
from curation.services.images import PoolError, backfill_pool


class Command(BaseCommand):
    help = (
        "Compute the perceptual hashes and near-duplicate cluster of every pool image that "
        "lacks them (rows stored before every import path did it). Idempotent; safe to run "
        "while imports and jobs run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=5000, help="images per batch")

    def handle(self, batch: int, **options):
        require_positive(batch=batch)
        try:
            done = backfill_pool(progress=options["verbosity"] > 0, batch=batch)
        except PoolError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{done} image(s) hashed and clustered")
