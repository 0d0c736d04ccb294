"""python manage.py score DIR --model MODEL_DIR_OR_VERSION --out FILE.csv|FILE.jsonl"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import CommandError
from tqdm import tqdm

from core import cli
from core.storage import is_storage_path
from curation.services.images import iter_image_files
from humanbeauty.errors import DomainError
from modeling.services import registry, scoring

COLUMNS = ("path", *scoring.SCORE_COLUMNS)


class Command(cli.Command):
    help = (
        "Score every image under DIR (recursively) with a model directory or a registered "
        "version (default: the active one); one row per image (path, the 12 Expert scores, the "
        "MetaVoter overall and each head's overall: overall_lm, overall_regression, "
        "overall_expert) to a CSV or JSONL file. Bad files are reported by name and skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", metavar="DIR")
        parser.add_argument(
            "--model", help="a saved model directory or a registered version (default: active)"
        )
        parser.add_argument("--out", required=True, help="FILE.csv or FILE.jsonl")
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument(
            "--workers", type=int, default=None,
            help="processes that read, check, decode and tile the images while the model "
            "scores (default: SCORING_WORKERS, 2; 0: all in this process)",
        )

    def load(self, model: str | None):
        """(label, loaded model) from a directory (local, or `storage:NAME` in the media
        storage) or the registry."""
        if model and is_storage_path(model):
            try:
                return model, registry.cached_model(f"dir:{model}", model)
            except Exception as exc:
                raise CommandError(registry.load_error(model, exc)) from exc
        if model and Path(model).expanduser().is_dir():
            path = Path(model).expanduser().resolve()
            try:
                return str(path), registry.cached_model(f"dir:{path}", path)
            except Exception as exc:
                raise CommandError(registry.load_error(model, exc)) from exc
        try:
            version = registry.resolve_version(model)
            return version.version, registry.model_for(version)
        except DomainError as exc:
            hint = "" if not model else f" ('{model}' is neither a directory nor a version)"
            raise CommandError(f"{exc.message}{hint}") from exc

    def handle(self, *args, **opts):
        root = Path(opts["directory"]).expanduser()
        if not root.is_dir():
            raise CommandError(f"'{root}' is not a directory")
        cli.require_positive(batch_size=opts["batch_size"])
        if opts["workers"] is not None and opts["workers"] < 0:
            raise CommandError("--workers must be 0 or more")
        scoring.file_format(opts["out"])
        label, model = self.load(opts["model"])
        items = [({"path": str(p.relative_to(root))}, p) for p in iter_image_files(root)]
        bad: list[tuple[str, str]] = []
        with scoring.ResultsFile(opts["out"], COLUMNS) as out:
            results = scoring.score_sources(
                model, items, decode=scoring.decode_file, batch_size=opts["batch_size"],
                workers=opts["workers"],
            )
            for ident, row, error in tqdm(results, total=len(items), desc="score", unit="img",
                                          file=sys.stderr, mininterval=1):
                if error is None:
                    out.write(row)
                else:
                    bad.append((ident["path"], error))
        for rel, why in bad:
            self.stderr.write(f"skipped {rel}: {why}")
        self.stdout.write(
            f"scored {out.count} image(s) with {label} into {opts['out']}"
            + (f"; skipped {len(bad)} bad file(s)" if bad else "")
        )
