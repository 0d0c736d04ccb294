"""The rebuilt InternLM2 tokenizer encodes like the official ``InternLM2Tokenizer``: text split
at the added tokens, each piece encoded by SentencePiece on its own, ``<s>`` in front."""

from __future__ import annotations

import json
import re

import sentencepiece
from transformers import AutoTokenizer

from humanbeauty.standard import LEVELS
from modeling.hae import prompts
from modeling.hae.backbone import level_token_ids
from tests.convert.conftest import source


def _official_encode(text: str) -> list[int]:
    """What the official slow tokenizer does (transformers splits at added tokens first)."""
    src = source("internlm2-tiny")
    model = sentencepiece.SentencePieceProcessor(model_file=str(src / "tokenizer.model"))
    added = json.loads((src / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    ids = {entry["content"]: int(i) for i, entry in added.items()}
    pattern = "(" + "|".join(re.escape(t) for t in sorted(ids, key=len, reverse=True)) + ")"
    out = [ids["<s>"]]
    for piece in re.split(pattern, text):
        if piece:
            out += [ids[piece]] if piece in ids else model.encode(piece)
    return out


def test_internlm2_tokenizer_matches_sentencepiece_on_the_projects_texts(converted):
    tokenizer = AutoTokenizer.from_pretrained(converted["internlm2-tiny"], local_files_only=True)
    texts = [
        prompts.chat_prompt(prompts.query(expert, i), prompts.INTERNVL_SYSTEM_MESSAGE)
        for expert in (False, True)
        for i in range(5)
    ]
    texts += [prompts.overall_answer(level) for level in LEVELS]
    texts += ["  two  spaces ", "a\nb\n\n", "\uff0c\u4e2d\u6587 text"]  # fullwidth comma, CJK
    texts += ["<img><IMG_CONTEXT></img>\nx"]
    for text in texts:
        assert tokenizer(text)["input_ids"] == _official_encode(text), text


def test_level_words_are_read_where_the_answer_has_them(converted):
    tokenizer = AutoTokenizer.from_pretrained(converted["internlm2-tiny"], local_files_only=True)
    ids = level_token_ids(tokenizer)
    prefix = _official_encode(prompts.OVERALL_ANSWER_PREFIX)
    for level, tid in zip(LEVELS, ids, strict=True):
        assert _official_encode(prompts.overall_answer(level))[len(prefix)] == tid
    # Alone, " good" is a bare dummy-prefix piece first: the same for every level.
    assert len({_official_encode(" " + level)[1] for level in LEVELS}) == 1
