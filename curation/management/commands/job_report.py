"""python manage.py job_report JOB_ID --format json|jsonl"""

import json

from django.core.management.base import CommandError

from core import cli
from curation.models import FilterJob
from curation.selectors import job_lines, job_summary


class Command(cli.Command):
    help = "Print a filter job's summary (json) or one line per image (jsonl)."

    def add_arguments(self, parser):
        parser.add_argument("job_id", type=int)
        parser.add_argument("--format", choices=["json", "jsonl"], default="json")

    def handle(self, job_id: int, format: str, **options):
        job = FilterJob.objects.filter(pk=job_id).first()
        if job is None:
            raise CommandError(f"no job {job_id}")
        if format == "json":
            summary = job_summary(job)
            summary.pop("progress")
            self.stdout.write(json.dumps(summary))
        else:
            for line in job_lines(job):
                self.stdout.write(json.dumps(line))
