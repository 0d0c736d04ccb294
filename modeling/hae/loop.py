"""Training-loop plumbing shared by the InternVL and Lite trainers: distributed setup, precision,
sampling that can resume mid-epoch, the LR schedule, the metrics log and checkpoint folders."""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


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


def cosine_with_warmup(total: int, warmup: int, min_ratio: float = 0.0):
    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
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
