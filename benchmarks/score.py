"""HumanAesExpert scoring throughput: images/s per head and with the MetaVoter.

    python benchmarks/score.py --quick           # tiny random InternVL + tiny CLIP, CPU
    python benchmarks/score.py --size 1b         # InternVL2-1B-shaped random model (GPU)

Rows:
- "lm + regression": one forward of the overall question (answer prefix appended): the LM-head
  level score and the regression head together;
- "expert": one forward of the 12-dimension question (Expert head);
- "metavoter (all heads)": one vision pass shared by both questions, two LLM passes and the
  MetaVoter (what `model.predict` runs);
- "end to end": `model.score(PIL images)`, tiling and tokenising on the CPU included;
- "lite": open_clip image tower + heads + MetaVoter (tiny random CLIP unless --clip-model).
Model rows use batches encoded beforehand; random weights: speed, not quality.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import torch

from modeling.hae.lite import HumanAesLite
from modeling.hae.model import HumanAesExpert
from modeling.hae.synthetic import Factors, render
from modeling.hae.tiny import random_backbone


def images_for(n: int, size: tuple[int, int]):
    import random

    rng = random.Random(0)
    return [render(Factors(*(rng.random() for _ in range(4))), size, rng) for _ in range(n)]


def timed(fn, device: torch.device, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", choices=("tiny", "1b"), default="tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--max-tiles", type=int, default=12)
    ap.add_argument("--image-size", default="640x480")
    ap.add_argument("--clip-model", default="tiny")
    ap.add_argument("--clip-checkpoint", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    repeats = args.repeats or (2 if args.quick else 5)
    w, h = (int(v) for v in args.image_size.split("x"))
    dtype = torch.bfloat16 if gpu else torch.float32
    bs = args.batch_size

    backbone = random_backbone(args.size, device, dtype, max_tiles=args.max_tiles)
    model = HumanAesExpert.wrap(backbone).to(device).eval()
    images = images_for(bs, (w, h))
    enc = model.encoder
    overall = enc.encode_scoring(images, expert=False, prompt_index=1).to(device)
    expert = enc.encode_scoring(images, expert=True, prompt_index=1).to(device)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if gpu
        else torch.autocast("cpu", enabled=False)
    )

    def run(batch):
        def fn():
            with torch.no_grad(), amp:
                model.run(batch)

        return fn

    def all_heads():
        with torch.no_grad(), amp:
            model.heads_on(overall, expert)  # one vision pass, two LLM passes, MetaVoter

    def end_to_end():
        with amp:
            model.score(images, batch_size=bs)

    lite = HumanAesLite.create(args.clip_model, args.clip_checkpoint).to(device)

    def lite_fn():
        lite.predict(images)

    rows = []
    for name, fn in (
        ("lm + regression", run(overall)),
        ("expert", run(expert)),
        ("metavoter (all heads)", all_heads),
        ("end to end (PIL in)", end_to_end),
        (f"lite ({lite.config.clip_model}, PIL in)", lite_fn),
    ):
        seconds = timed(fn, device, repeats, warmup=1)
        rows.append((name, f"{bs / seconds:.2f}", f"{1000 * seconds / bs:.2f}"))
    name = torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    params = sum(p.numel() for p in model.core.parameters())
    peak = (
        f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (GPU)"
        if gpu
        else f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (RSS)"
    )
    print(
        f"device: {name}; backbone: random {args.size} InternVL ({params / 1e6:.1f} M params, "
        f"{'bf16' if gpu else 'fp32'}); batch {bs} images {w}x{h} -> "
        f"{overall.pixel_values.shape[0]} tiles, seq {overall.input_ids.shape[1]} / "
        f"{expert.input_ids.shape[1]} tokens; peak memory {peak}"
    )
    print("| path | images/s | ms/image |\n|------|----------|----------|")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
