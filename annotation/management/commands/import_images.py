"""python manage.py import_images DIR --project NAME [--overlap N] [--source NAME]
[--licence ID] [--consent-basis BASIS] [--consent-reference TEXT]"""

from pathlib import Path

from django.core.management.base import CommandError

from annotation import services
from core import cli
from curation.selectors import count_in_clusters
from curation.services import get_or_create_source, import_directory
from curation.services.provenance import checked_terms, give_images_terms
from curation.sources.terms import CONSENT_BASES


class Command(cli.Command):
    help = (
        "Import every image under DIR (recursively) into a rating project, creating the "
        "project if needed. Each file is fully checked; exact duplicates (same sha256) are "
        "stored once; every image is hashed and clustered with its near-duplicates in the "
        "pool; bad files are reported by name and the import goes on."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("--project", required=True, help="project name (created if new)")
        parser.add_argument("--overlap", type=int, help="raters per image (new projects: 3)")
        parser.add_argument("--source", help="source name to record (default: the directory)")
        parser.add_argument("--licence", help="the images' own licence, over their source's: "
                            "an SPDX id such as CC-BY-4.0, or research-only...")
        parser.add_argument("--consent-basis", help=f"one of {', '.join(CONSENT_BASES)}")
        parser.add_argument("--consent-reference",
                            help="e.g. the signed consent forms' reference")

    def handle(self, directory: Path, project: str, overlap: int | None, source: str | None,
               **options):
        directory = directory.expanduser().resolve()
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory")
        cli.require_positive(overlap=overlap)
        terms = checked_terms(  # checked before anything is imported
            licence=options.get("licence"),
            consent_basis=options.get("consent_basis"),
            consent_reference=options.get("consent_reference"),
        )
        proj, created = services.get_or_create_project(project, overlap=overlap)
        if not created and overlap is not None and overlap != proj.overlap:
            self.stderr.write(
                f"note: project '{proj.name}' exists with overlap {proj.overlap}; "
                f"--overlap {overlap} applies to new projects only"
            )
        src = get_or_create_source(source or directory.name)
        report = import_directory(directory, source=src, progress=options["verbosity"] > 0)
        added = services.add_images(proj, report.images)
        for path, reason, message in report.bad:
            self.stderr.write(f"bad file {path}: [{reason}] {message}")
        kept = give_images_terms(report.images, terms).conflicts
        if kept:
            self.stderr.write(
                f"note: {len(kept)} image(s) were stored before with other terms of their own, "
                f"kept as they were (ids {kept[:10]})"
            )
        self.stdout.write(
            f"project '{proj.name}' (id {proj.pk}, {'created' if created else 'existing'}): "
            f"{len(report.created)} new images, {len(report.existing)} already stored, "
            f"{added} added to the project, {len(report.bad)} bad files, "
            f"{count_in_clusters(i.pk for i in report.images)} in near-duplicate clusters"
        )
