"""Run by test_job_summary.py in a subprocess on SQLite: prints the database's job summary and
the row-by-row reference as one JSON line."""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from curation.selectors import job_summary  # noqa: E402
from tests.curation_api.summary_data import make_job, reference_summary  # noqa: E402

call_command("migrate", verbosity=0)
job = make_job()
summary = job_summary(job)
counts, reasons = reference_summary(job)
print(json.dumps({"db": [summary["counts"], summary["reasons"]], "python": [counts, reasons]}))
