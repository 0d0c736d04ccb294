from __future__ import annotations

import math
import random

import torch

from humanbeauty.standard import DIMENSIONS, score_to_level
from modeling.hae import prompts
from modeling.hae.backbone import load_backbone
from modeling.hae.data import ReleaseDataset, read_split
from modeling.hae.losses import lm_target, masked_mse
from modeling.hae.model import HumanAesExpert, LoraSettings


def test_masked_dimensions_get_exactly_zero_gradient():
    torch.manual_seed(0)
    pred = torch.rand(4, 12, requires_grad=True)
    target = torch.rand(4, 12)
    mask = torch.ones(4, 12, dtype=torch.bool)
    mask[:2, :11] = False  # two overall-only rows: only the comprehensive score supervised
    mask[2, 3] = False  # a "not applicable" dimension
    target[~mask] = float("nan")  # absent targets must not leak in, not even as NaN
    loss = masked_mse(pred, target, mask)
    loss.backward()
    assert math.isfinite(loss.item())
    assert torch.all(pred.grad[~mask] == 0)
    assert torch.all(pred.grad[mask] != 0)
    expected = ((pred.detach() - target)[mask] ** 2).mean()
    assert torch.allclose(loss, expected)


def test_overall_only_samples_do_not_train_the_eleven_other_expert_outputs(
    tiny_checkpoint, tiny_release
):
    model = HumanAesExpert.from_backbone(tiny_checkpoint, lora=LoraSettings(r=2, alpha=4))
    data = ReleaseDataset([s for s in read_split(tiny_release, "train") if not s.is_expert])
    items = [data[i] for i in range(2)]
    batch = model.encoder.encode_training(
        [i[0] for i in items], [i[1] for i in items], random.Random(0)
    )
    assert batch.mask[:, :11].sum() == 0 and batch.mask[:, 11].all()
    expert = model.run(batch, train=True)["expert"]
    expert.retain_grad()
    masked_mse(expert, batch.targets, batch.mask).backward()
    assert torch.all(expert.grad[:, :11] == 0) and torch.all(expert.grad[:, 11] != 0)


def test_lm_targets_are_the_official_texts(tiny_release):
    samples = read_split(tiny_release, "train")
    overall = next(s for s in samples if not s.is_expert)
    assert lm_target(overall) == f"The aesthetics of the human image is {overall.text_level}"
    expert = next(s for s in samples if s.is_expert)
    lines = lm_target(expert).split("\n")
    assert len(lines) == 12
    for line, d, score in zip(lines, DIMENSIONS, expert.scores, strict=True):
        assert line == f"{d.index}. {d.name} : {score_to_level(score)}"
    assert lines[-1].startswith("12. Comprehensive Aesthetic Score : ")
    assert prompts.expert_answer([0.1] * 12).split("\n")[0] == "1. Facial Brightness : bad"


def test_prompts_follow_the_official_list():
    assert len(prompts.OVERALL_PROMPTS) == len(prompts.EXPERT_PROMPTS) == 5
    assert prompts.EXPERT_PROMPTS[0] == (
        "Can you evaluate the aesthetics of the human image from 12 different dimensions?"
    )
    assert prompts.EXPERT_PROMPTS[1] == (
        "Rate the aesthetics of this human picture from 12 different dimensions."
    )
    assert prompts.query(False, 1) == "<image>\nRate the aesthetics of this human picture."


def test_training_labels_cover_exactly_the_answer_and_end_of_turn(tiny_checkpoint, tiny_release):
    encoder = load_backbone(tiny_checkpoint).encoder
    data = ReleaseDataset(read_split(tiny_release, "train"))
    image, sample = data[0]
    batch = encoder.encode_training([image], [sample], random.Random(0))
    labels = batch.labels[0][batch.labels[0] != -100].tolist()
    assert encoder.tokenizer.decode(labels) == lm_target(sample) + prompts.IM_END
    assert int(batch.head_index[0]) == int((batch.labels[0] == -100).sum()) - 1
