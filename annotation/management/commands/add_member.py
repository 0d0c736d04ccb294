"""python manage.py add_member PROJECT USERNAME --role ROLE [--password PW]"""

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from annotation import services
from annotation.models import Project
from core import cli
from humanbeauty.roles import Role


class Command(cli.Command):
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
        if password:
            # The same rules as every other way to set a password (settings' validators).
            existing = get_user_model().objects.filter(username=username).first()
            try:
                validate_password(password, existing)
            except ValidationError as exc:
                raise CommandError("password refused: " + " ".join(exc.messages)) from None
        membership, created = services.add_member(proj, username, role, password=password)
        verb = "added to" if created else "updated in"
        self.stdout.write(f"{username} {verb} '{proj.name}' as {membership.role}")
