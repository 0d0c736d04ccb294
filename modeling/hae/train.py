"""Train HumanAesExpert (or its Lite variant) from a release directory.

``python -m modeling.train --data RELEASE_DIR --out RUN_DIR [--backbone HUB_ID_OR_PATH|tiny|lite]
[--config FILE] [--max-steps N] [--resume]``; the trained model lands in ``RUN_DIR/final/``.

Stage 1 trains LoRA adapters (where the recipe puts them: ``--recipe humanbeauty``, the default,
on the LLM and the vision tower; ``--recipe official`` on every linear layer of the LLM and the
projector, :mod:`.recipes`) and the regression and Expert heads with the LM loss plus the
(masked) score losses; stage 2 trains the MetaVoter with everything else
frozen, on the validation split (or a held-out share of train when the release has none), never
on the images the heads trained on.
Checkpoints go to ``RUN_DIR/checkpoints/step-N/`` and ``--resume`` continues from the newest;
metrics are appended to ``RUN_DIR/metrics.jsonl``. Multi-GPU: ``torchrun --nproc_per_node K -m
modeling.train ...`` (DDP). The loop is :func:`loop.train`, the one the Lite trainer runs too;
`HaeTraining` is what the full model brings to it.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from .backbone import EncodedBatch, PromptEncoder
from .config import TrainConfig
from .data import ReleaseDataset, Sample, TrainingData, training_data
from .errors import ReleaseError
from .loop import (
    EpochSampler,
    MetricsLog,
    Runtime,
    Trace,
    autocast,
    resolve_precision,
    setup_runtime,
    streams,
    teardown,
    train,
)
from .losses import LossWeights, hae_loss
from .model import HumanAesExpert, LoraSettings
from .recipes import DEFAULT_RECIPE, RECIPES, RecipeError
from .shards import ShardSet, ShardStream, StreamedTrainingData, streamed_training_data
from .tiny import build_tiny_checkpoint


class TrainCollator:
    """Runs in DataLoader workers: tiles the images and tokenises prompt + LM answer."""

    def __init__(self, encoder: PromptEncoder):
        self.encoder = encoder

    def __call__(self, items: list) -> EncodedBatch:
        images, samples = zip(*items, strict=True)
        rng = random.Random(int(torch.randint(0, 2**31 - 1, ()).item()))
        return self.encoder.encode_training(images, samples, rng)


class VoterCollator:
    """Stage 2: the two scoring queries per image (overall with answer prefix, 12-dim)."""

    def __init__(self, encoder: PromptEncoder, prompt_index: int):
        self.encoder, self.prompt_index = encoder, prompt_index

    def __call__(self, items: list) -> tuple[EncodedBatch, EncodedBatch, torch.Tensor]:
        images, samples = zip(*items, strict=True)
        overall, expert = self.encoder.encode_scoring_pair(images, self.prompt_index)
        return overall, expert, torch.tensor([s.overall for s in samples])


class Named:
    """A collate function that also answers the batch's sample names (for `Trace`)."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, items: list) -> tuple[list[str], object]:
        return [sample.image_name for _image, sample in items], self.collate(items)


def _as_is(item):
    return item


def micro_batches(
    dataset: ReleaseDataset | ShardSet,
    collate,
    cfg: TrainConfig,
    rt: Runtime,
    epoch: int,
    done: int,
) -> Iterator[tuple[int, int, list[str], object]]:
    """Yields (epoch, micro-batches done, the batch's sample names, batch) forever, resuming at
    ``done``: done in that epoch for a release's files; for streamed shards, done since the
    start (`ShardStream` skips them)."""
    if isinstance(dataset, ShardSet):
        yield from streamed_batches(dataset, collate, cfg, rt, done)
        return
    while True:
        sampler = EpochSampler(
            len(dataset), cfg.seed, epoch, rt.rank, rt.world, skip=done * cfg.batch_size
        )
        loader = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            sampler=sampler,
            collate_fn=Named(collate),
            num_workers=cfg.num_workers,
            persistent_workers=False,
        )
        for names, batch in loader:
            done += 1
            yield epoch, done, names, batch
        epoch, done = epoch + 1, 0


def streamed_batches(
    shards: ShardSet, collate, cfg: TrainConfig, rt: Runtime, done: int
) -> Iterator[tuple[int, int, list[str], object]]:
    """This rank's batches of its own shards (`ShardStream`), after the ``done`` it saw."""
    stream = ShardStream(
        shards, Named(collate), batch_size=cfg.batch_size, seed=cfg.seed, rank=rt.rank,
        world=rt.world, skip=done, shuffle_buffer=cfg.shuffle_buffer,
    )
    loader = DataLoader(
        stream, batch_size=None, collate_fn=_as_is,
        num_workers=stream.workers(cfg.num_workers), persistent_workers=False,
    )
    # The epoch of each batch: every rank takes `quota(epoch)` samples per epoch.
    epoch, left = 0, stream.quota(0)
    for _ in range(done):
        left -= cfg.batch_size
        while left <= 0:
            epoch, left = epoch + 1, left + stream.quota(epoch + 1)
    for names, batch in loader:
        done += 1
        yield epoch, done, names, batch
        left -= cfg.batch_size
        while left <= 0:
            epoch, left = epoch + 1, left + stream.quota(epoch + 1)


