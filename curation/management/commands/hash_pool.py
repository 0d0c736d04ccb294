"""python manage.py hash_pool: hash and cluster every pool image that is not yet."""

from core import cli
from curation.services.images import backfill_pool


class Command(cli.Command):
    help = (
        "Compute the perceptual hashes and near-duplicate cluster of every pool image that "
        "lacks them (rows stored before every import path did it). Idempotent; safe to run "
        "while imports and jobs run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=5000, help="images per batch")

    def handle(self, batch: int, **options):
        cli.require_positive(batch=batch)
        done = backfill_pool(progress=options["verbosity"] > 0, batch=batch)
        self.stdout.write(f"{done} image(s) hashed and clustered")
