"""Training recipes (issue #15 item 2): the official recipe against the official code's own
rules, written out here from the official sources (not from the implementation), and the
project's recipe unchanged.

Official sources quoted below:
- KwaiVGI/HumanAesExpert ``finetune-workspace/finetune-HumanAesExpert-1b.sh`` (``swift sft
  --sft_type lora`` with no ``--lora_target_modules``, so ms-swift's DEFAULT for the model type)
  and ``HumanAesExpert_register.py`` (template ``Internvl2_HumanAesExpertTemplate``, a subclass
  of ``InternvlTemplate``; query ``'<image>\\n' + prompt``; model type registered with
  ``LoRATM.internvl``);
- its ms-swift 2.x: ``swift/utils/module_mapping.py`` ``get_regex_for_mm_default_lora`` (the
  regex over module names, INTERNVL_KEYS language_model='language_model', connector='mlp1'),
  ``swift/tuners/peft.py`` ``_create_and_replace_hook2``, which ``hot_patch_peft_module``
  installs for LoRA when the target is a regex string (a matched module of a multimodal model
  is adapted only if its class name holds "linear", or it is an Embedding/Conv), and
  ``swift/llm/utils/template.py`` ``InternvlTemplate`` (prefix, prompt, suffix, system, the image
  tag) and ``SftArguments`` defaults (rank 8, alpha 32, dropout 0.05, LR 1e-4, weight decay 0.1,
  warmup 0.05, cosine, gradient accumulation 16 / batch / processes).
"""

from __future__ import annotations

import json
import random
import re
import warnings

import pytest
import torch
from torch import nn

from modeling.hae.backbone import load_backbone
from modeling.hae.config import TrainConfig
from modeling.hae.data import ReleaseDataset, open_image, read_split
from modeling.hae.heads import LinearRegressionHead, RegressionHead
from modeling.hae.loop import Optimisation, Runtime
from modeling.hae.losses import lm_target
from modeling.hae.model import HumanAesExpert, LoraSettings
from modeling.hae.recipes import RecipeError
from modeling.hae.train import HaeTraining, parse_args
from modeling.hae.train import main as train_main

# --- the official rules, as the official code states them ------------------------------------

# ms-swift get_regex_for_mm_default_lora('internvl') in the HumanAesExpert fork; peft matches a
# string target with re.fullmatch against each module name of the official model.
OFFICIAL_LORA_REGEX = (
    r"^(language_model|mlp1)(?!.*(lm_head|output|emb|wte|shared|lm_regression_head|expert_head"
    r"|expert_head1|expert_head2|expert_head3|expert_head4)).*"
)


def official_adapts(name: str, module: nn.Module) -> bool:
    """ms-swift + peft: the name matches, and the module is a linear (or Embedding/Conv) layer."""
    if not re.fullmatch(OFFICIAL_LORA_REGEX, name):
        return False
    return "linear" in type(module).__name__.lower() or isinstance(
        module, (nn.Embedding, nn.Conv2d)
    )


def official_name(native: str) -> str:
    """A transformers-native InternVL module name in the official remote-code layout
    (InternVLChatModel: vision_model, mlp1 = Sequential(LayerNorm, Linear, GELU, Linear),
    language_model = the causal LM)."""
    projector = {"layer_norm": "0", "linear_1": "1", "act": "2", "linear_2": "3"}
    if native == "lm_head":
        return "language_model.lm_head"
    for prefix, official in (
        ("model.language_model", "language_model.model"),
        ("model.vision_tower", "vision_model"),
    ):
        if native == prefix or native.startswith(prefix + "."):
            return official + native[len(prefix) :]
    if native.startswith("model.multi_modal_projector."):
        return "mlp1." + projector[native.split(".")[2]]
    return native