def backbone_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype:
    if cfg.backbone_dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
        cfg.backbone_dtype
    ]


def base_checkpoint(cfg: TrainConfig, run_dir: Path, rt: Runtime) -> str:
    if cfg.backbone != "tiny":
        return cfg.backbone
    path = run_dir / "tiny-backbone"
    if rt.main and not (path / "config.json").is_file():
        build_tiny_checkpoint(path, seed=cfg.seed)
    rt.barrier()
    return str(path.resolve())


def plan_steps(cfg: TrainConfig, n_samples: int, world: int) -> tuple[int, int]:
    per_step = cfg.batch_size * (cfg.grad_accum or 1) * world
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * n_samples / per_step))
    voter = cfg.metavoter_steps if cfg.metavoter_steps is not None else max(1, total // 10)
    return total, voter


def train_hae(cfg: TrainConfig, data: str, run_dir: Path, resume: bool) -> Path:
    rt = setup_runtime()
    try:
        cfg = cfg.for_world(rt.world)  # grad_accum from the effective batch, or refused
        return train(
            lambda latest, state: HaeTraining(cfg, data, run_dir, rt, latest, state),
            cfg, data, run_dir, resume, rt,
        )
    finally:
        teardown(rt)


class HaeTraining:
    """The full model in the shared loop (`loop.train`): LoRA adapters and the regression and
    Expert heads on the LM loss plus the masked score losses, over micro-batches of the
    release's images (DDP across processes), then the MetaVoter on the frozen heads' scores of
    held-out images."""

    name = "train"

    def __init__(
        self,
        cfg: TrainConfig,
        data: str,
        run_dir: Path,
        rt: Runtime,
        latest: Path | None,
        state: dict,
    ) -> None:
        self.cfg, self.rt = cfg, rt
        self.trace = Trace(run_dir, rt.rank, cfg.trace)
        self.data: TrainingData | StreamedTrainingData
        self.dataset: ReleaseDataset | ShardSet
        if streams(cfg, data):
            self.data = streamed_training_data(data, seed=cfg.seed, world=rt.world)
            self.dataset = self.data.heads
        else:
            self.data = training_data(data, seed=cfg.seed)
            self.dataset = ReleaseDataset(self.data.heads)
        self.amp = resolve_precision(cfg.precision, rt.device)
        self.model = self.train_module = self._build(run_dir, latest)
        self._prepare_stage1()
        self.net = (
            DDP(self.model, device_ids=[rt.local_rank] if rt.device.type == "cuda" else None)
            if rt.world > 1
            else self.model
        )
        weights = LossWeights(cfg.loss_lm, cfg.loss_regression, cfg.loss_expert)
        self.weights = weights
        self.loss_weights = {k: getattr(weights, k) for k in ("lm", "regression", "expert")}
        self.epoch, self.done = state["epoch"], state["done"]
        self.batches = micro_batches(
            self.dataset, TrainCollator(self.model.encoder), cfg, rt, self.epoch, self.done
        )

    def _build(self, run_dir: Path, latest: Path | None) -> HumanAesExpert:
        cfg, rt = self.cfg, self.rt
        dtype = backbone_dtype(cfg, rt.device)
        if latest is not None:
            model = HumanAesExpert.from_pretrained(latest, dtype=dtype, trainable=True)
            if model.config.recipe != cfg.recipe:
                raise RecipeError(
                    f"{latest} was trained with the {model.config.recipe} recipe; resume it "
                    f"with --recipe {model.config.recipe}, or train the {cfg.recipe} recipe "
                    "into a new run directory"
                )
        else:
            lora = LoraSettings(
                cfg.lora_r,
                cfg.lora_alpha,
                cfg.lora_dropout,
                cfg.lora_language,
                cfg.lora_vision,
                projector=cfg.lora_projector,
                all_linear=cfg.lora_all_linear,
            )
            model = HumanAesExpert.from_backbone(
                base_checkpoint(cfg, run_dir, rt),
                lora,
                cfg.head_hidden,
                dtype,
                cfg.max_tiles,
                chat_template=cfg.chat_template,
                regression_head=cfg.regression_head,
                recipe=cfg.recipe,
            )
        model.to(rt.device)
        if cfg.gradient_checkpointing:
            model.core.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
            model.core.enable_input_require_grads()
        return model

    def _prepare_stage1(self) -> None:
        """LoRA + regression/Expert heads learn; LM head, MetaVoter and the rest stay frozen."""
        heads = self.model.heads
        for p in heads.metavoter.parameters():
            p.requires_grad_(False)
        self.head_params = [p for m in (heads.regression, heads.expert) for p in m.parameters()]
        for p in self.head_params:
            p.requires_grad_(True)

    def plan(self, cfg: TrainConfig) -> tuple[int, int]:
        return plan_steps(cfg, len(self.dataset), self.rt.world)

    def param_groups(self) -> list[dict]:
        """LoRA at ``lr``, heads at ``head_lr``; with ``decay_bias_and_norm`` off (the official
        recipe, as the Hugging Face Trainer does) biases and norm weights get no weight decay."""
        groups = [{"params": self.head_params, "lr": self.cfg.head_lr}]
        lora_params = self.model.lora_parameters()
        if lora_params:
            groups.insert(0, {"params": lora_params, "lr": self.cfg.lr})
        if self.cfg.decay_bias_and_norm:
            return groups
        exempt = {id(p) for p in no_decay_parameters(self.model)}
        split = []
        for group in groups:
            decay = [p for p in group["params"] if id(p) not in exempt]
            rest = [p for p in group["params"] if id(p) in exempt]
            if decay:
                split.append({**group, "params": decay})
            if rest:
                split.append({**group, "params": rest, "weight_decay": 0.0})
        return split

    def accumulate(self, step: int, scaler: torch.amp.GradScaler) -> tuple[dict[str, float], int]:
        cfg, rt = self.cfg, self.rt
        parts_sum: dict[str, float] = {}
        samples = 0
        for micro in range(cfg.grad_accum):
            self.epoch, self.done, names, batch = next(self.batches)
            self.trace.write({"stage": "heads", "step": step + 1, "epoch": self.epoch,
                              "names": names})
            batch = batch.to(rt.device)
            # Under DDP, gradients are all-reduced on the step's last micro-batch only.
            sync = micro == cfg.grad_accum - 1 or rt.world == 1
            ctx = self.net.no_sync() if not sync and isinstance(self.net, DDP) else nullcontext()
            with ctx, autocast(rt.device, self.amp):
                out = self.net(**_inputs(batch))
                loss, parts = hae_loss(out, batch.targets, batch.mask, self.weights)
            scaler.scale(loss / cfg.grad_accum).backward()
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v / cfg.grad_accum
            samples += len(batch) * rt.world
        return parts_sum, samples

    def save_weights(self, directory: Path) -> None:
        self.model.save_pretrained(directory, include_base=False)

    def train_metavoter(self, steps: int, log: MetricsLog) -> None:
        voter = self.data.voter
        voter_set = voter if isinstance(voter, ShardSet) else ReleaseDataset(voter)
        train_metavoter(
            self.model, voter_set, self.cfg, self.rt, steps, self.amp, log, self.trace
        )

    def test_report(self, test: list[Sample] | ShardSet) -> dict:
        from .evaluate import build_report, evaluate_samples

        if not isinstance(test, ShardSet):
            return evaluate_samples(self.model, test, batch_size=self.cfg.eval_batch_size)
        pred, samples = predict_streamed(self.model, test, self.cfg.eval_batch_size)
        return build_report(pred, samples)


def predict_streamed(
    model: HumanAesExpert, shards: ShardSet, batch_size: int, chunk: int = 256
) -> tuple[dict[str, np.ndarray], list[Sample]]:
    """Every head's predictions on the samples of ``shards``, streamed: ``chunk`` images in
    memory at a time."""
    from .loading import predict_batches
    from .shards import iter_samples

    parts: dict[str, list[np.ndarray]] = {}
    samples: list[Sample] = []

    def run(items: list[tuple[int, bytes]]) -> None:
        for batch in predict_batches(model, items, batch_size=batch_size):
            if batch.failed:
                raise ReleaseError(f"{shards.store.url}: {batch.failed[0][1]}")
            for key, value in batch.predictions.items():
                parts.setdefault(key, []).append(value.numpy())

    items: list[tuple[int, bytes]] = []
    for image, sample in iter_samples(shards):
        items.append((len(samples), image))
        samples.append(sample)
        if len(items) == chunk:
            run(items)
            items = []
    if items:
        run(items)
    return {k: np.concatenate(v) for k, v in parts.items()}, samples


def no_decay_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """Biases and the weights of norm layers (LayerNorm, RMSNorm): what the Hugging Face
    Trainer, and so the official recipe, leaves out of weight decay."""
    found = []
    for module in model.modules():
        is_norm = isinstance(module, torch.nn.LayerNorm) or "norm" in type(module).__name__.lower()
        for name, p in module.named_parameters(recurse=False):
            if is_norm or name == "bias":
                found.append(p)
    return found


def _inputs(batch: EncodedBatch) -> dict[str, torch.Tensor | None]:
    return {
        "input_ids": batch.input_ids,
        "attention_mask": batch.attention_mask,
        "position_ids": batch.position_ids,
        "pixel_values": batch.pixel_values,
        "head_index": batch.head_index,
        "labels": batch.labels,
        "lm_index": batch.lm_index,
    }


def train_metavoter(
    model: HumanAesExpert,
    dataset: ReleaseDataset | ShardSet,
    cfg: TrainConfig,
    rt: Runtime,
    steps: int,
    amp: torch.dtype | None,
    log: MetricsLog,
    trace: Trace | None = None,
) -> None:
    """Stage 2: only the MetaVoter learns, on the frozen heads' scores of `dataset`: held-out
    images (`data.training_data`), never the ones the heads trained on."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    voter = model.heads.metavoter
    for p in voter.parameters():
        p.requires_grad_(True)
    voter_net = DDP(voter) if rt.world > 1 else voter
    optimizer = torch.optim.Adam(voter.parameters(), lr=cfg.metavoter_lr)
    collate = VoterCollator(model.encoder, model.config.prompt_index)
    batches = micro_batches(dataset, collate, cfg, rt, epoch=10_000, done=0)
    for step in tqdm(range(1, steps + 1), desc="metavoter", disable=not rt.main, mininterval=1):
        epoch, _, names, (overall_b, expert_b, target) = next(batches)
        if trace is not None:
            trace.write({"stage": "metavoter", "step": step, "epoch": epoch, "names": names})
        with torch.no_grad(), autocast(rt.device, amp):
            out = model.heads_on(overall_b, expert_b)
        dims = out["expert"].float()
        candidates = torch.stack([out["lm"], out["regression"], dims[:, -1]], -1).float()
        pred = voter_net(candidates, dims)
        loss = F.mse_loss(pred, target.to(rt.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % cfg.log_every == 0 or step == steps:
            log.write({"stage": "metavoter", "step": step, "loss": loss.item()})
    voter.requires_grad_(False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m modeling.train", description=__doc__)
    parser.add_argument(
        "--data",
        help="release directory (official layout), or s3://BUCKET/PREFIX/ of a release in a "
        "bucket (its shards streamed); or 'data' in --config",
    )
    parser.add_argument("--out", help="run directory; or 'out' in --config")
    parser.add_argument("--backbone", help="hub id or path of an InternVL checkpoint, tiny, lite")
    parser.add_argument("--config", help="JSON or TOML file of TrainConfig settings")
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        help="named defaults that --config and the flags override: humanbeauty (the "
        "project's, the default) or official (HumanAesExpert as published)",
    )
    parser.add_argument("--max-steps", type=int, help="optimizer steps of the main stage")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument(
        "--stream", action="store_true", default=None,
        help="read the release's WebDataset shards as streams (always for s3://)",
    )
    parser.add_argument(
        "--trace", action="store_true", default=None,
        help="each process writes its samples and final weights' checksum to RUN_DIR/trace/",
    )
    parser.add_argument("--clip-model", help="lite: open_clip model name, or tiny")
    parser.add_argument("--clip-checkpoint", help="lite: local open_clip checkpoint file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _main(args)
    except (RecipeError, ReleaseError) as exc:
        raise SystemExit(f"python -m modeling.train: {exc}") from exc


def _main(args: argparse.Namespace) -> int:
    cfg = TrainConfig.load(
        args.config,
        recipe=args.recipe,
        data=args.data,
        out=args.out,
        backbone=args.backbone,
        max_steps=args.max_steps,
        clip_model=args.clip_model,
        clip_checkpoint=args.clip_checkpoint,
        stream=args.stream,
        trace=args.trace,
    )
    if not cfg.data or not cfg.out:
        raise SystemExit("give the release with --data and the run directory with --out")
    if cfg.backbone == "lite" and cfg.recipe != DEFAULT_RECIPE:
        raise RecipeError(
            f"the {cfg.recipe} recipe trains an InternVL model; the lite backbone (heads on "
            "CLIP embeddings) has no language model to adapt"
        )
    run_dir = Path(cfg.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.backbone == "lite":
        from .train_lite import train_lite

        final = train_lite(cfg, cfg.data, run_dir, args.resume)
    else:
        final = train_hae(cfg, cfg.data, run_dir, args.resume)
    if os.environ.get("RANK", "0") == "0":
        print(f"model saved to {final}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # python -m modeling.hae.train, as python -m modeling.train
    raise SystemExit(main())
