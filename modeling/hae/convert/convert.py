"""Read an official InternVL2 / HumanAesExpert checkpoint, write a native backbone directory.

The destination is what :func:`modeling.hae.backbone.load_backbone` loads (``--backbone DST``):
``config.json``, ``model.safetensors`` (or shards with an index), the tokenizer, plus
``conversion.json`` (what was converted, from where, and every head tensor set aside) and, for
a HumanAesExpert release, ``official_heads.safetensors`` (the linear regression head, loadable
with :func:`load_regression_head`). It is written to a temporary sibling and renamed at the end,
so a failed conversion leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..errors import CheckpointNotFoundError, IncompatibleCheckpointError
from ..heads import LinearRegressionHead
from .configs import Layout, native_config
from .tokenizer import IMAGE_CONTEXT_TOKEN, convert_tokenizer, token_id
from .weights import REGRESSION_HEAD, UnknownKeysError, classify, head_key, map_tensor

if TYPE_CHECKING:
    from transformers import InternVLConfig

CONVERSION_NAME = "conversion.json"
OFFICIAL_HEADS_NAME = "official_heads.safetensors"
DROPPABLE_HEADS = ("expert",)
MAX_SHARD_BYTES = 5 * 1024**3


@dataclass
class ConversionReport:
    source: str
    destination: str
    family: str  # the official LLM family: qwen2 or internlm2
    image_token_id: int
    image_seq_length: int
    tensors_read: int
    tensors_written: int
    heads: dict[str, list[str]] = field(default_factory=dict)  # kept, by head
    dropped: list[str] = field(default_factory=list)  # head tensors left out on request

    def as_dict(self) -> dict:
        return asdict(self)


def _source_files(src: Path) -> list[Path]:
    index = src / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return [src / name for name in sorted(set(weight_map.values()))]
    if (src / "model.safetensors").is_file():
        return [src / "model.safetensors"]
    if any(src.glob("*.bin")):
        raise IncompatibleCheckpointError(
            f"{src} holds PyTorch .bin weights; convert them to safetensors first"
        )
    raise CheckpointNotFoundError(f"{src} holds no model.safetensors (or sharded index)")


def _source_keys(files: list[Path]) -> dict[str, Path]:
    where: dict[str, Path] = {}
    for path in files:
        with safe_open(str(path), "pt") as f:
            names = f.keys()
            for key in names:
                where[key] = path
    return where


def _tensors(files: list[Path], keys: set[str]) -> Iterator[tuple[str, torch.Tensor]]:
    for path in files:
        with safe_open(str(path), "pt") as f:
            names = f.keys()
            for key in names:
                if key in keys:
                    yield key, f.get_tensor(key)


def _expected_shapes(config) -> dict[str, tuple[int, ...]]:
    """The native model's tensors, built on the meta device (no memory, any size)."""
    from transformers import InternVLForConditionalGeneration

    with torch.device("meta"):
        model = InternVLForConditionalGeneration(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


class _ShardWriter:
    def __init__(self, out: Path, max_bytes: int):
        self.out, self.max_bytes = out, max_bytes
        self.current: dict[str, torch.Tensor] = {}
        self.size = 0
        self.shards: list[list[str]] = []
        self.total = 0

    def add(self, key: str, tensor: torch.Tensor) -> None:
        nbytes = tensor.numel() * tensor.element_size()
        if self.current and self.size + nbytes > self.max_bytes:
            self._flush()
        self.current[key] = tensor
        self.size += nbytes
        self.total += nbytes

    def _flush(self) -> None:
        n = len(self.shards)
        save_file(self.current, str(self.out / f"part-{n}.safetensors"), {"format": "pt"})
        self.shards.append(list(self.current))
        self.current, self.size = {}, 0

    def close(self) -> None:
        if self.current or not self.shards:
            self._flush()
        if len(self.shards) == 1:
            (self.out / "part-0.safetensors").rename(self.out / "model.safetensors")
            return
        count, weight_map = len(self.shards), {}
        for i, keys in enumerate(self.shards):
            name = f"model-{i + 1:05d}-of-{count:05d}.safetensors"
            (self.out / f"part-{i}.safetensors").rename(self.out / name)
            weight_map.update(dict.fromkeys(keys, name))
        index = {"metadata": {"total_size": self.total}, "weight_map": weight_map}
        (self.out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def _check_heads(head_keys: list[str], drop_heads: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(regression-head keys kept, keys dropped on request); anything else stops it."""
    kept, dropped, refused = [], [], []
    for key in head_keys:
        name = head_key(key) or ""
        if name in (f"{REGRESSION_HEAD}.weight", f"{REGRESSION_HEAD}.bias"):
            kept.append(key)
        elif name.startswith("expert_head") and "expert" in drop_heads:
            dropped.append(key)
        else:
            refused.append(key)
    if refused:
        raise UnknownKeysError(
            refused,
            "belong to a HumanAesExpert head the converter cannot map onto the project's heads "
            "(the expert head's layout is not published with the official code); pass "
            "--drop-heads expert to convert without it (recorded in conversion.json)",
        )
    return kept, dropped


def _regression_head(tensors: dict[str, torch.Tensor], hidden: int) -> dict[str, torch.Tensor]:
    weight = tensors.get(f"language_model.{REGRESSION_HEAD}.weight")
    if weight is None or tuple(weight.shape) != (1, hidden):
        shape = None if weight is None else tuple(weight.shape)
        raise IncompatibleCheckpointError(
            f"lm_regression_head.weight has shape {shape}, expected (1, {hidden}): "
            "not a single linear layer on the LLM hidden state"
        )
    out = {"linear.weight": weight.float().contiguous()}
    bias = tensors.get(f"language_model.{REGRESSION_HEAD}.bias")
    if bias is not None:
        out["linear.bias"] = bias.float().reshape(1).contiguous()
    return out


def convert_checkpoint(
    src: str | Path,
    dst: str | Path,
    *,
    drop_heads: tuple[str, ...] = (),
    progress: Callable[[int, int], None] | None = None,
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> ConversionReport:
    """Convert ``src`` (official layout) into a native backbone directory at ``dst``."""
    from transformers import InternVLConfig

    source, target = Path(src).expanduser(), Path(dst).expanduser()
    _check_request(source, target, drop_heads)
    official = json.loads((source / "config.json").read_text())
    files = _source_files(source)
    where = _source_keys(files)

    staging = target.with_name(f".{target.name}.converting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        image_token_id, config_dict, layout = _convert_tokenizer(official, source, staging)
        backbone_keys, head_keys, unknown = classify(where, layout)
        if unknown:
            raise UnknownKeysError(unknown)
        kept_heads, dropped = _check_heads(head_keys, drop_heads)
        config = InternVLConfig(**config_dict)
        config.dtype = official.get("torch_dtype") or "float32"
        written = _write_backbone(files, backbone_keys, layout, config, staging,
                                  max_shard_bytes=max_shard_bytes, progress=progress)
        config.save_pretrained(staging)
        heads = _write_heads(files, kept_heads, config, staging)
        report = ConversionReport(
            source=str(source),
            destination=str(target),
            family=layout.family,
            image_token_id=image_token_id,
            image_seq_length=int(config.image_seq_length),
            tensors_read=len(backbone_keys) + len(kept_heads),
            tensors_written=len(written),
            heads=heads,
            dropped=sorted(dropped),
        )
        (staging / CONVERSION_NAME).write_text(json.dumps(report.as_dict(), indent=2) + "\n")
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def _check_request(source: Path, target: Path, drop_heads: tuple[str, ...]) -> None:
    """Refuse before anything is read or written: unknown heads to drop, no official config,
    a destination that holds something."""
    unknown_drops = sorted(set(drop_heads) - set(DROPPABLE_HEADS))
    if unknown_drops:
        raise ValueError(f"--drop-heads takes {DROPPABLE_HEADS}, not {unknown_drops}")
    if not (source / "config.json").is_file():
        raise CheckpointNotFoundError(f"{source} holds no config.json")
    if target.exists() and any(target.iterdir()):
        raise FileExistsError(f"{target} exists and is not empty; choose a new directory")


def _convert_tokenizer(official: dict, source: Path,
                       staging: Path) -> tuple[int, dict, Layout]:
    """The tokenizer into ``staging``, first: the native config needs its image token id.
    Answers (that id, the native config as a dict, the weight layout)."""
    _config_dict, layout = native_config(official, image_token_id=0)
    tokenizer = convert_tokenizer(source, staging, layout.family)
    image_token_id = token_id(tokenizer, IMAGE_CONTEXT_TOKEN)
    config_dict, layout = native_config(official, image_token_id=image_token_id)
    return image_token_id, config_dict, layout


def _write_backbone(files: list[Path], backbone_keys: list[str], layout: Layout,
                    config: InternVLConfig, staging: Path, *, max_shard_bytes: int,
                    progress: Callable[[int, int], None] | None) -> dict[str, tuple[int, ...]]:
    """Map every backbone tensor into shards under ``staging``, checked against the native
    model's shapes before the shards are closed; answers {native key: shape} written."""
    expected = _expected_shapes(config)
    written: dict[str, tuple[int, ...]] = {}
    writer = _ShardWriter(staging, max_shard_bytes)
    for done, (key, tensor) in enumerate(_tensors(files, set(backbone_keys)), start=1):
        for new_key, new_tensor in map_tensor(key, tensor, layout):
            if new_key in written:
                raise IncompatibleCheckpointError(f"two source tensors map to {new_key}")
            written[new_key] = tuple(new_tensor.shape)
            writer.add(new_key, new_tensor)
        if progress:
            progress(done, len(backbone_keys))
    _check_fit(expected, written)
    writer.close()
    return written


def _check_fit(expected: dict[str, tuple[int, ...]], written: dict[str, tuple[int, ...]]) -> None:
    """Every tensor the native model needs, no other, each in its shape."""
    problems = [f"missing {k}" for k in expected if k not in written]
    problems += [f"unexpected {k}" for k in written if k not in expected]
    problems += [
        f"{k}: converted {written[k]}, model needs {shape}"
        for k, shape in expected.items()
        if k in written and written[k] != shape
    ]
    if problems:
        raise IncompatibleCheckpointError(
            "the converted weights do not fit the native model: " + "; ".join(problems[:20])
        )


def _write_heads(files: list[Path], kept_heads: list[str], config: InternVLConfig,
                 staging: Path) -> dict[str, list[str]]:
    """The official regression head, where the source has one; answers {head: source keys}."""
    heads: dict[str, list[str]] = {}
    if kept_heads:
        tensors = dict(_tensors(files, set(kept_heads)))
        hidden = int(config.text_config.hidden_size)
        save_file(_regression_head(tensors, hidden), str(staging / OFFICIAL_HEADS_NAME))
        heads["regression"] = sorted(kept_heads)
    return heads


def load_regression_head(directory: str | Path) -> LinearRegressionHead:
    """The official linear regression head of a converted HumanAesExpert release."""
    path = Path(directory) / OFFICIAL_HEADS_NAME
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"{path} is missing: the source carried no lm_regression_head"
        )
    state = load_file(str(path))
    weight = state["linear.weight"]
    head = LinearRegressionHead(weight.shape[1], bias="linear.bias" in state)
    head.load_state_dict(state)
    return head
