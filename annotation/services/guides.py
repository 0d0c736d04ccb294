"""The standard taught on the page: a project's dimension guides and their example images.

Texts: the defaults of `humanbeauty.dimension_guides` with the project's overrides laid over
them (`Project.dimension_guides` keeps only what managers changed). Examples: gold or training
items a manager pins to one level of one dimension. Test items never: an example would show
the candidate the very image they are tested on. Every change is audited.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from humanbeauty.dimension_guides import GuideError, merge_overrides, validate_overrides
from humanbeauty.standard import BY_KEY, LEVELS

from ..models import GuideExample, Project, ProjectImage
from ..selectors import EXAMPLE_KINDS
from .audit import audit
from .errors import ExampleNotFound, NotAnExampleItem

MAX_EXAMPLES_PER_LEVEL = 6


@transaction.atomic
def update_guides(
    project: Project,
    changes: Mapping[str, object],
    *,
    actor: AbstractBaseUser | None = None,
    replace: bool = False,
) -> Project:
    """Lay `changes` over the project's overrides (or, `replace`, put them in their place);
    an empty text brings the default back. Unknown dimensions or levels are refused."""
    clean = validate_overrides(changes)
    project = Project.objects.select_for_update().get(pk=project.pk)
    before = project.dimension_guides or {}
    project.dimension_guides = merge_overrides({} if replace else before, clean)
    project.save(update_fields=["dimension_guides"])
    audit(
        project,
        actor,
        "guides_replaced" if replace else "guides_updated",
        dimensions=sorted(clean),
        before={k: before[k] for k in clean if k in before},
        after={k: project.dimension_guides.get(k) for k in clean},
    )
    return project


def _check_place(dimension: str, level: str) -> None:
    if dimension not in BY_KEY:
        raise GuideError(f"unknown dimension {dimension!r}")
    if level not in LEVELS:
        raise GuideError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")


@transaction.atomic
def pin_example(
    project: Project,
    *,
    dimension: str,
    level: str,
    image: int,
    actor: AbstractBaseUser | None = None,
) -> GuideExample:
    """Pin the project's gold or training item of `image` as an example of `level` on
    `dimension`; pinning it again is a no-op."""
    _check_place(dimension, level)
    item = ProjectImage.objects.filter(project=project, image_id=image).first()
    if item is None:
        raise NotAnExampleItem(f"image {image} is not in this project")
    if item.kind not in EXAMPLE_KINDS:
        raise NotAnExampleItem(
            f"image {image} is a {item.kind} item of this project; examples are chosen from "
            "its gold or training items"
        )
    Project.objects.select_for_update().filter(pk=project.pk).first()  # one pin at a time
    example, created = GuideExample.objects.get_or_create(
        project=project, dimension=dimension, level=level, item=item,
        defaults={"pinned_by": actor},
    )
    if created:
        count = GuideExample.objects.filter(project=project, dimension=dimension, level=level)
        if count.count() > MAX_EXAMPLES_PER_LEVEL:
            raise GuideError(
                f"{BY_KEY[dimension].name}, {level}: at most {MAX_EXAMPLES_PER_LEVEL} examples; "
                "unpin one first"
            )
        audit(project, actor, "guide_example_pinned", image=item.image_id,
              dimension=dimension, level=level)
    return example


@transaction.atomic
def unpin_example(
    project: Project, example_id: int, *, actor: AbstractBaseUser | None = None
) -> None:
    example = GuideExample.objects.filter(project=project, pk=example_id).first()
    if example is None:
        raise ExampleNotFound(f"example {example_id} does not exist")
    audit(project, actor, "guide_example_unpinned", image=example.item.image_id,
          dimension=example.dimension, level=example.level)
    example.delete()
