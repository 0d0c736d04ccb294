"""Prompts, chat formats and LM answer texts of the official HumanAesExpert code.

The five overall questions are the official list; the 12-dimension questions are the same five
with " from 12 different dimensions" inserted before the final punctuation. The image comes first:
``"<image>\\n" + prompt``. Dimension names and levels come from :mod:`humanbeauty.standard`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from humanbeauty.standard import DIMENSIONS, LEVELS, score_to_level

IMAGE_PLACEHOLDER = "<image>"

OVERALL_PROMPTS: tuple[str, ...] = (
    "Can you evaluate the aesthetics of the human image?",
    "Rate the aesthetics of this human picture.",
    "How is the aesthetics of this human image?",
    "Can you rate the aesthetics of this human picture?",
    "Please evaluate the aesthetics of the human image.",
)
EXPERT_SUFFIX = " from 12 different dimensions"
EXPERT_PROMPTS: tuple[str, ...] = tuple(p[:-1] + EXPERT_SUFFIX + p[-1] for p in OVERALL_PROMPTS)

# The overall answer is "<prefix> <level>": scoring feeds the prefix and reads the level logits.
OVERALL_ANSWER_PREFIX = "The aesthetics of the human image is"
# Our extension for a dimension rated "not applicable" (null); the official data has none.
NOT_APPLICABLE = "not applicable"

# InternVL2's default system message (its chat template always sends one).
INTERNVL_SYSTEM_MESSAGE = (
    "你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, "  # noqa: RUF001
    "是一个有用无害的人工智能助手。"
)

# The system message of the official training template (ms-swift 2.x ``InternvlTemplate``, which
# HumanAesExpert's ``Internvl2_HumanAesExpertTemplate`` subclasses).
INTERNLM_SYSTEM_MESSAGE = "You are an AI assistant whose name is InternLM (书生·浦语)."

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
IMG_START = "<img>"
IMG_END = "</img>"


@dataclass(frozen=True)
class ChatTemplate:
    """How a single-turn chat is written around the user turn (see :data:`CHAT_TEMPLATES`).

    ``turn_sep`` follows each ``<|im_end|>`` of the system and user turns; ``after_image`` follows
    ``</img>`` (the image block replaces :data:`IMAGE_PLACEHOLDER`); ``auto_add_bos`` puts the
    tokenizer's BOS first where the tokenizer adds one to an empty text (ms-swift's
    ``auto_add_bos``: InternLM2 tokenizers do, Qwen2's have no BOS)."""

    name: str
    system_message: str | None
    turn_sep: str
    after_image: str = ""
    auto_add_bos: bool = False

    def render(self, user: str, system: str | None = None) -> str:
        """The prompt text, ending where the assistant answers; ``system`` defaults to the
        template's own message."""
        system = self.system_message if system is None else system
        head = f"{IM_START}system\n{system}{IM_END}{self.turn_sep}" if system else ""
        return f"{head}{IM_START}user\n{user}{IM_END}{self.turn_sep}{IM_START}assistant\n"

    def image_block(self, context: str) -> str:
        """The text that replaces the image placeholder; ``context`` is the image-context
        tokens."""
        return f"{IMG_START}{context}{IMG_END}{self.after_image}"


# "humanbeauty": ChatML with newline-separated turns and InternVL2's own system message (as
# InternVL2's tokenizer chat template writes it). "official": the template HumanAesExpert was
# trained with (ms-swift 2.x InternvlTemplate): prompt
# '<|im_start|>user\n{{QUERY}}<|im_end|><|im_start|>assistant\n', system prefix
# '<|im_start|>system\n{{SYSTEM}}<|im_end|>', suffix '<|im_end|>', turns joined without newlines;
# the image tag becomes '<img>', the image-context tokens, '</img>\n'; BOS where the tokenizer has
# one.
CHAT_TEMPLATES: dict[str, ChatTemplate] = {
    "humanbeauty": ChatTemplate("humanbeauty", INTERNVL_SYSTEM_MESSAGE, turn_sep="\n"),
    "official": ChatTemplate(
        "official", INTERNLM_SYSTEM_MESSAGE, turn_sep="", after_image="\n", auto_add_bos=True
    ),
}


class TemplateSystem:
    """Marks "the chat template's own system message" (None means no system turn)."""

    def __repr__(self) -> str:
        return "TEMPLATE_SYSTEM"


TEMPLATE_SYSTEM = TemplateSystem()


def system_for(template: ChatTemplate, system: str | TemplateSystem | None) -> str | None:
    """``system``, or the template's own message for :data:`TEMPLATE_SYSTEM`."""
    return template.system_message if isinstance(system, TemplateSystem) else system


def chat_template(name: str) -> ChatTemplate:
    try:
        return CHAT_TEMPLATES[name]
    except KeyError:
        raise ValueError(
            f"unknown chat template {name!r}; known: {', '.join(CHAT_TEMPLATES)}"
        ) from None


def query(expert: bool, index: int) -> str:
    """The user turn: image placeholder, newline, one of the official prompts."""
    prompts = EXPERT_PROMPTS if expert else OVERALL_PROMPTS
    return f"{IMAGE_PLACEHOLDER}\n{prompts[index % len(prompts)]}"


def chat_prompt(user: str, system: str | None) -> str:
    """ChatML with newline-separated turns (the "humanbeauty" template), ending where the
    assistant answers; no system turn when ``system`` is None."""
    return CHAT_TEMPLATES["humanbeauty"].render(user, system or "")


def overall_answer(level: str) -> str:
    return f"{OVERALL_ANSWER_PREFIX} {level}"


def expert_answer(scores: Sequence[float | None]) -> str:
    """Twelve lines "{i}. {Name} : {level}" in the official order (no trailing newline)."""
    if len(scores) != len(DIMENSIONS):
        raise ValueError(f"expected {len(DIMENSIONS)} scores, got {len(scores)}")
    return "\n".join(
        f"{d.index}. {d.name} : {NOT_APPLICABLE if s is None else score_to_level(s)}"
        for d, s in zip(DIMENSIONS, scores, strict=True)
    )


_ANSWER_LINE = re.compile(r"^\s*(\d{1,2})\s*[.)]\s*([^:]*?)\s*:\s*(.+?)\s*\.?\s*$")
_BY_NAME = {d.name.lower(): d for d in DIMENSIONS}
_BY_INDEX = {d.index: d for d in DIMENSIONS}


def parse_expert_answer(text: str) -> dict[str, str | None]:
    """The levels an LM expert answer gives, by dimension key: a level name, or None where it
    says "not applicable". Lines are matched by the dimension's name (or, failing that, its
    number); a dimension whose line is missing or whose level is not a level word is left out,
    so an evaluation can count it as unanswered rather than guess."""
    found: dict[str, str | None] = {}
    for line in text.splitlines():
        match = _ANSWER_LINE.match(line)
        if not match:
            continue
        number, name, answer = int(match[1]), match[2].strip().lower(), match[3].strip().lower()
        dim = _BY_NAME.get(name) or _BY_INDEX.get(number)
        if dim is None or dim.key in found:
            continue
        if answer in LEVELS:
            found[dim.key] = answer
        elif answer == NOT_APPLICABLE:
            found[dim.key] = None
    return found
