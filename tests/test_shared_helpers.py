"""The helpers that issue #12 made the one place of a rule: a refusal's header, the commands'
number check, the "who did it" user link and the outcome of one file of a batch."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import models

from core.cli import require_positive
from core.fields import user_link
from curation.imaging.validate import FileOutcome, InvalidImage, Reason
from curation.models import Decision
from humanbeauty.errors import DomainError
from modeling.models import ModelVersion


def test_a_refusal_header_sets_status_and_code_and_inherits_the_rest():
    class Base(DomainError, status=409, code="conflict"):
        pass

    class OnlyCode(Base, code="taken"):
        pass

    class Plain(DomainError):
        pass

    assert (Base.status, Base.code) == (409, "conflict")
    assert (OnlyCode.status, OnlyCode.code) == (409, "taken")
    assert (Plain.status, Plain.code) == (400, "invalid")
    refusal = OnlyCode("already there", errors=["row 2"])
    assert (refusal.message, refusal.errors, str(refusal)) == ("already there", ["row 2"],
                                                               "already there")


def test_require_positive_names_the_option_and_lets_none_and_positives_pass():
    require_positive(batch=1, sample=None, batch_size=7)
    with pytest.raises(CommandError, match=r"^--batch-size must be at least 1$"):
        require_positive(sample=3, batch_size=0)


@pytest.mark.django_db
def test_a_command_refuses_zero_given_as_a_keyword_too():
    # call_command's keywords skip argparse: the check in handle still refuses them.
    with pytest.raises(CommandError, match="--batch must be at least 1"):
        call_command("hash_pool", batch=0)


def test_user_link_is_the_spelling_the_models_had():
    for field in (Decision._meta.get_field("overridden_by"),
                  ModelVersion._meta.get_field("created_by")):
        _, _, _, kwargs = field.deconstruct()
        assert kwargs["null"] and kwargs["blank"]
        assert kwargs["related_name"] == "+"
        assert kwargs["to"] == "auth.user"
    _, _, _, options = user_link(null=False, on_delete=models.CASCADE).deconstruct()
    # An option given replaces the default (null=False is Django's own, so it is not listed).
    assert "null" not in options and options["on_delete"] is models.CASCADE


def test_a_file_outcome_from_a_refusal_keeps_its_reason_and_an_os_error_is_unreadable():
    bad = FileOutcome.refused("a.jpg", InvalidImage(Reason.TOO_SMALL, "12x12 px"))
    assert (bad.path, bad.value, bad.reason, bad.message) == ("a.jpg", None, "too_small",
                                                              "12x12 px")
    gone = FileOutcome.refused("b.jpg", FileNotFoundError("no such file"))
    assert (gone.reason, gone.message) == ("unreadable", "no such file")
    assert FileOutcome("c.jpg", 3).reason is None
