"""python manage.py project_from_job JOB_ID --name NAME [--sample N] [--seed S] [--overlap K]"""

from django.core.management.base import CommandError

from annotation.services.from_curation import project_from_job
from core import cli
from curation.models import FilterJob


class Command(cli.Command):
    help = (
        "Create a rating project from a filter job's accepted images (a curator's override "
        "counts): all of them, or --sample N stratified by the source's score (quantile bins, "
        "proportional allocation; the same --seed gives the same images)."
    )

    def add_arguments(self, parser):
        parser.add_argument("job_id", type=int, help="the filter job whose images to take")
        parser.add_argument("--name", required=True, help="the new project's name")
        parser.add_argument("--sample", type=int, help="take N images instead of all")
        parser.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
        parser.add_argument("--overlap", type=int, help="raters per image (default 3)")

    def handle(self, job_id, name, sample, seed, overlap, **options):
        job = FilterJob.objects.select_related("source").filter(pk=job_id).first()
        if job is None:
            raise CommandError(f"no job {job_id}")
        cli.require_positive(sample=sample, overlap=overlap)
        result = project_from_job(job, name, sample=sample, seed=seed, overlap=overlap)
        how = (
            f"a stratified sample (seed {seed}) of {result.accepted} accepted"
            if sample is not None
            else "all accepted"
        )
        self.stdout.write(
            f"project '{result.project.name}' (id {result.project.pk}): {result.added} images "
            f"from job {job.pk}, {how}"
        )
        for s in result.strata:
            span = "no score" if s.low is None else f"score {s.low:.3f} to {s.high:.3f}"
            self.stdout.write(f"  {span}: {s.taken} of {s.size}")
