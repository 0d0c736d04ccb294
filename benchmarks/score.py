"""HumanAesExpert scoring throughput: images/s per head, model only and end to end from JPEG
files, against the FLOP limit of the device, in one run.

    python benchmarks/score.py --quick            # tiny random InternVL, CPU, under a minute
    python benchmarks/score.py --size 1b          # InternVL2-1B-shaped random model (GPU, bf16)

Rows (random weights: speed, not quality):
- "model: lm + regression", "model: expert": one forward of the overall question (answer prefix
  appended; LM-head level score and regression head) or of the 12-dimension question (Expert
  head), on a batch encoded beforehand;
- "model: all heads": one vision pass shared by both questions, two LLM passes and the
  MetaVoter (what scoring runs), on a batch encoded beforehand: the model-only rate;
- "files: serial (previous pipeline)": JPEG files decoded and tiled in the main thread, then
  `model.score(PIL images)` - the peer;
- "files: loader, N workers": `modeling.hae.loading.score_items` - read, decode, tile (uint8) and
  tokenise in N worker processes, images batched, pinned memory, normalised on the device;
- "files: loader + device tiling": the same with decode in the workers and tiling on the device
  (within a stated tolerance of the PIL tiles, see modeling/hae/tiling.py);
- "lite": open_clip image tower + heads + MetaVoter, PIL in (tiny random CLIP; --no-lite skips).

Columns: images/s, ms/image, "% of limit" = images/s / FLOP limit (the MFU of that row; for the
rows that score with every head) and, for file rows, the speed-up over the serial pipeline. The
FLOP limit is the device's peak (bf16 dense from a table for known GPUs: H100/H200 989, A100 312
TFLOP/s; on the CPU a fp32 matmul measured in this run) divided by the model FLOPs of one image
at this tiling (modeling/hae/flops.py: the vision tower per tile, the projector, the LLM per
token of both questions). The last line, `RESULT ...`, repeats the main figures for scripts.
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

from modeling.hae.flops import Shapes, device_peak, scoring_flops
from modeling.hae.loading import default_workers, read_rgb, score_items
from modeling.hae.model import HumanAesExpert
from modeling.hae.synthetic import Factors, render
from modeling.hae.tiny import random_backbone


def images_for(n: int, size: tuple[int, int]):
    rng = random.Random(0)
    return [render(Factors(*(rng.random() for _ in range(4))), size, rng) for _ in range(n)]


def write_jpegs(folder: Path, n: int, size: tuple[int, int]) -> list[Path]:
    """``n`` JPEG files (quality 90): a few distinct images, repeated under other names."""
    distinct = images_for(min(n, 16), size)
    paths = []
    for i in range(n):
        path = folder / f"{i:05d}.jpg"
        distinct[i % len(distinct)].save(path, quality=90)
        paths.append(path)
    return paths


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / repeats


def same_scores(model, items, bs: int, args, amp) -> list[str]:
    """The loader's scores against the serial pipeline's on the same files and batches: equal
    (CPU tiling: the device normalises the same uint8 tiles) or, with device tiling, close."""
    with amp:
        serial = model.score([read_rgb(p) for _, p in items], batch_size=bs)
        lines = []
        for label, device_tiling in (("loader", False), ("loader + device tiling", True)):
            if device_tiling and args.no_device_tiling:
                continue
            got = [r for _, r, _ in score_items(model, items, batch_size=bs,
                                                workers=args.workers,
                                                device_tiling=device_tiling,
                                                threads=args.thread_workers)]
            worst = max(abs(a.overall - b.overall) for a, b in zip(got, serial, strict=True))
            worst = max(worst, *(abs(a.scores[k] - b.scores[k])
                                 for a, b in zip(got, serial, strict=True) for k in a.scores))
            same = all(a.as_dict() == b.as_dict() for a, b in zip(got, serial, strict=True))
            lines.append(f"{label} vs serial on {len(items)} files: max |score difference| "
                         f"{worst:.2e}{' (bit-identical)' if same else ''}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", choices=("tiny", "1b"), default="tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", type=int, default=8, help="images per model batch")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs of each model row")
    ap.add_argument("--max-tiles", type=int, default=12)
    ap.add_argument("--image-size", default="640x480", help="WxH (640x480: 12 tiles + thumbnail)")
    ap.add_argument("--files", type=int, default=None, help="JPEG files scored end to end")
    ap.add_argument("--workers", type=int, default=default_workers(), help="loader processes")
    ap.add_argument("--prefetch", type=int, default=4, help="batches ahead per worker")
    ap.add_argument("--thread-workers", action="store_true",
                    help="loader workers as threads, not processes (small /dev/shm)")
    ap.add_argument("--no-device-tiling", action="store_true", help="skip that row")
    ap.add_argument("--model-only", action="store_true", help="skip the rows from files")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the vision tower and the language model (a lever to try)")
    ap.add_argument("--clip-model", default="tiny")
    ap.add_argument("--clip-checkpoint", default=None)
    ap.add_argument("--no-lite", action="store_true", help="skip the Lite row (needs open_clip)")
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
    n_files = args.files or (2 * bs if args.quick else 16 * bs)

    backbone = random_backbone(args.size, device, dtype, max_tiles=args.max_tiles)
    model = HumanAesExpert.wrap(backbone).to(device).eval()
    if args.compile:
        inner = model.core.model
        inner.vision_tower = torch.compile(inner.vision_tower)
        inner.language_model = torch.compile(inner.language_model)
    folder = Path(tempfile.mkdtemp(prefix="hae-score-bench-"))
    files = write_jpegs(folder, n_files, (w, h))
    items = [(str(p), p) for p in files]
    images = [read_rgb(p) for p in files[:bs]]
    enc = model.encoder
    overall, expert = enc.encode_scoring_pair(images, prompt_index=1)
    overall, expert = overall.to(device), expert.to(device)
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

    def serial_files():
        with amp:
            for start in range(0, len(files), bs):
                model.score([read_rgb(p) for p in files[start : start + bs]], batch_size=bs)

    def loader_files(device_tiling: bool):
        def fn():
            with amp:
                for _, result, error in score_items(
                    model, items, batch_size=bs, workers=args.workers,
                    device_tiling=device_tiling, prefetch=args.prefetch,
                    threads=args.thread_workers,
                ):
                    assert error is None and result is not None

        return fn

    kind = "threads" if args.thread_workers else "workers"
    # (name, function, images per call, repeats, warm-up calls); compiled code recompiles for a
    # new sequence length a couple of times before it settles
    warm = 3 if args.compile else 1
    plan = [
        ("model: lm + regression", run(overall), bs, repeats, warm),
        ("model: expert", run(expert), bs, repeats, warm),
        ("model: all heads", all_heads, bs, repeats, warm),
    ]
    if not args.model_only:
        plan += [
            ("files: serial (previous pipeline)", serial_files, n_files, 1, 0),
            (f"files: loader, {args.workers} {kind}", loader_files(False), n_files, 1, 0),
        ]
    if not args.no_device_tiling and not args.model_only:
        plan.append((f"files: loader, {args.workers} {kind} + device tiling",
                     loader_files(True), n_files, 1, 0))
    if not args.no_lite:
        from modeling.hae.lite import HumanAesLite

        lite = HumanAesLite.create(args.clip_model, args.clip_checkpoint).to(device)
        plan.append((f"lite ({lite.config.clip_model}, PIL in)",
                     lambda: lite.predict(images), bs, repeats, 1))

    rates: dict[str, float] = {}
    failures: list[str] = []
    for name, fn, n, reps, warm in plan:
        try:
            rates[name] = n / timed(fn, device, reps, warm)
        except Exception as exc:  # one row's failure (e.g. no shared memory) keeps the others
            failures.append(f"{name}: failed: {type(exc).__name__}: {exc}")
            rates[name] = float("nan")
    try:
        checks = [] if args.model_only else same_scores(model, items[: 2 * bs], bs, args, amp)
    except Exception as exc:
        checks = [f"loader vs serial check failed: {type(exc).__name__}: {exc}"]
    checks += failures

    # Model FLOPs of one image at this tiling, and the device's limit.
    shapes = Shapes.of(model.core.config)
    tiles = overall.pixel_values.shape[0] // bs
    lengths = zip(overall.attention_mask.sum(1).tolist(), expert.attention_mask.sum(1).tolist(),
                  strict=True)
    per_image = sum(scoring_flops(shapes, tiles, int(o), int(e)) for o, e in lengths) / bs
    peak, peak_from = device_peak(device, dtype)
    limit = peak / per_image

    name = torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    params = sum(p.numel() for p in model.core.parameters())
    memory = (
        f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (GPU)"
        if gpu
        else f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (RSS)"
    )
    print(
        f"device: {name}; backbone: random {args.size} InternVL ({params / 1e6:.1f} M params, "
        f"{'bf16' if gpu else 'fp32'}{', compiled' if args.compile else ''}); "
        f"batch {bs} images {w}x{h} -> {tiles} tiles each "
        f"(max {args.max_tiles} + thumbnail), seq {overall.input_ids.shape[1]} / "
        f"{expert.input_ids.shape[1]} tokens; {n_files} JPEG files end to end; peak memory "
        f"{memory}"
    )
    print(f"model FLOPs per image: {per_image / 1e12:.4f} TFLOP; peak: {peak_from}; "
          f"FLOP limit: {limit:.2f} images/s")
    for line in checks:
        print(line)
    serial = rates.get("files: serial (previous pipeline)", float("nan"))
    print("| path | images/s | ms/image | % of limit | vs serial |")
    print("|------|----------|----------|------------|-----------|")
    for row, rate in rates.items():
        versus = f"{rate / serial:.2f}x" if row.startswith("files") else ""
        full = row.startswith("files") or row == "model: all heads"  # both questions, all heads
        pct = f"{100 * rate / limit:.1f} %" if full else ""
        print(f"| {row} | {rate:.2f} | {1000 / rate:.2f} | {pct} | {versus} |")
    best_files = max((v for k, v in rates.items() if k.startswith("files: loader") and v == v),
                     default=float("nan"))
    print(
        f"RESULT score size={args.size} compiled={int(args.compile)} "
        f"model_img_s={rates['model: all heads']:.2f} "
        f"e2e_img_s={best_files:.2f} serial_img_s={serial:.2f} limit_img_s={limit:.2f} "
        f"e2e_pct_of_limit={100 * best_files / limit:.1f}"
    )
    for p in files:
        p.unlink()
    folder.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