# ms-swift InternvlTemplate (the base of Internvl2_HumanAesExpertTemplate)
SWIFT_SYSTEM = "You are an AI assistant whose name is InternLM (书生·浦语)."
SWIFT_SYSTEM_PREFIX = "<|im_start|>system\n{{SYSTEM}}<|im_end|>"
SWIFT_PROMPT = "<|im_start|>user\n{{QUERY}}<|im_end|><|im_start|>assistant\n"
SWIFT_SUFFIX = "<|im_end|>"
SWIFT_IMAGE = ("<img>", "</img>\n")  # replace_tag: ['<img>', [-100], '</img>\n']
# HumanAesExpert_register.py humanaes_expert_prompts
HAE_PROMPTS = {
    0: [
        "Can you evaluate the aesthetics of the human image?",
        "Rate the aesthetics of this human picture.",
        "How is the aesthetics of this human image?",
        "Can you rate the aesthetics of this human picture?",
        "Please evaluate the aesthetics of the human image.",
    ],
    1: [
        "Can you evaluate the aesthetics of the human image from 12 different dimensions?",
        "Rate the aesthetics of this human picture from 12 different dimensions.",
        "How is the aesthetics of this human image from 12 different dimensions?",
        "Can you rate the aesthetics of this human picture from 12 different dimensions?",
        "Please evaluate the aesthetics of the human image from 12 different dimensions.",
    ],
}


def official_pieces(expert: bool, index: int) -> tuple[str, str]:
    """The official prompt text before and after the image-context tokens."""
    query = "<image>\n" + HAE_PROMPTS[int(expert)][index]
    text = SWIFT_SYSTEM_PREFIX.replace("{{SYSTEM}}", SWIFT_SYSTEM)
    text += SWIFT_PROMPT.replace("{{QUERY}}", query)
    before, after = text.split("<image>")
    return before + SWIFT_IMAGE[0], SWIFT_IMAGE[1] + after


# --- fixtures ---------------------------------------------------------------------------------


def official_config(tiny_checkpoint, tiny_release, tmp_path, **settings) -> TrainConfig:
    return TrainConfig.load(
        None,
        recipe="official",
        backbone=str(tiny_checkpoint),
        data=str(tiny_release),
        out=str(tmp_path),
        **settings,
    )


def stage1(cfg: TrainConfig, tiny_release, tmp_path) -> HaeTraining:
    torch.manual_seed(0)
    return HaeTraining(
        cfg.for_world(1), str(tiny_release), tmp_path, Runtime(torch.device("cpu")), None,
        {"epoch": 0, "done": 0},
    )


# --- LoRA placement and what trains -----------------------------------------------------------


def test_official_trainable_parameters_are_the_official_regex_selection_plus_heads(
    tiny_checkpoint, tiny_release, tmp_path
):
    plain = load_backbone(tiny_checkpoint).model  # the module tree before any adapter
    adapted = {
        native
        for native, module in plain.named_modules()
        if official_adapts(official_name(native), module)
    }
    # the rule reaches the LLM's linear layers and both projector linears, nothing else
    assert {official_name(n) for n in adapted} >= {"mlp1.1", "mlp1.3"}
    assert not any(n.startswith(("model.vision_tower", "lm_head")) for n in adapted)
    assert any(".self_attn.q_proj" in n for n in adapted)
    assert any(".mlp.down_proj" in n for n in adapted)

    task = stage1(official_config(tiny_checkpoint, tiny_release, tmp_path), tiny_release, tmp_path)
    expected = {
        f"vlm.base_model.model.{name}.lora_{ab}.default.weight"
        for name in adapted
        for ab in ("A", "B")
    }
    expected |= {f"heads.regression.{k}" for k, _ in task.model.heads.regression.named_parameters()}
    expected |= {f"heads.expert.{k}" for k, _ in task.model.heads.expert.named_parameters()}
    trainable = {n for n, p in task.model.named_parameters() if p.requires_grad}
    assert trainable == expected

    # the optimizer gets exactly these, at the official LR, weight decay 0.1 except biases and
    # norm weights (Hugging Face Trainer)
    by_id = {id(p): n for n, p in task.model.named_parameters()}
    groups = task.param_groups()
    assert {by_id[id(p)] for g in groups for p in g["params"]} == trainable
    assert {g["lr"] for g in groups} == {1e-4}
    for group in groups:
        names = {by_id[id(p)] for p in group["params"]}
        if group.get("weight_decay") == 0.0:
            assert all(n.endswith("bias") or ".body.0." in n for n in names), names
        else:
            assert not any(n.endswith("bias") for n in names)
    peft = task.model.vlm.peft_config["default"]
    assert (peft.r, peft.lora_alpha, peft.lora_dropout) == (8, 32, 0.05)
    assert isinstance(task.model.heads.regression, LinearRegressionHead)


