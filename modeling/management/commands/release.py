"""python manage.py release build|list|show|diff ..."""

from __future__ import annotations

import json
import time

from django.core.management.base import CommandError

from core import cli
from modeling.models import Release, ReleaseStatus
from modeling.release import SPLITS
from modeling.selectors import release_diff
from modeling.services.releases import FORMATS, create_release

# The build options create_release takes as they are, and those given as comma lists.
BUILD_OPTIONS = ("seed", "split", "images", "max_side", "min_raters", "max_disagreement",
                 "license", "shard_size", "na", "contact", "licence")
LIST_OPTIONS = ("projects", "sources", "formats")


def csv_list(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


class Command(cli.Command):
    help = "Build, list, describe and compare versioned dataset releases."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        build = sub.add_parser("build", help="build a release into --out DIR")
        build.add_argument("name")
        build.add_argument("--version", required=True)
        build.add_argument("--projects", help="rating projects (12-dimension labels), comma list")
        build.add_argument("--sources", help="curated sources (overall scores), comma list")
        build.add_argument("--seed", type=int, default=0)
        build.add_argument("--split", default="train=0.8,val=0.1,test=0.1")
        build.add_argument("--formats", default=",".join(FORMATS))
        build.add_argument("--images", choices=["copy", "link", "none"], default="copy")
        build.add_argument("--max-side", type=int, help="resize copied images to this side")
        build.add_argument("--min-raters", type=int, default=1)
        build.add_argument("--max-disagreement", type=float)
        build.add_argument("--license", default="unknown",
                           help="the dataset card's licence identifier, e.g. cc-by-4.0")
        build.add_argument("--licence", default="",
                           help="the licence the release declares (CC-BY-4.0, research-only...):"
                           " images whose terms it does not allow are refused; none declared:"
                           " nothing refused, the images' licences stated")
        build.add_argument("--shard-size", type=int, default=10_000,
                           help="WebDataset samples per tar shard")
        build.add_argument("--na", default="fill",
                           help="the official layout's 12-dim images with a not-applicable "
                           "dimension: fill (from the nearest rated parent), drop (left out of "
                           "that layout) or overall (written as an overall-only line)")
        build.add_argument("--contact", default="",
                           help="where takedown requests go (an address), for the datasheet")
        build.add_argument("--out", default=None,
                           help="the folder to build into (required with the file-system "
                           "storage; with MEDIA_STORAGE=s3 the release is kept under "
                           "releases/<id>/ in the bucket)")
        build.add_argument("--wait", action="store_true", help="follow the build to its end")
        sub.add_parser("list", help="every release with its status")
        show = sub.add_parser("show", help="one release: configuration, counts, where")
        show.add_argument("name")
        show.add_argument("version")
        diff = sub.add_parser("diff", help="V2 against V1: images added, removed, withheld, "
                              "moved between splits")
        diff.add_argument("name")
        diff.add_argument("v1")
        diff.add_argument("v2")

    def handle(self, action, **o):
        getattr(self, f"do_{action}")(**o)

    def do_build(self, name, version, out, wait, **o):
        lists = {k: csv_list(o[k]) for k in LIST_OPTIONS}
        release = create_release(name, version, out, **lists, **{k: o[k] for k in BUILD_OPTIONS})
        self.stdout.write(f"release {release.name} {release.version} (id {release.pk}) queued")
        if wait:
            self.follow(release.pk)
        else:  # built already when tasks run in-process (no broker)
            release.refresh_from_db()
            if release.status == ReleaseStatus.READY:
                self.done(release)

    def follow(self, release_id: int) -> None:
        from tqdm import tqdm

        with tqdm(desc="build", unit="row", file=self.stderr._out) as bar:
            while True:
                release = Release.objects.get(pk=release_id)
                p = release.progress or {}
                if p.get("total"):
                    bar.total = p["total"]
                    bar.set_description(p.get("phase", "build"))
                    bar.n = p.get("done", 0)
                    bar.refresh()
                if release.is_over:
                    break
                time.sleep(0.5)
        if release.status == ReleaseStatus.FAILED:
            raise CommandError(f"the build failed: {release.error}")
        if release.status == ReleaseStatus.CANCELLED:
            raise CommandError(f"the build was {release.error or 'cancelled'}")
        self.done(release)

    def done(self, release: Release) -> None:
        self.stdout.write(f"ready: {release.out_dir} {json.dumps(release.counts)}")
        official = (release.counts or {}).get("official")
        if official:
            self.stdout.write(
                f"official layout (--na {official['na']}): {official['with_na']} 12-dim "
                f"image(s) with a not-applicable dimension: {official['filled']} filled, "
                f"{official['dropped']} dropped, {official['as_overall']} as overall-only; "
                # stored as jsonb, which keeps no key order: the splits in their own order
                + ", ".join(f"{s} {official['lines'][s]}" for s in SPLITS
                            if s in official["lines"])
                + " label line(s)"
            )
        for warning in release.warnings:
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))

    def do_list(self, **_):
        for r in Release.objects.order_by("name", "created_at"):
            total = (r.counts or {}).get("images", "")
            self.stdout.write(f"{r.name}\t{r.version}\t{r.status}\t{total}\t{r.out_dir}")

    def _get(self, name: str, version: str) -> Release:
        release = Release.objects.filter(name=name, version=version).first()
        if release is None:
            raise CommandError(f"no release {name} {version}")
        return release

    def do_diff(self, name, v1, v2, **_):
        diff = release_diff(release=self._get(name, v2), against=self._get(name, v1))
        c = diff["counts"]
        self.stdout.write(
            f"{name} {v2} against {v1}: {c['added']} added, {c['removed']} removed, "
            f"{c['withheld']} withheld, {c['moved']} moved, {c['unchanged']} unchanged"
        )
        self.stdout.write(json.dumps(diff, indent=2))

    def do_show(self, name, version, **_):
        release = self._get(name, version)
        self.stdout.write(
            json.dumps(
                {
                    "name": release.name,
                    "version": release.version,
                    "status": release.status,
                    "out_dir": release.out_dir,
                    "config": release.config,
                    "counts": release.counts,
                    "warnings": release.warnings,
                    "manifest_sha256": release.manifest_sha256,
                    "error": release.error,
                    "created_at": release.created_at.isoformat(),
                },
                indent=2,
            )
        )
