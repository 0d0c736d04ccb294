"""python manage.py index_faces: embed the faces of every pool image not yet indexed."""

from core import cli
from rights.services.faces import index_faces


class Command(cli.Command):
    help = (
        "Index the faces of the pool images not yet indexed for the configured face model "
        "(TAKEDOWN_FACE_MODEL), so that takedown matching by face finds them without "
        "indexing them itself. Idempotent; each batch is kept as it is done."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=50, help="images per batch")
        parser.add_argument("--limit", type=int, default=None,
                            help="index at most this many images (default: all)")

    def handle(self, batch: int, limit: int | None = None, **options):
        cli.require_positive(batch=batch, limit=limit)
        outcome = index_faces(batch=batch, limit=limit, progress=options["verbosity"] > 0)
        self.stdout.write(
            f"{outcome.images} image(s) indexed, {outcome.faces} face(s) found, "
            f"{outcome.unreadable} unreadable; {outcome.left} left without an index"
        )
