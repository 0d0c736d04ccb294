"""Train HumanAesExpert-Lite: embed every image once with the frozen CLIP (cached under
``RUN_DIR/cache/``), then fit the regression and Expert heads on the cached embeddings, then the
MetaVoter. Minutes on a CPU; same checkpoints, ``--resume``, metrics log and ``final/``."""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from .config import TrainConfig
from .data import Sample, find_root, open_image, read_split
from .errors import CheckpointNotFoundError
from .lite import HumanAesLite
from .loop import (
    EpochSampler,
    MetricsLog,
    checkpoint_dirs,
    commit_checkpoint,
    cosine_with_warmup,
    rng_state,
    set_rng_state,
)
from .losses import masked_mse


def cache_key(model: HumanAesLite, samples: Sequence[Sample], seed: int) -> str:
    h = hashlib.sha256()
    c = model.config
    h.update(json.dumps([c.clip_model, c.clip_config, c.clip_checkpoint, seed]).encode())
    for s in samples:
        stat = s.image_path.stat()
        h.update(f"{s.image_name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cached_embeddings(
    model: HumanAesLite, samples: Sequence[Sample], cache: Path, split: str, seed: int, batch: int
) -> torch.Tensor:
    path = cache / f"{split}-{cache_key(model, samples, seed)}.safetensors"
    if path.is_file():
        return load_file(str(path))["features"]
    chunks = []
    for start in tqdm(range(0, len(samples), batch), desc=f"embed {split}", mininterval=1):
        images = [open_image(s.image_path) for s in samples[start : start + batch]]
        chunks.append(model.embed(images).cpu())
    features = torch.cat(chunks)
    cache.mkdir(parents=True, exist_ok=True)
    save_file({"features": features.contiguous()}, str(path))
    return features


def train_lite(cfg: TrainConfig, data: str, run_dir: Path, resume: bool) -> Path:
    if not cfg.clip_model:
        raise CheckpointNotFoundError(
            "--backbone lite needs --clip-model NAME with --clip-checkpoint PATH "
            "(or --clip-model tiny for the random smoke-test CLIP)"
        )
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    log = MetricsLog(run_dir / "metrics.jsonl")
    samples = read_split(data, "train")
    latest = checkpoint_dirs(run_dir)[-1] if resume and checkpoint_dirs(run_dir) else None
    if latest is not None:
        model = HumanAesLite.from_pretrained(latest, device=str(device))
        state = torch.load(latest / "trainer_state.pt", weights_only=True)
    else:
        model = HumanAesLite.create(cfg.clip_model, cfg.clip_checkpoint, cfg.head_hidden, cfg.seed)
        model.to(device)
        state = {"step": 0}
    features = cached_embeddings(
        model, samples, run_dir / "cache", "train", cfg.seed, cfg.lite_embed_batch_size
    )
    if latest is None:
        model.heads.fit_normaliser(features)
    features = features.to(device)
    targets = torch.tensor([s.target_vector() for s in samples], device=device)
    mask = torch.tensor([s.target_mask() for s in samples], device=device)

    n, bs = len(samples), min(cfg.lite_batch_size, len(samples))
    per_epoch = math.ceil(n / bs)
    total = cfg.max_steps or cfg.lite_epochs * per_epoch
    voter_steps = cfg.metavoter_steps if cfg.metavoter_steps is not None else max(1, total // 10)
    heads = model.heads
    params = [p for m in (heads.regression, heads.expert) for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.head_lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_with_warmup(total, int(cfg.warmup_ratio * total), cfg.min_lr_ratio)
    )
    if latest is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        log.write({"event": "resume", "from": str(latest), "step": state["step"]})

    step = state["step"]
    heads.train()
    bar = tqdm(total=total, initial=step, desc="lite", mininterval=1)
    started = time.perf_counter()
    while step < total:
        epoch, offset = divmod(step, per_epoch)
        order = EpochSampler(n, cfg.seed, epoch, 0, 1).indices
        idx = torch.tensor(order[offset * bs : (offset + 1) * bs], device=device)
        out = heads(features[idx])
        parts = {
            "regression": F.mse_loss(out["regression"], targets[idx, -1]),
            "expert": masked_mse(out["expert"], targets[idx], mask[idx]),
        }
        loss = cfg.loss_regression * parts["regression"] + cfg.loss_expert * parts["expert"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        step += 1
        bar.update(1)
        if step % cfg.log_every == 0 or step == total:
            log.write(
                {
                    "stage": "heads",
                    "step": step,
                    "epoch": epoch,
                    "loss": loss.item(),
                    **{f"loss_{k}": v.item() for k, v in parts.items()},
                    "lr": scheduler.get_last_lr()[0],
                    "steps_per_s": step / max(time.perf_counter() - started, 1e-9),
                }
            )
        if step % cfg.save_every == 0 or step == total:
            final_dir = run_dir / "checkpoints" / f"step-{step:07d}"
            tmp = final_dir.with_name(final_dir.name + ".tmp")
            model.save_pretrained(tmp)
            torch.save(
                {
                    "step": step,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": rng_state(),
                },
                tmp / "trainer_state.pt",
            )
            commit_checkpoint(tmp, final_dir, cfg.keep_checkpoints)
    bar.close()

    # Stage 2: MetaVoter on the frozen heads' outputs.
    heads.eval()
    with torch.no_grad():
        out = heads(features)
    candidates = torch.stack([out["regression"], out["expert"][:, -1]], -1)
    voter = heads.metavoter
    opt = torch.optim.Adam(voter.parameters(), lr=cfg.metavoter_lr)
    for vstep in range(1, voter_steps + 1):
        loss = F.mse_loss(voter(candidates, out["expert"]), targets[:, -1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if vstep % cfg.log_every == 0 or vstep == voter_steps:
            log.write({"stage": "metavoter", "step": vstep, "loss": loss.item()})

    final = run_dir / "final"
    model.save_pretrained(final)
    (run_dir / "train_config.json").write_text(json.dumps(cfg.as_dict(), indent=2) + "\n")
    log.write({"event": "saved", "path": str(final)})
    if cfg.eval_at_end and (find_root(data) / "test_label.jsonl").is_file():
        from .evaluate import build_report, write_report

        test = read_split(data, "test")
        test_features = cached_embeddings(
            model, test, run_dir / "cache", "test", cfg.seed, cfg.lite_embed_batch_size
        )
        with torch.no_grad():
            pred = {k: v.cpu().numpy() for k, v in heads(test_features.to(device)).items()}
        report = build_report(pred, test)
        report.update(model=str(final), data=str(data), split="test")
        write_report(report, run_dir / "eval_test.json")
        srcc = {
            h: v.get("comprehensive_aesthetic", {}).get("srcc") for h, v in report["heads"].items()
        }
        log.write({"stage": "eval", "split": "test", "srcc_overall": srcc})
    return final
