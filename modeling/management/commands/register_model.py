"""python manage.py register_model VERSION DIR [--backbone B] [--activate]"""

from __future__ import annotations

from core import cli
from modeling.services import registry


class Command(cli.Command):
    help = (
        "Register a saved model directory (RUN_DIR/final of `python -m modeling.train`) as "
        "VERSION, after checking that it loads; --activate makes it the active version."
    )

    def add_arguments(self, parser):
        parser.add_argument("version")
        parser.add_argument("directory", metavar="DIR")
        parser.add_argument("--backbone", default="", help="default: from the model's config")
        parser.add_argument("--notes", default="")
        parser.add_argument("--activate", action="store_true")

    def handle(self, *args, **opts):
        model = registry.register_version(
            opts["version"],
            opts["directory"],
            backbone=opts["backbone"],
            notes=opts["notes"],
            activate=opts["activate"],
        )
        state = "active" if model.is_active else "not active"
        self.stdout.write(
            f"registered {model.version} ({model.backbone}) from {model.checkpoint_path}; {state}"
        )
