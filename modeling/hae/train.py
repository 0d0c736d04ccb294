"""Train HumanAesExpert (or its Lite variant) from a release directory.

``python -m modeling.train --data RELEASE_DIR --out RUN_DIR [--backbone HUB_ID_OR_PATH|tiny|lite]
[--config FILE] [--max-steps N] [--resume]``; the trained model lands in ``RUN_DIR/final/``.

Stage 1 trains LoRA adapters (LLM and vision tower) and the regression and Expert heads with the
LM loss plus the (masked) score losses; stage 2 trains the MetaVoter with everything else frozen.
Checkpoints go to ``RUN_DIR/checkpoints/step-N/`` and ``--resume`` continues from the newest;
metrics are appended to ``RUN_DIR/metrics.jsonl``. Multi-GPU: ``torchrun --nproc_per_node K -m
modeling.train ...`` (DDP).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from .backbone import EncodedBatch, PromptEncoder
from .config import TrainConfig
from .data import ReleaseDataset, Sample, read_split
from .loop import (
    EpochSampler,
    MetricsLog,
    Runtime,
    autocast,
    checkpoint_dirs,
    commit_checkpoint,
    cosine_with_warmup,
    resolve_precision,
    rng_state,
    set_rng_state,
    setup_runtime,
    teardown,
)
from .losses import LossWeights, hae_loss
from .model import HumanAesExpert, LoraSettings
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


def micro_batches(
    dataset: ReleaseDataset,
    collate,
    cfg: TrainConfig,
    rt: Runtime,
    epoch: int,
    done: int,
) -> Iterator[tuple[int, int, object]]:
    """Yields (epoch, micro-batches done in that epoch, batch) forever, resuming at ``done``."""
    while True:
        sampler = EpochSampler(
            len(dataset), cfg.seed, epoch, rt.rank, rt.world, skip=done * cfg.batch_size
        )
        loader = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            sampler=sampler,
            collate_fn=collate,
            num_workers=cfg.num_workers,
            persistent_workers=False,
        )
        for batch in loader:
            done += 1
            yield epoch, done, batch
        epoch, done = epoch + 1, 0


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
    per_step = cfg.batch_size * cfg.grad_accum * world
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * n_samples / per_step))
    voter = cfg.metavoter_steps if cfg.metavoter_steps is not None else max(1, total // 10)
    return total, voter


def save_checkpoint(
    model: HumanAesExpert, run_dir: Path, state: dict, keep: int, rt: Runtime
) -> None:
    if rt.main:
        final = run_dir / "checkpoints" / f"step-{state['step']:07d}"
        tmp = final.with_name(final.name + ".tmp")
        model.save_pretrained(tmp, include_base=False)
        torch.save(state, tmp / "trainer_state.pt")
        commit_checkpoint(tmp, final, keep)
    rt.barrier()


def train_hae(cfg: TrainConfig, data: str, run_dir: Path, resume: bool) -> Path:
    rt = setup_runtime()
    try:
        return _train_hae(cfg, data, run_dir, resume, rt)
    finally:
        teardown(rt)


def _train_hae(cfg: TrainConfig, data: str, run_dir: Path, resume: bool, rt: Runtime) -> Path:
    torch.manual_seed(cfg.seed + rt.rank)
    random.seed(cfg.seed + rt.rank)
    samples = read_split(data, "train")
    dataset = ReleaseDataset(samples)
    total, voter_steps = plan_steps(cfg, len(samples), rt.world)
    log = MetricsLog(run_dir / "metrics.jsonl", rt.main)
    dtype = backbone_dtype(cfg, rt.device)
    amp = resolve_precision(cfg.precision, rt.device)

    latest = checkpoint_dirs(run_dir)[-1] if resume and checkpoint_dirs(run_dir) else None
    if latest is not None:
        model = HumanAesExpert.from_pretrained(latest, dtype=dtype, trainable=True)
        state = torch.load(latest / "trainer_state.pt", weights_only=True)
    else:
        lora = LoraSettings(
            cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_language, cfg.lora_vision
        )
        model = HumanAesExpert.from_backbone(
            base_checkpoint(cfg, run_dir, rt), lora, cfg.head_hidden, dtype, cfg.max_tiles
        )
        state = {"step": 0, "epoch": 0, "done": 0}
    model.to(rt.device)
    if cfg.gradient_checkpointing:
        model.core.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )
        model.core.enable_input_require_grads()

    # Stage 1: LoRA + regression/Expert heads. LM head and the rest of the backbone stay frozen.
    for p in model.heads.metavoter.parameters():
        p.requires_grad_(False)
    head_params = [p for m in (model.heads.regression, model.heads.expert) for p in m.parameters()]
    for p in head_params:
        p.requires_grad_(True)
    groups = [{"params": head_params, "lr": cfg.head_lr}]
    lora_params = model.lora_parameters()
    if lora_params:
        groups.insert(0, {"params": lora_params, "lr": cfg.lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    warmup = int(cfg.warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_with_warmup(total, warmup, cfg.min_lr_ratio)
    )
    scaler = torch.amp.GradScaler(enabled=amp is torch.float16)
    if latest is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        log.write({"event": "resume", "from": str(latest), "step": state["step"]})

    net = (
        DDP(model, device_ids=[rt.local_rank] if rt.device.type == "cuda" else None)
        if (rt.world > 1)
        else model
    )
    weights = LossWeights(cfg.loss_lm, cfg.loss_regression, cfg.loss_expert)
    step = state["step"]
    batches = micro_batches(
        dataset, TrainCollator(model.encoder), cfg, rt, state["epoch"], state["done"]
    )
    bar = tqdm(total=total, initial=step, desc="train", disable=not rt.main, mininterval=1)
    model.train()
    window_start, window_samples = time.perf_counter(), 0
    epoch, done = state["epoch"], state["done"]
    while step < total:
        parts_sum: dict[str, float] = {}
        for micro in range(cfg.grad_accum):
            epoch, done, batch = next(batches)
            batch = batch.to(rt.device)
            sync = micro == cfg.grad_accum - 1 or rt.world == 1
            ctx = net.no_sync() if not sync and isinstance(net, DDP) else nullcontext()
            with ctx, autocast(rt.device, amp):
                out = net(**_inputs(batch))
                loss, parts = hae_loss(out, batch.targets, batch.mask, weights)
            scaler.scale(loss / cfg.grad_accum).backward()
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v / cfg.grad_accum
            window_samples += len(batch) * rt.world
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            [p for g in groups for p in g["params"]], cfg.max_grad_norm
        )
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == total:
            elapsed = time.perf_counter() - window_start
            record = {
                "stage": "heads",
                "step": step,
                "epoch": epoch,
                "loss": sum(getattr(weights, k) * v for k, v in parts_sum.items()),
                **{f"loss_{k}": v for k, v in parts_sum.items()},
                "grad_norm": float(grad_norm),
                "lr": scheduler.get_last_lr()[0],
                "samples_per_s": window_samples / max(elapsed, 1e-9),
            }
            log.write(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}")
            window_start, window_samples = time.perf_counter(), 0
        if step % cfg.save_every == 0 or step == total:
            state = {
                "step": step,
                "epoch": epoch,
                "done": done,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(),
                "config": json.dumps(cfg.as_dict()),
            }
            save_checkpoint(model, run_dir, state, cfg.keep_checkpoints, rt)
    bar.close()

    train_metavoter(model, dataset, cfg, rt, voter_steps, amp, log)
    final = run_dir / "final"
    if rt.main:
        model.save_pretrained(final)
        (run_dir / "train_config.json").write_text(json.dumps(cfg.as_dict(), indent=2) + "\n")
        log.write({"event": "saved", "path": str(final)})
    rt.barrier()
    if cfg.eval_at_end and rt.main:
        evaluate_run(model, data, run_dir, cfg, log)
    return final


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
    dataset: ReleaseDataset,
    cfg: TrainConfig,
    rt: Runtime,
    steps: int,
    amp: torch.dtype | None,
    log: MetricsLog,
) -> None:
    """Stage 2: only the MetaVoter learns, on the frozen heads' scores of training images."""
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
        _, _, (overall_b, expert_b, target) = next(batches)
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


