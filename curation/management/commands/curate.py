"""python manage.py curate NAME [--config FILE] [--no-clip] [--wait]"""

import json
import time
from pathlib import Path

from django.core.management.base import CommandError

from core import cli
from curation.models import FilterJob, JobStatus, Source
from curation.services.jobs import STAGES, start_job


class Command(cli.Command):
    help = (
        "Start a filter job on source NAME and print its id. The Celery workers do the work "
        "(with no CELERY_BROKER_URL, this process does); --wait follows the job to its end with a "
        "progress bar."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="source name")
        parser.add_argument("--config", type=Path, help="JSON file of job settings")
        parser.add_argument("--no-clip", action="store_true", help="turn the CLIP filters off")
        parser.add_argument("--wait", action="store_true", help="follow the job to its end")
        parser.add_argument("--timeout", type=float, default=24 * 3600, help="for --wait, s")

    def handle(self, name, config, no_clip, wait, timeout, **options):
        source = Source.objects.filter(name=name).first()
        if source is None:
            raise CommandError(f"no source named '{name}'")
        overrides = {}
        if config is not None:
            try:
                overrides = json.loads(config.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise CommandError(f"cannot read the config {config}: {exc}") from None
            if not isinstance(overrides, dict):
                raise CommandError("the config file must hold a JSON object")
        if no_clip:
            overrides.setdefault("clip", {})
            overrides["clip"] = {**overrides["clip"], "enabled": False}
        job = start_job(source, overrides=overrides)
        self.stdout.write(str(job.pk))
        self.stdout.flush()
        if wait:
            self.follow(job.pk, timeout, show=options["verbosity"] > 0)

    def follow(self, job_id: int, timeout: float, show: bool) -> None:
        from tqdm import tqdm

        deadline = time.monotonic() + timeout
        job = FilterJob.objects.get(pk=job_id)
        with tqdm(
            total=job.progress.get("total", 0),
            desc=f"job {job_id}",
            unit="img",
            disable=not show,
            file=self.stderr._out,
        ) as bar:
            while True:
                job.refresh_from_db()
                decided = job.progress.get("decided", 0)
                bar.update(decided - bar.n)
                stages = job.progress.get("stages", {})
                bar.set_postfix_str(" ".join(f"{s}={stages.get(s, 0)}" for s in STAGES))
                if job.is_over:
                    break
                if time.monotonic() > deadline:
                    raise CommandError(f"job {job_id} is still {job.status} after the timeout")
                time.sleep(0.5)
        if job.status != JobStatus.DONE:
            raise CommandError(f"job {job_id} ended {job.status}: {job.error}")
