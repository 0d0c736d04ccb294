"""python manage.py import_source KIND PATH --name NAME [--scale MIN MAX] [--priority N]"""

from pathlib import Path

from django.core.management.base import CommandError

from core import cli
from curation.services.sources import import_source
from curation.sources import PARSERS


class Command(cli.Command):
    help = (
        "Import a source's labels: `manifest FILE` (CSV with header or JSONL: path, score, "
        "score_min, score_max) or one of the public datasets "
        + ", ".join(k for k in PARSERS if k != "manifest")
        + " with its folder. Files are read only inside IMPORT_ROOTS."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=list(PARSERS))
        parser.add_argument("path", type=Path)
        parser.add_argument("--name", required=True)
        parser.add_argument("--scale", nargs=2, type=float, metavar=("MIN", "MAX"))
        parser.add_argument("--priority", type=int, help="prefer this source among duplicates")

    def handle(self, kind, path, name, scale, priority, **options):
        try:
            report = import_source(
                kind,
                path,
                name,
                scale=tuple(scale) if scale else None,
                priority=priority,
                progress=options["verbosity"] > 0,
            )
        except ValueError as exc:  # the --scale (refusals are cli.Command's)
            raise CommandError(str(exc)) from None
        for error in report.errors:
            self.stderr.write(error)
        self.stdout.write(
            f"source '{report.source.name}' (id {report.source.pk}): {report.created} new "
            f"records, {report.updated} updated, {len(report.errors)} refused"
        )
