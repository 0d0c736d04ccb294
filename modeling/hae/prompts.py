"""Prompts, chat format and LM answer texts of the official HumanAesExpert code.

The five overall questions are the official list; the 12-dimension questions are the same five
with " from 12 different dimensions" inserted before the final punctuation. The image comes first:
``"<image>\\n" + prompt``. Dimension names and levels come from :mod:`humanbeauty.standard`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"


def query(expert: bool, index: int) -> str:
    """The user turn: image placeholder, newline, one of the official prompts."""
    prompts = EXPERT_PROMPTS if expert else OVERALL_PROMPTS
    return f"{IMAGE_PLACEHOLDER}\n{prompts[index % len(prompts)]}"


def chat_prompt(user: str, system: str | None) -> str:
    """ChatML, as InternVL2 (Qwen2/InternLM2 LLMs) uses it, ending where the assistant answers."""
    head = f"{IM_START}system\n{system}{IM_END}\n" if system else ""
    return f"{head}{IM_START}user\n{user}{IM_END}\n{IM_START}assistant\n"


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
