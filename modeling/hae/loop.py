"""The one training loop of the full (InternVL) and the Lite model, and its plumbing: distributed
setup, precision, sampling that can resume mid-epoch, the LR schedule, the metrics log and
checkpoint folders.

`train` runs both models through the same steps: seed, build or resume the model, plan the
steps, make the optimizer, train the heads (checkpoints, metrics), train the MetaVoter, save
``final/``, evaluate on the test split. What differs between the models (how a step's batches
are made, what is saved, the MetaVoter's inputs, the test predictions) is the `HeadsTraining`
each trainer hands in (`train.HaeTraining`, `train_lite.LiteTraining`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler
from tqdm import tqdm

if TYPE_CHECKING:
    from .config import TrainConfig
    from .data import Sample, TrainingData
    from .shards import ShardSet, StreamedTrainingData


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def setup_runtime() -> Runtime:
    """Single process, or one process per GPU under torchrun (WORLD_SIZE/RANK/LOCAL_RANK set);
    CPU-only multi-process runs use gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
            dist.init_process_group("nccl")
            return Runtime(torch.device("cuda", local), rank, world, local)
        dist.init_process_group("gloo")
        return Runtime(torch.device("cpu"), rank, world, local)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return Runtime(device)


def teardown(runtime: Runtime) -> None:
    if runtime.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full fp32. "auto": bf16 on a GPU that has it."""
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None
    table = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision not in table:
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, not {precision!r}")
    return table[precision]


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


class EpochSampler(Sampler[int]):
    """A seeded permutation per epoch, sharded across ranks, that can start ``skip`` items in
    (so a resumed run sees exactly the batches it had not seen)."""

    def __init__(self, n: int, seed: int, epoch: int, rank: int, world: int, skip: int = 0):
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=gen).tolist()
        per_rank = math.ceil(n / world)
        order += order[: per_rank * world - n]  # pad so that every rank gets the same count
        self.indices = order[rank::world][skip:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def cosine_with_warmup(total: int, warmup: int, min_ratio: float = 0.0, *, from_zero: bool = False):
    """LR factor per optimizer step: a linear warmup over ``warmup`` steps (from 1/warmup, or
    with ``from_zero`` from 0 as the Hugging Face schedule starts), then a cosine to
    ``min_ratio``."""

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step if from_zero else step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


class MetricsLog:
    """Append-only JSONL; only the main process writes."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path, self.enabled = path, enabled
        if enabled:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as fh:
                # Strict JSON: an undefined metric (NaN) is written as null, not as `NaN`.
                from .evaluate import json_safe

                line = json_safe({"time": round(time.time(), 3), **record})
                fh.write(json.dumps(line, allow_nan=False) + "\n")


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    done = [p for p in folder.glob("step-*") if (p / "trainer_state.pt").is_file()]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def commit_checkpoint(tmp: Path, final: Path, keep: int) -> None:
    """Rename a fully written folder into place (a crash never leaves a half checkpoint that
    --resume would pick), then drop the oldest beyond ``keep``."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in checkpoint_dirs(final.parent.parent)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(run_dir: Path) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def streams(cfg: TrainConfig, data: str) -> bool:
    """Whether training reads the release's shards as streams (always from a bucket)."""
    from .shards import is_bucket_url

    return cfg.stream or is_bucket_url(data)