def test_project_recipe_is_unchanged(tiny_checkpoint, tiny_release, tmp_path):
    cfg = TrainConfig()
    assert cfg.recipe == "humanbeauty"
    assert (cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout) == (16, 32, 0.05)
    assert (cfg.lr, cfg.head_lr, cfg.weight_decay, cfg.warmup_ratio) == (1e-4, 1e-3, 0.01, 0.03)
    assert (cfg.batch_size, cfg.for_world(1).grad_accum, cfg.effective_batch) == (4, 1, None)
    assert (cfg.lora_language, cfg.lora_vision, cfg.lora_projector) == (True, True, False)
    assert (cfg.regression_head, cfg.chat_template, cfg.decay_bias_and_norm) == (
        "mlp", "humanbeauty", True,
    )
    assert TrainConfig.load(None) == cfg

    task = stage1(
        TrainConfig.load(None, backbone=str(tiny_checkpoint)), tiny_release, tmp_path
    )
    lora = task.model.vlm.peft_config["default"]
    # the same peft regex as before recipes existed: LLM attention/MLP and the vision tower
    assert lora.target_modules == LoraSettings().target_regex()
    adapted = {n.split(".lora_")[0] for n in dict(task.model.named_parameters()) if "lora_A" in n}
    assert any(".vision_tower." in n for n in adapted)
    assert not any("multi_modal_projector" in n for n in adapted)
    assert isinstance(task.model.heads.regression, RegressionHead)
    groups = task.param_groups()
    assert [g["lr"] for g in groups] == [1e-4, 1e-3]
    assert all("weight_decay" not in g for g in groups)

    encoder = task.model.encoder
    text = encoder.prompt_text(False, 1, 1)
    system = (
        "你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, "  # noqa: RUF001
        "是一个有用无害的人工智能助手。"
    )
    image = "<img>" + "<IMG_CONTEXT>" * encoder.image_seq_length + "</img>"
    assert text == (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{image}\n"
        "Rate the aesthetics of this human picture.<|im_end|>\n<|im_start|>assistant\n"
    )


# --- the chat template ------------------------------------------------------------------------


@pytest.mark.parametrize("expert", [False, True], ids=["overall", "12-dim"])
def test_official_chat_template_is_byte_identical_to_ms_swift(
    expert, tiny_checkpoint, tiny_release
):
    encoder = load_backbone(tiny_checkpoint, chat_template="official").encoder
    tokenizer = encoder.tokenizer
    for index in range(5):
        for tiles in (1, 3):
            before, after = official_pieces(expert, index)
            expected = before + "<IMG_CONTEXT>" * (encoder.image_seq_length * tiles) + after
            assert encoder.prompt_text(expert, index, tiles).encode() == expected.encode()

    # token level, as ms-swift builds it: each text piece tokenised on its own, the [-100]
    # placeholder replaced by <IMG_CONTEXT> x tokens per tile x tiles, then the answer with the
    # suffix, which alone carries labels
    def tok(text: str) -> list[int]:
        return tokenizer(text, return_attention_mask=False, add_special_tokens=False)["input_ids"]

    bos = tokenizer.bos_token_id
    head = [bos] if isinstance(bos, int) and bos in tokenizer.encode("") else []
    context = tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    data = ReleaseDataset([s for s in read_split(tiny_release, "train") if s.is_expert == expert])
    image, sample = data[0]
    seed = 7
    index = random.Random(seed).randrange(5)  # encode_training draws the prompt the same way
    batch = encoder.encode_training([image], [sample], random.Random(seed))
    tiles = batch.pixel_values.shape[0]
    before, after = official_pieces(expert, index)
    prompt = head + tok(before) + [context] * (encoder.image_seq_length * tiles) + tok(after)
    answer = tok(lm_target(sample) + SWIFT_SUFFIX)
    assert batch.input_ids[0].tolist() == prompt + answer
    assert batch.labels[0].tolist() == [-100] * len(prompt) + answer


