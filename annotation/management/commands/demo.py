"""python manage.py demo: demo users and a demo project with sample photos; prints the logins."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from annotation import services
from core import cli
from curation.services import get_or_create_source, import_directory
from curation.sources import sample
from humanbeauty.roles import Role

DEMO_PASSWORD = "demo-pass-123"
DEMO_USERS = [
    ("alice", Role.ANNOTATOR),
    ("bob", Role.ANNOTATOR),
    ("carol", Role.ANNOTATOR),
    ("rita", Role.REVIEWER),
    ("cora", Role.CURATOR),
    ("remy", Role.RESEARCHER),
]
GUIDELINES = """\
# Rating guidelines

Rate each image on the **12 dimensions** using five levels:
**1** bad · **2** poor · **3** fair · **4** good · **5** excellent.

* Rate what you see, not who the person is.
* Use **N** (not applicable) when a dimension cannot be judged: a face hidden by a back view or
  a mask, or a close-up that shows no outfit or body. If the face is hidden, every facial
  dimension is not applicable.
* Parent scores (*Facial Aesthetic*, *General Appearance Aesthetic*, *Comprehensive*) are your
  overall judgement of their group, not an arithmetic mean.
* Skip (**S**) if unsure; flag (**F**) images with no person, inappropriate, broken or
  duplicate content.
"""


def write_sample_photos(directory: Path) -> int:
    """Real photos of people that ship with scikit-image, in a few crops and exposures."""
    from PIL import Image, ImageEnhance, ImageOps
    from skimage import data

    directory.mkdir(parents=True, exist_ok=True)
    bases = {
        "astronaut": Image.fromarray(data.astronaut()),
        "cameraman": Image.fromarray(data.camera()).convert("RGB"),
        "coffee": Image.fromarray(data.coffee()),  # no person: something to flag
    }
    count = 0
    for name, base in bases.items():
        w, h = base.size
        variants = {
            "full": base,
            "mirror": ImageOps.mirror(base),
            "crop": base.crop((w // 8, 0, w - w // 8, h - h // 6)),
            "dark": ImageEnhance.Brightness(base).enhance(0.55),
            "bright": ImageEnhance.Brightness(base).enhance(1.35),
            "soft": ImageEnhance.Sharpness(base).enhance(0.1),
            "warm": Image.merge(
                "RGB",
                [
                    band.point(lambda v, d=d: min(255, max(0, v + d)))
                    for band, d in zip(base.split(), (18, 6, -12), strict=True)
                ],
            ),
        }
        if name == "coffee":
            variants = {"full": base}
        for variant, img in variants.items():
            img.resize((img.width * 2, img.height * 2)).save(
                directory / f"{name}_{variant}.jpg", quality=90
            )
            count += 1
    return count


def write_sample_dataset(photos: Path) -> Path | None:
    """A small dataset for curators to import from the curation page: the sample photos and a
    manifest scoring them 1-10, in the first import root (None when there is none)."""
    import shutil

    if not settings.IMPORT_ROOTS:
        return None
    manifest = Path(settings.IMPORT_ROOTS[0]) / sample.MANIFEST
    folder = manifest.parent
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    lines = ["path,score"]
    for n, photo in enumerate(sorted(photos.glob("*.jpg"))):
        shutil.copyfile(photo, folder / "photos" / photo.name)
        low, high = sample.SCALE
        lines.append(f"photos/{photo.name},{low + (7 * n) % (high - low + 1)}")
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


class Command(cli.Command):
    help = "Create demo users and a demo project with sample photos, and print the logins."

    def handle(self, **options):
        User = get_user_model()
        photos = Path(settings.MEDIA_ROOT).parent / "demo_photos"
        write_sample_photos(photos)
        report = import_directory(photos, source=get_or_create_source("demo", kind="demo"))
        project, _ = services.get_or_create_project(
            "Demo: HumanBeauty", overlap=3, guidelines=GUIDELINES
        )
        services.add_images(project, report.images)
        for username, role in DEMO_USERS:
            services.add_member(project, username, role, password=DEMO_PASSWORD)
        admin, _ = User.objects.get_or_create(username="admin")
        admin.is_staff = admin.is_superuser = True
        admin.set_password(DEMO_PASSWORD)
        admin.save()
        services.add_member(project, "admin", Role.ADMIN)
        manifest = write_sample_dataset(photos)
        self.stdout.write(
            f"Demo project '{project.name}' has {project.items.count()} images.\n"
            "Open the address the server prints below and log in with any of these "
            f"(password for all: {DEMO_PASSWORD}):\n"
            + "\n".join(f"  {u:<6} {r.value}" for u, r in DEMO_USERS)
            + "\n  admin  superuser (also /admin/)\n"
            + (
                f"Curators: import {manifest} (a manifest, scale 1 to 10) from /curation/, "
                "then filter it and make a project of what it accepts.\n"
                if manifest
                else ""
            )
            + "API docs: /api/docs/ (after logging in)"
        )