def weights_sha256(module: nn.Module) -> str:
    """sha256 of every tensor of ``module``'s state, by name: equal only for equal weights."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


class Trace:
    """``RUN_DIR/trace/rank-N.jsonl`` of one process (with ``cfg.trace``): the samples of each
    micro-batch, then a checksum of the final weights, so a distributed run can be checked
    (disjoint, covering shares of the data; the same weights on every rank)."""

    def __init__(self, run_dir: Path, rank: int, enabled: bool):
        self.path, self.enabled = run_dir / "trace" / f"rank-{rank}.jsonl", enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")


# --- the loop ---------------------------------------------------------------------------------


class HeadsTraining(Protocol):
    """What one model brings to `train`. Stage 1 trains `param_groups` (the regression and
    Expert heads, and the full model's LoRA adapters); stage 2 the MetaVoter alone."""

    name: str  # the progress bar's label
    model: Any  # has save_pretrained(directory)
    train_module: nn.Module  # put in training mode for stage 1
    amp: torch.dtype | None  # autocast dtype (fp16 turns on loss scaling)
    loss_weights: Mapping[str, float]  # loss part -> its weight in the logged loss
    epoch: int  # where the last batch came from: epoch, and batches done in it
    done: int
    data: TrainingData | StreamedTrainingData  # the heads' images, the MetaVoter's held-out

    def plan(self, cfg: TrainConfig) -> tuple[int, int]:
        """(optimizer steps of stage 1, MetaVoter steps)."""
        ...

    def param_groups(self) -> list[dict]:
        """Stage 1's optimizer groups, each with its "params" and "lr"."""
        ...

    def accumulate(self, step: int, scaler: torch.amp.GradScaler) -> tuple[dict[str, float], int]:
        """Backward one optimizer step's worth of batches (scaled by `scaler`); the loss parts
        (mean over the step's micro-batches) and the samples seen, over all processes."""
        ...

    def save_weights(self, directory: Path) -> None:
        """A checkpoint's weights (what `start` reloads on --resume)."""
        ...

    def train_metavoter(self, steps: int, log: MetricsLog) -> None: ...

    def test_report(self, test: list[Sample] | ShardSet) -> dict:
        """`evaluate.build_report` of the trained model's predictions on the test split (its
        shards when training streamed)."""
        ...


# (checkpoint to resume from or None, its trainer state) -> the model's HeadsTraining
Start = Callable[[Path | None, dict], HeadsTraining]


@dataclass
class Optimisation:
    """Stage 1's optimizer, LR schedule (cosine with warmup) and loss scaler."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    params: list[torch.nn.Parameter] = field(default_factory=list)

    @classmethod
    def create(
        cls, groups: list[dict], cfg: TrainConfig, total: int, amp: torch.dtype | None
    ) -> Optimisation:
        optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
        hf = cfg.hf_schedule
        # The Hugging Face Trainer (the official recipe's) warms up ceil(ratio x steps) from 0.
        warmup = math.ceil(cfg.warmup_ratio * total) if hf else int(cfg.warmup_ratio * total)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, cosine_with_warmup(total, warmup, cfg.min_lr_ratio, from_zero=hf)
        )
        scaler = torch.amp.GradScaler(enabled=amp is torch.float16)
        return cls(optimizer, scheduler, scaler, [p for g in groups for p in g["params"]])

    def restore(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def step(self, max_grad_norm: float) -> float:
        """Clip the accumulated gradients, step optimizer and schedule; the gradient norm."""
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(grad_norm)

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]


def train(
    start: Start, cfg: TrainConfig, data: str, run_dir: Path, resume: bool, rt: Runtime
) -> Path:
    """Train a model from the release at ``data`` into ``run_dir``; returns ``run_dir/final``."""
    torch.manual_seed(cfg.seed + rt.rank)
    random.seed(cfg.seed + rt.rank)
    log = MetricsLog(run_dir / "metrics.jsonl", rt.main)
    latest = latest_checkpoint(run_dir) if resume else None
    state = (torch.load(latest / "trainer_state.pt", weights_only=True) if latest is not None
             else {"step": 0, "epoch": 0, "done": 0})
    same_start(latest, state["step"], rt)
    task = start(latest, state)
    total, voter_steps = task.plan(cfg)
    opt = Optimisation.create(task.param_groups(), cfg, total, task.amp)
    if latest is not None:
        resume_from(latest, state, opt, log)
    train_heads(task, opt, cfg, state["step"], total, run_dir, log, rt)
    log.write({"event": "metavoter_data", "fitted_on": task.data.voter_from,
               "images": len(task.data.voter)})
    task.train_metavoter(voter_steps, log)
    final = save_final(task, cfg, run_dir, log, rt)
    if cfg.trace:  # hashing every weight costs a copy to the CPU: only when asked
        Trace(run_dir, rt.rank, True).write(
            {"event": "final", "rank": rt.rank, "world": rt.world,
             "weights_sha256": weights_sha256(task.model)})
    evaluate_on_test(task, cfg, data, final, run_dir, log, rt)
    return final


def same_start(latest: Path | None, step: int, rt: Runtime) -> None:
    """Every process must start from the same checkpoint: with RUN_DIR on a disk that some
    nodes do not see, they would train different numbers of steps and wait on each other for
    ever."""
    if rt.world == 1:
        return
    found: list = [None] * rt.world
    dist.all_gather_object(found, (step, None if latest is None else latest.name))
    if len(set(found)) > 1:
        raise ValueError(
            f"the processes found different checkpoints to resume from (step, folder by rank: "
            f"{found}): --resume across nodes needs RUN_DIR on storage that every node sees"
        )


def resume_from(latest: Path, state: dict, opt: Optimisation, log: MetricsLog) -> None:
    """Continue where the checkpoint stopped: optimizer, schedule and random state."""
    opt.restore(state)
    set_rng_state(state["rng"])
    log.write({"event": "resume", "from": str(latest), "step": state["step"]})


def train_heads(
    task: HeadsTraining,
    opt: Optimisation,
    cfg: TrainConfig,
    step: int,
    total: int,
    run_dir: Path,
    log: MetricsLog,
    rt: Runtime,
) -> None:
    """Stage 1, from ``step`` to ``total``: each step accumulates, clips and steps; every
    ``log_every`` steps a metrics record, every ``save_every`` a checkpoint (and at the end)."""
    bar = tqdm(total=total, initial=step, desc=task.name, disable=not rt.main, mininterval=1)
    task.train_module.train()
    window = Throughput()
    while step < total:
        parts, samples = task.accumulate(step, opt.scaler)
        grad_norm = opt.step(cfg.max_grad_norm)
        step += 1
        bar.update(1)
        window.add(samples)
        if step % cfg.log_every == 0 or step == total:
            record = heads_record(task, step, parts, grad_norm, opt.lr, window.take())
            record["samples"] = samples  # of this step, over all processes
            log.write(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}")
        if step % cfg.save_every == 0 or step == total:
            save_checkpoint(task, run_dir, checkpoint_state(task, step, opt, cfg), cfg, rt)
    bar.close()


class Throughput:
    """Samples per second since the last `take`."""

    def __init__(self) -> None:
        self.started, self.samples = time.perf_counter(), 0

    def add(self, samples: int) -> None:
        self.samples += samples

    def take(self) -> float:
        rate = self.samples / max(time.perf_counter() - self.started, 1e-9)
        self.started, self.samples = time.perf_counter(), 0
        return rate


def heads_record(
    task: HeadsTraining, step: int, parts: dict[str, float], grad_norm: float, lr: float,
    samples_per_s: float,
) -> dict:
    return {
        "stage": "heads",
        "step": step,
        "epoch": task.epoch,
        "loss": sum(task.loss_weights[k] * v for k, v in parts.items()),
        **{f"loss_{k}": v for k, v in parts.items()},
        "grad_norm": grad_norm,
        "lr": lr,
        "samples_per_s": samples_per_s,
    }


def checkpoint_state(task: HeadsTraining, step: int, opt: Optimisation, cfg: TrainConfig) -> dict:
    """What --resume needs besides the weights: the position in the data, optimizer, schedule
    and random state."""
    return {
        "step": step,
        "epoch": task.epoch,
        "done": task.done,
        "optimizer": opt.optimizer.state_dict(),
        "scheduler": opt.scheduler.state_dict(),
        "rng": rng_state(),
        "config": json.dumps(cfg.as_dict()),
    }


def save_checkpoint(
    task: HeadsTraining, run_dir: Path, state: dict, cfg: TrainConfig, rt: Runtime
) -> None:
    if rt.main:
        final = run_dir / "checkpoints" / f"step-{state['step']:07d}"
        tmp = final.with_name(final.name + ".tmp")
        task.save_weights(tmp)
        torch.save(state, tmp / "trainer_state.pt")
        commit_checkpoint(tmp, final, cfg.keep_checkpoints)
    rt.barrier()


def save_final(
    task: HeadsTraining, cfg: TrainConfig, run_dir: Path, log: MetricsLog, rt: Runtime
) -> Path:
    final = run_dir / "final"
    if rt.main:
        task.model.save_pretrained(final)
        (final / "metavoter_data.json").write_text(json.dumps(task.data.record(), indent=1) + "\n")
        (run_dir / "train_config.json").write_text(json.dumps(cfg.as_dict(), indent=2) + "\n")
        log.write({"event": "saved", "path": str(final)})
    rt.barrier()
    return final


def evaluate_on_test(
    task: HeadsTraining,
    cfg: TrainConfig,
    data: str,
    final: Path,
    run_dir: Path,
    log: MetricsLog,
    rt: Runtime,
) -> None:
    """``eval_test.json`` and a metrics record, when the release has a test split (streamed
    from its shards when training streamed)."""
    from .data import find_root, read_split
    from .evaluate import write_report

    if not (cfg.eval_at_end and rt.main):
        return
    if streams(cfg, data):
        from .shards import open_store, read_manifest, split_shards

        store = open_store(data)
        manifest = read_manifest(store)
        if not manifest["counts"]["splits"].get("test"):
            return
        report = task.test_report(split_shards(store, "test", manifest))
    else:
        if not (find_root(data) / "test_label.jsonl").is_file():
            return
        report = task.test_report(read_split(data, "test"))
    report.update(model=str(final), data=str(data), split="test")
    write_report(report, run_dir / "eval_test.json")
    summary = {
        head: values.get("comprehensive_aesthetic", {}).get("srcc")
        for head, values in report["heads"].items()
    }
    log.write({"stage": "eval", "split": "test", "srcc_overall": summary})