def test_official_template_puts_bos_first_where_the_tokenizer_has_one(tiny_checkpoint):
    """ms-swift's auto_add_bos: BOS first when ``tokenizer.encode('')`` holds it (InternLM2's
    tokenizer; Qwen2's has none, like the tiny one)."""
    backbone = load_backbone(tiny_checkpoint, chat_template="official")
    assert backbone.encoder.prefix_ids == ()  # the tiny tokenizer adds no BOS

    class WithBos:  # the tiny tokenizer, but adding a BOS as InternLM2's does
        def __init__(self, inner):
            self.inner = inner
            self.bos_token_id = inner.convert_tokens_to_ids("<|endoftext|>")

        def encode(self, text, add_special_tokens=True):
            ids = self.inner.encode(text, add_special_tokens=False)
            return [self.bos_token_id, *ids] if add_special_tokens else ids

        def __getattr__(self, name):
            return getattr(self.inner, name)

    from modeling.hae.backbone import build_encoder

    tokenizer = WithBos(backbone.encoder.tokenizer)
    official = build_encoder(backbone.model, tokenizer, chat_template="official")
    project = build_encoder(backbone.model, tokenizer, chat_template="humanbeauty")
    assert official.prefix_ids == (tokenizer.bos_token_id,)
    assert official.prompt_ids(False, 1, 1)[0] == tokenizer.bos_token_id
    assert project.prefix_ids == () and project.prompt_ids(False, 1, 1)[0] != tokenizer.bos_token_id


# --- the linear head --------------------------------------------------------------------------


def test_linear_regression_head_is_one_layer_without_squashing():
    torch.manual_seed(0)
    head = LinearRegressionHead(64)
    assert [tuple(p.shape) for p in head.parameters()] == [(1, 64), (1,)]
    features = torch.randn(5, 64, dtype=torch.bfloat16) * 10
    with torch.no_grad():
        out = head(features)
    assert out.shape == (5,) and out.dtype == torch.float32
    by_hand = features.float() @ head.linear.weight[0] + head.linear.bias[0]
    assert torch.allclose(out, by_hand)
    assert float(out.abs().max()) > 1.0  # unbounded: no sigmoid


# --- settings precedence and the effective batch ----------------------------------------------


def test_config_file_and_flags_override_the_recipe(tmp_path):
    official = TrainConfig.load(None, recipe="official")
    assert (official.lora_r, official.head_lr, official.weight_decay) == (8, 1e-4, 0.1)
    assert (official.warmup_ratio, official.batch_size, official.effective_batch) == (0.05, 1, 16)
    assert (official.lora_vision, official.lora_projector, official.lora_all_linear) == (
        False, True, True,
    )
    assert (official.regression_head, official.chat_template) == ("linear", "official")

    file = tmp_path / "run.toml"
    file.write_text('recipe = "official"\nlora_r = 4\nhead_lr = 5e-4\nbatch_size = 2\n')
    cfg = TrainConfig.load(file)
    assert (cfg.recipe, cfg.lora_r, cfg.head_lr, cfg.lr, cfg.weight_decay) == (
        "official", 4, 5e-4, 1e-4, 0.1,
    )
    assert cfg.for_world(1).grad_accum == 8 and cfg.for_world(2).grad_accum == 4

    # a flag beats the file: --recipe humanbeauty keeps the file's values on the project's
    args = parse_args(["--recipe", "humanbeauty", "--config", str(file), "--max-steps", "3"])
    cfg = TrainConfig.load(args.config, recipe=args.recipe, max_steps=args.max_steps)
    assert (cfg.recipe, cfg.lora_r, cfg.head_lr, cfg.weight_decay, cfg.max_steps) == (
        "humanbeauty", 4, 5e-4, 0.01, 3,
    )
    with pytest.raises(SystemExit):
        parse_args(["--recipe", "nonsense"])

    # an explicit grad_accum replaces the recipe's effective batch
    file.write_text('recipe = "official"\ngrad_accum = 3\n')
    cfg = TrainConfig.load(file)
    assert cfg.effective_batch is None and cfg.for_world(2).grad_accum == 3

    file.write_text('recipe = "nonsense"\n')
    with pytest.raises(RecipeError, match="unknown recipe 'nonsense'"):
        TrainConfig.load(file)


