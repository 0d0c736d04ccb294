"""Run by test_sqlite_mode.py in a subprocess: raters in threads on a SQLite database.

Prints one JSON line: per-image rating counts, (image, rater) pairs and the error list.
"""

import json
import os
import sys
import threading
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from annotation import services  # noqa: E402
from annotation.models import Rating  # noqa: E402
from curation.models import Image  # noqa: E402
from humanbeauty.standard import DIMENSION_KEYS  # noqa: E402
from tests.threads import run_threads  # noqa: E402

N_RATERS, N_IMAGES, OVERLAP = 6, 8, 3


def main() -> None:
    call_command("migrate", verbosity=0)
    project, _ = services.get_or_create_project("sqlite", overlap=OVERLAP)
    images = [
        Image.objects.create(file=f"x/{i}.png", sha256=f"{i:064x}", width=8, height=8,
                             format="PNG")
        for i in range(N_IMAGES)
    ]
    services.add_images(project, images)
    users = []
    for i in range(N_RATERS):
        membership, _ = services.add_member(project, f"u{i}", "annotator")
        users.append(membership.user)
    barrier = threading.Barrier(N_RATERS)

    def work(user) -> None:
        barrier.wait()
        while (task := services.next_task(project, user)) is not None:
            services.submit_rating(task.pk, user, dict.fromkeys(DIMENSION_KEYS, 0.5),
                                   uuid.uuid4())

    errors = [repr(exc) for exc in run_threads(work, users)]
    pairs = list(Rating.objects.values_list("image_id", "rater_id"))
    counts = {str(i.pk): Rating.objects.filter(image=i).count() for i in images}
    print(json.dumps({"counts": counts, "pairs": pairs, "errors": errors}))


if __name__ == "__main__":
    main()
