"""HumanAesExpert training-step throughput: samples/s, peak memory and (on a GPU) MFU.

    python benchmarks/train_step.py --quick              # tiny random InternVL on the CPU
    python benchmarks/train_step.py --size 1b            # InternVL2-1B-shaped random model (GPU)

One step = forward + backward + AdamW over LoRA adapters (LLM and vision tower) and the heads,
with the LM loss and the masked score losses, exactly as `python -m modeling.train` runs it
(bf16 autocast and bf16 backbone weights on a GPU, fp32 on the CPU). Inputs are pre-encoded
batches of synthetic images (tiling and tokenising are timed separately as "encode"). The 1b
shape is InternViT-300M + Qwen2-0.5B (InternVL2-1B) with random weights: speed, not quality.

MFU counts the FLOPs the step really needs with a frozen base: forward 2*N*T per tower
(N = parameters without embeddings, T = tokens; vision T = tiles * patches) plus attention
4*L*S^2*d, and a backward of the same size for activation gradients (frozen weights get none),
so step FLOPs = 2 * forward. Peak bf16 dense: 989 TFLOP/s for H100/H200 (SXM).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch

from modeling.hae.data import Sample
from modeling.hae.losses import hae_loss
from modeling.hae.model import HumanAesExpert, LoraSettings
from modeling.hae.synthetic import Factors, render
from modeling.hae.tiny import random_backbone

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def synthetic_batch(n: int, size: tuple[int, int], seed: int = 0):
    rng = random.Random(seed)
    images, samples = [], []
    for i in range(n):
        f = Factors(*(rng.random() for _ in range(4)))
        images.append(render(f, size, rng))
        expert = i % 2 == 0
        scores = tuple(f.dimensions()) if expert else (None,) * 11 + (f.overall(),)
        samples.append(Sample(Path(f"{i}.png"), f"{i}.png", "bench", scores, expert, "fair"))
    return images, samples


def peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (GPU)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (RSS)"


def non_embedding_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for n, p in module.named_parameters() if "embed" not in n)


def step_flops(model: HumanAesExpert, batch) -> float:
    core = model.core
    vcfg, tcfg = core.config.vision_config, core.config.text_config
    tiles = batch.pixel_values.shape[0]
    patches = (vcfg.image_size[0] // vcfg.patch_size[0]) ** 2 + 1
    vision = non_embedding_params(core.model.vision_tower) + non_embedding_params(
        core.model.multi_modal_projector
    )
    llm = non_embedding_params(core.model.language_model)
    seq, rows = batch.input_ids.shape[1], batch.input_ids.shape[0]
    fwd = 2 * vision * tiles * patches + 2 * llm * seq * rows
    fwd += 4 * vcfg.num_hidden_layers * patches**2 * vcfg.hidden_size * tiles
    fwd += 4 * tcfg.num_hidden_layers * seq**2 * tcfg.hidden_size * rows
    answer = int((batch.labels != -100).sum())
    fwd += 2 * tcfg.hidden_size * tcfg.vocab_size * answer  # LM head on answer tokens only
    return 2.0 * fwd


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", choices=("tiny", "1b"), default="tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--max-tiles", type=int, default=12)
    ap.add_argument("--image-size", default="640x480", help="WxH of the synthetic images")
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--lora-dropout", type=float, default=0.05)
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
    model = HumanAesExpert.wrap(
        backbone, LoraSettings(r=16, alpha=32, dropout=args.lora_dropout)
    ).to(device)
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
    optimizer = torch.optim.AdamW(params, lr=1e-4)

    images, samples = synthetic_batch(bs, (w, h))
    t0 = time.perf_counter()
    batch = model.encoder.encode_training(images, samples, random.Random(0))
    encode_s = time.perf_counter() - t0
    batch = batch.to(device)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if gpu
        else torch.autocast("cpu", enabled=False)
    )

    def step() -> None:
        with amp:
            out = model.run(batch, train=True)
            loss, _ = hae_loss(out, batch.targets, batch.mask)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    model.train()
    for _ in range(args.warmup):
        step()
    if gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if gpu:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0

    total = sum(p.numel() for p in model.core.parameters())
    per_step = elapsed / steps
    flops = step_flops(model, batch)
    name = torch.cuda.get_device_name(device) if gpu else "CPU"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None) if gpu else None
    rows = [
        ("device", f"{name} ({torch.get_num_threads()} threads)" if not gpu else name),
        ("backbone", f"random {args.size} InternVL, {total / 1e6:.1f} M params"),
        ("trainable (LoRA + heads)", f"{sum(p.numel() for p in params) / 1e6:.2f} M params"),
        (
            "batch",
            f"{bs} images {w}x{h}, {batch.pixel_values.shape[0]} tiles of "
            f"{model.encoder.tiles.tile_size} px, seq {batch.input_ids.shape[1]} tokens",
        ),
        ("precision", "bf16 autocast, bf16 base weights" if gpu else "fp32"),
        ("LoRA", f"r 16, alpha 32, dropout {args.lora_dropout}, LLM + vision tower"),
        ("build model (s)", f"{build_s:.2f}"),
        ("encode batch on CPU (s)", f"{encode_s:.3f}  ({bs / encode_s:.1f} images/s)"),
        ("train step (s)", f"{per_step:.4f}  (mean of {steps} after {args.warmup} warm-up)"),
        ("samples/s", f"{bs / per_step:.2f}"),
        ("step TFLOP (model)", f"{flops / 1e12:.3f}"),
        ("achieved TFLOP/s", f"{flops / per_step / 1e12:.2f}"),
        (
            "MFU",
            f"{100 * flops / per_step / peak:.1f} % of {peak / 1e12:.0f} TFLOP/s bf16"
            if peak
            else "n/a (no known peak for this device)",
        ),
        ("peak memory", peak_memory(device)),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"| {'train_step':<{width}} | value |\n|{'-' * (width + 2)}|-------|")
    for k, v in rows:
        print(f"| {k:<{width}} | {v} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