def test_an_effective_batch_that_cannot_be_made_is_refused(tiny_release, tmp_path):
    cfg = TrainConfig.load(None, recipe="official", batch_size=3)
    with pytest.raises(RecipeError, match="effective batch of 16 cannot be made from 3"):
        cfg.for_world(1)
    with pytest.raises(RecipeError, match=r"4 image\(s\) per process x 8 process"):
        TrainConfig.load(None, recipe="official", batch_size=4).for_world(8)
    with pytest.raises(RecipeError, match="grad_accum 2 contradicts effective_batch 16"):
        TrainConfig.load(None, recipe="official", grad_accum=2, effective_batch=16).for_world(1)
    assert TrainConfig.load(None, recipe="official", batch_size=2).for_world(4).grad_accum == 2

    # the command line says so and trains nothing
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"batch_size": 3}))
    run = tmp_path / "run"
    argv = ["--data", str(tiny_release), "--out", str(run), "--backbone", "tiny",
            "--recipe", "official", "--config", str(config), "--max-steps", "1"]
    with pytest.raises(SystemExit, match="effective batch of 16 cannot be made"):
        train_main(argv)
    assert not (run / "checkpoints").exists() and not (run / "final").exists()

    lite = ["--data", str(tiny_release), "--out", str(run), "--backbone", "lite",
            "--clip-model", "tiny", "--recipe", "official"]
    with pytest.raises(SystemExit, match="lite backbone"):
        train_main(lite)


# --- train, save, load and score under each recipe --------------------------------------------


@pytest.mark.parametrize("recipe", ["humanbeauty", "official"])
def test_train_under_each_recipe_then_load_final_and_score(
    recipe, tiny_checkpoint, tiny_release, tmp_path
):
    config = tmp_path / "settings.json"  # keep it quick: 4 per micro-batch, one voter step
    config.write_text(json.dumps({"batch_size": 4, "metavoter_steps": 1, "eval_at_end": False}))
    run = tmp_path / "run"
    argv = ["--data", str(tiny_release), "--out", str(run), "--backbone", str(tiny_checkpoint),
            "--recipe", recipe, "--config", str(config), "--max-steps", "2"]
    assert train_main(argv) == 0
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["recipe"] == recipe
    assert saved["grad_accum"] == (4 if recipe == "official" else 1)  # 4 x 4 x 1 = 16

    final = run / "final"
    hae = json.loads((final / "hae_config.json").read_text())
    template = "official" if recipe == "official" else "humanbeauty"
    head = "linear" if recipe == "official" else "mlp"
    assert (hae["recipe"], hae["chat_template"], hae["regression_head"]) == (
        recipe, template, head,
    )
    adapter = json.loads((final / "adapter" / "adapter_config.json").read_text())
    targets = json.dumps(adapter["target_modules"])
    assert ("multi_modal_projector" in targets) == (recipe == "official")
    assert ("vision_tower" in targets) == (recipe == "humanbeauty")
    assert adapter["r"] == (8 if recipe == "official" else 16)

    model = HumanAesExpert.from_pretrained(final)
    assert model.encoder.chat_template == template
    assert isinstance(
        model.heads.regression, LinearRegressionHead if recipe == "official" else RegressionHead
    )
    text = model.encoder.prompt_text(False, model.config.prompt_index, 1)
    assert text.startswith(
        "<|im_start|>system\n" + SWIFT_SYSTEM + "<|im_end|><|im_start|>user\n<img>"
        if recipe == "official"
        else "<|im_start|>system\n你是由"
    )
    images = [open_image(s.image_path) for s in read_split(tiny_release, "test")]
    first, again = model.score(images), model.score(images)
    assert [r.as_dict() for r in first] == [r.as_dict() for r in again]
    assert len(first) == 4
    for result in first:
        assert set(result.heads) == {"lm", "regression", "expert"}
        assert 0.0 <= result.overall <= 1.0
        assert all(0.0 <= v <= 1.0 for v in result.scores.values())


