"""``python -m modeling.convert_official SRC DST``: an official InternVL2 / HumanAesExpert
checkpoint (remote-code ``internvl_chat`` layout) -> a backbone directory the project loads.

Django-free on purpose, like ``modeling.train``; the work is in :mod:`modeling.hae.convert`.
"""

from __future__ import annotations

import argparse
import json
import sys

from modeling.hae.convert import convert_checkpoint
from modeling.hae.errors import CheckpointNotFoundError, IncompatibleCheckpointError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m modeling.convert_official", description=__doc__
    )
    parser.add_argument("src", help="official checkpoint directory (config.json, safetensors)")
    parser.add_argument("dst", help="new directory for the converted backbone")
    parser.add_argument(
        "--drop-heads",
        nargs="*",
        default=[],
        choices=["expert"],
        help="HumanAesExpert heads to leave out on purpose (recorded in conversion.json)",
    )
    parser.add_argument("--progress", action="store_true", help="print tensors converted")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def progress(done: int, total: int) -> None:
        print(f"\rconverted {done}/{total} tensors", end="\n" if done == total else "", flush=True)

    try:
        report = convert_checkpoint(
            args.src,
            args.dst,
            drop_heads=tuple(args.drop_heads),
            progress=progress if args.progress else None,
        )
    except (CheckpointNotFoundError, IncompatibleCheckpointError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
