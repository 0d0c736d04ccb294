"""python manage.py set_gold PROJECT FILE [--kind gold|training|test]"""

from pathlib import Path

from django.core.management.base import CommandError

from annotation.models import ItemKind, Project
from annotation.services.quality import parse_reference_csv, set_references
from core import cli
from curation.models import Image


class Command(cli.Command):
    help = (
        "Make images the project's gold items with these reference scores. FILE is a CSV with "
        "a header: `image` (an image id, or a path as imported) and the 12 dimension keys; an "
        "empty cell means not applicable. --kind training|test sets the qualification track "
        "the same way. Bad rows are reported by line; good rows are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help="project name or id")
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--kind", default=ItemKind.GOLD.value,
            choices=[ItemKind.GOLD.value, ItemKind.TRAINING.value, ItemKind.TEST.value],
        )

    def handle(self, project: str, file: Path, kind: str, **options):
        proj = Project.objects.filter(name=project).first()
        if proj is None and project.isdigit():
            proj = Project.objects.filter(pk=int(project)).first()
        if proj is None:
            raise CommandError(f"no project named '{project}'")
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {file}: {exc}") from None
        rows, errors = parse_reference_csv(text, Image.objects.all())  # the shell: any
        count, errors = set_references(proj, rows, ItemKind(kind), refused=errors)
        for error in errors:
            self.stderr.write(error)
        self.stdout.write(f"{count} {kind} items set in '{proj.name}', {len(errors)} bad rows")
        if errors:
            raise CommandError(f"{len(errors)} row(s) were refused (see above)")