def test_resuming_under_another_recipe_is_refused(tiny_checkpoint, tiny_release, tmp_path):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"metavoter_steps": 1, "eval_at_end": False}))
    run = tmp_path / "run"
    argv = ["--data", str(tiny_release), "--out", str(run), "--backbone", str(tiny_checkpoint),
            "--config", str(config), "--max-steps", "1"]
    assert train_main(argv) == 0
    log = (run / "metrics.jsonl").read_text()
    with pytest.raises(SystemExit, match="trained with the humanbeauty recipe"):
        train_main([*argv[:-1], "2", "--resume", "--recipe", "official"])
    assert (run / "metrics.jsonl").read_text() == log  # nothing trained, nothing logged


def test_a_model_saved_before_recipes_loads_as_the_project_recipe(
    tiny_checkpoint, tiny_release, tmp_path
):
    torch.manual_seed(0)
    model = HumanAesExpert.from_backbone(
        tiny_checkpoint, lora=LoraSettings(r=4, alpha=8, dropout=0.0), head_hidden=32
    )
    saved = model.save_pretrained(tmp_path / "model")
    raw = json.loads((saved / "hae_config.json").read_text())
    for key in ("recipe", "chat_template", "regression_head"):
        del raw[key]  # what a directory written before recipes holds
    (saved / "hae_config.json").write_text(json.dumps(raw))
    loaded = HumanAesExpert.from_pretrained(saved)
    assert (loaded.config.recipe, loaded.encoder.chat_template) == ("humanbeauty", "humanbeauty")
    assert isinstance(loaded.heads.regression, RegressionHead)
    images = [open_image(s.image_path) for s in read_split(tiny_release, "test")]
    model.eval()
    before, after = model.predict(images), loaded.predict(images)
    for key in ("lm", "regression", "expert", "metavoter"):
        assert torch.equal(before[key], after[key]), key


def learning_rates(optimizer, scheduler, steps: int) -> list[float]:
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients: nothing moves, but the scheduler sees a step
        scheduler.step()
    return rates


@pytest.mark.parametrize("total", [7, 37, 200])
def test_official_schedule_is_the_hugging_face_trainers(total, tmp_path):
    """ms-swift trains with the Hugging Face Trainer: cosine with warmup over
    ``TrainingArguments.get_warmup_steps`` (ceil of the ratio) steps, starting at LR 0."""
    from transformers import TrainingArguments, get_cosine_schedule_with_warmup

    official = TrainConfig.load(None, recipe="official")
    ours = Optimisation.create(
        [{"params": [nn.Parameter(torch.zeros(1))], "lr": 1e-4}], official, total, None
    )
    args = TrainingArguments(output_dir=str(tmp_path), warmup_steps=official.warmup_ratio)
    reference = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1e-4)
    schedule = get_cosine_schedule_with_warmup(reference, args.get_warmup_steps(total), total)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = learning_rates(reference, schedule, total)
        got = learning_rates(ours.optimizer, ours.scheduler, total)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-18)
    assert got[0] == 0.0

    project = Optimisation.create(
        [{"params": [nn.Parameter(torch.zeros(1))], "lr": 1e-4}], TrainConfig(), total, None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = learning_rates(project.optimizer, project.scheduler, 1)[0]
    assert first > 0.0  # the project's schedule is unchanged: its first step already learns