def evaluate_run(model, data: str, run_dir: Path, cfg: TrainConfig, log: MetricsLog) -> None:
    from .data import find_root
    from .evaluate import evaluate_samples, write_report

    if not (find_root(data) / "test_label.jsonl").is_file():
        return
    test: list[Sample] = read_split(data, "test")
    report = evaluate_samples(model, test, batch_size=cfg.eval_batch_size)
    report.update(model=str(run_dir / "final"), data=str(data), split="test")
    write_report(report, run_dir / "eval_test.json")
    summary = {
        head: values.get("comprehensive_aesthetic", {}).get("srcc")
        for head, values in report["heads"].items()
    }
    log.write({"stage": "eval", "split": "test", "srcc_overall": summary})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m modeling.train", description=__doc__)
    parser.add_argument("--data", help="release directory (official layout); or 'data' in --config")
    parser.add_argument("--out", help="run directory; or 'out' in --config")
    parser.add_argument("--backbone", help="hub id or path of an InternVL checkpoint, tiny, lite")
    parser.add_argument("--config", help="JSON or TOML file of TrainConfig settings")
    parser.add_argument("--max-steps", type=int, help="optimizer steps of the main stage")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    parser.add_argument("--clip-model", help="lite: open_clip model name, or tiny")
    parser.add_argument("--clip-checkpoint", help="lite: local open_clip checkpoint file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = TrainConfig.load(
        args.config,
        data=args.data,
        out=args.out,
        backbone=args.backbone,
        max_steps=args.max_steps,
        clip_model=args.clip_model,
        clip_checkpoint=args.clip_checkpoint,
    )
    if not cfg.data or not cfg.out:
        raise SystemExit("give the release with --data and the run directory with --out")
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
