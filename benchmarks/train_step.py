"""HumanAesExpert training throughput: samples/s, MFU and the ratio to the FLOP limit, model only
and fed from JPEG files (serial loading against loader workers), in one run.

    python benchmarks/train_step.py --quick              # tiny random InternVL on the CPU
    python benchmarks/train_step.py --size 1b            # InternVL2-1B-shaped random model (GPU)

One step = forward + backward + AdamW over the LoRA adapters and the heads, with the LM loss and
the masked score losses, as `python -m modeling.train` runs it (bf16 autocast and bf16 backbone
weights on a GPU, fp32 on the CPU). Rows:
- "step, batch encoded beforehand": the model alone (one batch, tiled and tokenised once);
- "loop from files, serial loading": a DataLoader over JPEG files with the trainer's collator
  (`modeling.hae.train.TrainCollator`: tile and tokenise) and num_workers 0 - the previous
  pipeline, the peer;
- "loop from files, N workers": the same with N worker processes, pinned memory and
  non-blocking copies (what `num_workers` in the training config gives).
The 1b shape is InternViT-300M + Qwen2-0.5B (InternVL2-1B) with random weights: speed, not
quality.

MFU = model FLOPs per step / step time / peak. Model FLOPs (modeling/hae/flops.py, from the
config): matmul FLOPs of the vision tower per tile, the projector per tile and the LLM per token
(with causal attention and the LM head on the answer tokens), counted x3 (forward + backward) for
every part at or above the lowest part with trainable parameters and x1 (forward only) for frozen
parts below it:  step = sum over samples of  k_v * V(tiles) + k_p * P(tiles) + k_l * L(seq, answer).
Peak: bf16 dense from a table for known GPUs (H100/H200 989, A100 312 TFLOP/s), on the CPU a fp32
matmul measured in this run. FLOP limit = peak / model FLOPs per sample (samples/s). The last
line, `RESULT ...`, repeats the main figures for scripts.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch
from torch.utils.data import DataLoader

from modeling.hae.backbone import EncodedBatch
from modeling.hae.data import ReleaseDataset, Sample
from modeling.hae.flops import Shapes, device_peak, trained_parts, training_flops
from modeling.hae.loading import PinningCollate, default_workers, to_device
from modeling.hae.losses import hae_loss
from modeling.hae.model import HumanAesExpert, LoraSettings
from modeling.hae.synthetic import Factors, render
from modeling.hae.tiny import random_backbone
from modeling.hae.train import TrainCollator


def synthetic_samples(folder: Path, n: int, size: tuple[int, int], seed: int = 0):
    """``n`` JPEG files (a few distinct images repeated) and their Samples (half 12-dimension)."""
    rng = random.Random(seed)
    distinct = []
    for _ in range(min(n, 16)):
        f = Factors(*(rng.random() for _ in range(4)))
        distinct.append((f, render(f, size, rng)))
    samples = []
    for i in range(n):
        f, image = distinct[i % len(distinct)]
        path = folder / f"{i:05d}.jpg"
        image.save(path, quality=90)
        expert = i % 2 == 0
        scores = tuple(f.dimensions()) if expert else (None,) * 11 + (f.overall(),)
        samples.append(Sample(path, path.name, "bench", scores, expert, "fair"))
    return samples


def peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (GPU)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (RSS)"


def batch_flops(model: HumanAesExpert, batch: EncodedBatch, n_tiles: list[int]) -> float:
    shapes = Shapes.of(model.core.config)
    trained = trained_parts(model.core)
    lengths = batch.attention_mask.sum(1).tolist()
    answers = (batch.labels != -100).sum(1).tolist()
    return sum(
        training_flops(shapes, t, int(s), int(a), trained)
        for t, s, a in zip(n_tiles, lengths, answers, strict=True)
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", choices=("tiny", "1b"), default="tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--max-tiles", type=int, default=12)
    ap.add_argument("--image-size", default="640x480", help="WxH of the synthetic images")
    ap.add_argument("--workers", type=int, default=default_workers(), help="loader processes")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--lora-alpha", type=int, default=32)
    ap.add_argument("--lora-dropout", type=float, default=0.05,
                    help="0 lets peft skip the dropout copy of every adapted input")
    ap.add_argument("--no-lora-vision", action="store_true",
                    help="freeze the vision tower (the official recipe does): forward only")
    ap.add_argument("--fused-adamw", action="store_true", help="AdamW(fused=True) (CUDA)")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    bs = args.batch_size or (2 if args.size == "1b" else 8)
    steps = args.steps or (3 if args.quick else 10)
    w, h = (int(v) for v in args.image_size.split("x"))
    dtype = torch.bfloat16 if gpu else torch.float32

    t0 = time.perf_counter()
    backbone = random_backbone(args.size, device, dtype, max_tiles=args.max_tiles)
    lora = LoraSettings(r=args.lora_r, alpha=args.lora_alpha, dropout=args.lora_dropout,
                        vision=not args.no_lora_vision)
    model = HumanAesExpert.wrap(backbone, lora).to(device)
    if args.gradient_checkpointing:
        model.core.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )
        model.core.enable_input_require_grads()
    build_s = time.perf_counter() - t0
    params = model.lora_parameters() + [
        p for m in (model.heads.regression, model.heads.expert) for p in m.parameters()
    ]
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=1e-4, fused=True if args.fused_adamw else None)

    folder = Path(tempfile.mkdtemp(prefix="hae-train-bench-"))
    n_files = bs * (args.warmup + steps)
    samples = synthetic_samples(folder, n_files, (w, h))
    dataset = ReleaseDataset(samples)
    collate = TrainCollator(model.encoder)
    t0 = time.perf_counter()
    first = collate([dataset[i] for i in range(bs)])
    encode_s = time.perf_counter() - t0
    n_tiles = model.encoder.pixels([dataset[i][0] for i in range(bs)])[1]
    batch = first.to(device)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if gpu
        else torch.autocast("cpu", enabled=False)
    )

    def step(b: EncodedBatch) -> None:
        with amp:
            out = model.run(b, train=True)
            loss, _ = hae_loss(out, b.targets, b.mask)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def sync() -> None:
        if gpu:
            torch.cuda.synchronize(device)

    model.train()
    for _ in range(args.warmup):
        step(batch)
    sync()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step(batch)
    sync()
    model_s = (time.perf_counter() - t0) / steps

    def loop(workers: int) -> float:
        """Seconds per step over the files, loader start-up and warm-up steps excluded."""
        loader = DataLoader(
            dataset, batch_size=bs, shuffle=False, collate_fn=PinningCollate(collate),
            num_workers=workers, pin_memory=gpu, prefetch_factor=4 if workers else None,
            timeout=300 if workers else 0,
        )
        it = iter(loader)
        for _ in range(args.warmup):
            step(to_device(next(it).batch, device))
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step(to_device(next(it).batch, device))
        sync()
        return (time.perf_counter() - start) / steps

    failures = []

    def guarded(workers: int) -> float:
        try:
            return loop(workers)
        except Exception as exc:  # one row's failure (e.g. no shared memory) keeps the others
            failures.append(f"loop with {workers} workers failed: {type(exc).__name__}: {exc}")
            return float("nan")

    serial_s = guarded(0)
    workers_s = guarded(args.workers)

    flops = batch_flops(model, first, n_tiles)
    peak, peak_from = device_peak(device, dtype)
    limit = peak * bs / flops  # samples/s
    total = sum(p.numel() for p in model.core.parameters())
    parts = ", ".join(sorted(trained_parts(model.core)))
    info = [
        ("device", peak_from),
        ("backbone", f"random {args.size} InternVL, {total / 1e6:.1f} M params, attention "
                     f"{model.core.config._attn_implementation}"),
        ("trainable (LoRA + heads)", f"{sum(p.numel() for p in params) / 1e6:.2f} M params "
                                     f"(parts with trainable weights: {parts})"),
        ("batch", f"{bs} images {w}x{h}, {batch.pixel_values.shape[0]} tiles of "
                  f"{model.encoder.tiles.tile_size} px, seq {batch.input_ids.shape[1]} tokens"),
        ("precision", "bf16 autocast, bf16 base weights" if gpu else "fp32"),
        ("LoRA", f"r {args.lora_r}, alpha {args.lora_alpha}, dropout {args.lora_dropout}, "
                 f"{'LLM' if args.no_lora_vision else 'LLM + vision tower'}; AdamW "
                 f"{'fused' if args.fused_adamw else 'default'}; gradient checkpointing "
                 f"{'on' if args.gradient_checkpointing else 'off'}"),
        ("build model (s)", f"{build_s:.2f}"),
        ("encode one batch on CPU (s)", f"{encode_s:.3f}  ({bs / encode_s:.1f} samples/s)"),
        ("model FLOPs per sample", f"{flops / bs / 1e12:.4f} TFLOP (x3 fwd+bwd from the "
                                   "lowest trained part up)"),
        ("FLOP limit", f"{limit:.2f} samples/s"),
        ("peak memory", peak_memory(device)),
    ]
    width = max(len(k) for k, _ in info)
    print(f"| {'train_step':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for k, v in info:
        print(f"| {k:<{width}} | {v} |")
    print()
    print("| path | samples/s | s/step | MFU | vs serial |")
    print("|------|-----------|--------|-----|-----------|")
    rows = [
        ("step, batch encoded beforehand", model_s),
        ("loop from files, serial loading", serial_s),
        (f"loop from files, {args.workers} workers", workers_s),
    ]
    for name, seconds in rows:
        versus = f"{serial_s / seconds:.2f}x" if name.startswith("loop") else ""
        mfu = flops / seconds / peak
        print(f"| {name} | {bs / seconds:.2f} | {seconds:.4f} | {100 * mfu:.1f} % | {versus} |")
    for line in failures:
        print(line)
    print(
        f"RESULT train size={args.size} model_samples_s={bs / model_s:.2f} "
        f"loader_samples_s={bs / workers_s:.2f} serial_samples_s={bs / serial_s:.2f} "
        f"mfu_pct={100 * flops / model_s / peak:.1f} "
        f"loader_mfu_pct={100 * flops / workers_s / peak:.1f} limit_samples_s={limit:.2f}"
    )
    for s in samples:
        s.image_path.unlink(missing_ok=True)
    folder.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
