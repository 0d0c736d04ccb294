from __future__ import annotations

import math
import random

import pytest
import torch

from humanbeauty.standard import DIMENSION_KEYS, LEVEL_MIDPOINTS, LEVELS
from modeling.hae.data import ReleaseDataset, read_split
from modeling.hae.losses import hae_loss
from modeling.hae.model import HumanAesExpert, LoraSettings


@pytest.fixture
def model(tiny_checkpoint) -> HumanAesExpert:
    torch.manual_seed(0)
    return HumanAesExpert.from_backbone(
        tiny_checkpoint, lora=LoraSettings(r=4, alpha=8, dropout=0.0), head_hidden=32
    )


@pytest.fixture
def items(tiny_release):
    data = ReleaseDataset(read_split(tiny_release, "train"))
    return [data[i] for i in range(len(data))]


def test_two_training_steps_then_save_load_score_identically(model, items, tmp_path):
    params = model.lora_parameters() + [
        p for m in (model.heads.regression, model.heads.expert) for p in m.parameters()
    ]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    lora_b = [p for n, p in model.vlm.named_parameters() if "lora_B" in n]
    assert lora_b and all(float(p.detach().abs().sum()) == 0 for p in lora_b)  # B starts at 0
    model.train()
    for step in range(2):
        chunk = items[step * 4 : step * 4 + 4]
        batch = model.encoder.encode_training(
            [i[0] for i in chunk], [i[1] for i in chunk], random.Random(step)
        )
        loss, parts = hae_loss(model.run(batch, train=True), batch.targets, batch.mask)
        assert math.isfinite(loss.item()) and set(parts) == {"lm", "regression", "expert"}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert any(float(p.detach().abs().sum()) > 0 for p in lora_b)  # the adapters did learn

    images = [i[0] for i in items[:3]]
    model.eval()
    before = model.predict(images)
    results = model.score(images)
    for r in results:
        assert list(r.scores) == list(DIMENSION_KEYS)
        assert all(0.0 <= v <= 1.0 for v in r.scores.values())
        assert all(v in LEVELS for v in r.levels.values())
        assert 0.0 <= r.overall <= 1.0 and set(r.heads) == {"lm", "regression", "expert"}

    saved = model.save_pretrained(tmp_path / "model")
    assert {p.name for p in saved.iterdir()} >= {
        "hae_config.json",
        "heads.safetensors",
        "adapter",
        "backbone",
    }
    loaded = HumanAesExpert.from_pretrained(saved)
    after = loaded.predict(images)
    for key in ("lm", "regression", "expert", "metavoter"):
        assert torch.equal(before[key], after[key]), key
    assert [r.as_dict() for r in loaded.score(images)] == [r.as_dict() for r in results]


def test_lm_head_score_equals_hand_computation_from_logits(model, items):
    model.eval()
    images = [i[0] for i in items[:2]]
    batch = model.encoder.encode_scoring(images, expert=False, prompt_index=1)
    with torch.no_grad():
        score = model.run(batch)["lm"]
        logits = model.core(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            pixel_values=batch.pixel_values,
        ).logits[:, -1]
    ids = model.encoder.level_token_ids
    for row in range(len(images)):
        level_logits = [float(logits[row, i]) for i in ids]
        top = max(level_logits)
        weights = [math.exp(x - top) for x in level_logits]
        hand = sum(w * m for w, m in zip(weights, LEVEL_MIDPOINTS, strict=True)) / sum(weights)
        assert float(score[row]) == pytest.approx(hand, abs=1e-6)


def test_scoring_query_ends_with_the_overall_answer_prefix(model, items):
    batch = model.encoder.encode_scoring([items[0][0]], expert=False, prompt_index=1)
    text = model.encoder.tokenizer.decode(batch.input_ids[0])
    assert text.endswith(
        "Rate the aesthetics of this human picture.<|im_end|>\n<|im_start|>assistant\n"
        "The aesthetics of the human image is"
    )
    head = int(batch.head_index[0])
    assert model.encoder.tokenizer.decode(batch.input_ids[0, : head + 1]).endswith("assistant\n")


def test_generates_the_expert_answer_text(model, items):
    texts = model.generate_expert_text([items[0][0]], max_new_tokens=4)
    assert len(texts) == 1 and isinstance(texts[0], str)
