"""python manage.py add_member PROJECT USERNAME --role ROLE [--password PW]"""

from django.core.management.base import BaseCommand, CommandError

from annotation import services
from annotation.models import Project
from humanbeauty.roles import Role


class Command(BaseCommand):
    help = "Give a user a role in a project, creating the user if needed."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project name or id")
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--password", help="set (or reset) the user's password")

    def handle(self, project: str, username: str, role: str, password: str | None, **options):
        proj = Project.objects.filter(name=project).first()
        if proj is None and project.isdigit():
            proj = Project.objects.filter(pk=int(project)).first()
        if proj is None:
            raise CommandError(f"no project named '{project}'")
        membership, created = services.add_member(proj, username, role, password=password)
        verb = "added to" if created else "updated in"
        self.stdout.write(f"{username} {verb} '{proj.name}' as {membership.role}")
