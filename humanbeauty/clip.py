"""The one CLIP loader: an open_clip model from a local checkpoint, for the curation filter
(`curation.imaging.clip_filter`) and the Lite model (`modeling.hae.lite`).

Django-free and below both callers (curation must not import modeling). `load_clip` goes
through open_clip's own path, `create_model_and_transforms(model, pretrained=<checkpoint>)` and
`get_tokenizer(model)`, so whatever open_clip can load works: a local weights file (.pt / .bin /
.safetensors), or a pretrained tag whose weights already sit in the local cache. Weights are
never downloaded unless `allow_download` is set (the build machines have no internet, and
open_clip would retry the hub for a minute before failing), and there is no fallback to random
weights: without a usable checkpoint `load_clip` raises `ClipUnavailable`, whose message ends
with the caller's sentence on how to provide one.

open_clip and torch are imported when a model is loaded, not when this module is.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from humanbeauty.errors import DomainError

if TYPE_CHECKING:
    import torch
    from PIL import Image

# Where a tag's weights land when open_clip downloads them from a URL (its own default).
_URL_CACHE = "~/.cache/clip"
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".npz", ".ckpt")

HOW_TO_PROVIDE = (
    "Provide a local open_clip weights file (.pt, .bin or .safetensors) for this model, or a "
    "pretrained tag whose weights are already in the local cache."
)


class ClipUnavailable(DomainError, code="clip_unavailable"):
    """No usable CLIP model: missing or unreadable checkpoint, unknown model name."""


@dataclass(frozen=True)
class LoadedClip:
    """What `load_clip` returns: the model (eval mode, on the device) and its pre/tokenizer."""

    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable[[Sequence[str]], torch.Tensor]
    checkpoint_path: str | None = None  # the file the weights came from
    # The open_clip config the model was built from (with quick_gelu where the weights need
    # it), so that a saved copy can be rebuilt to match; empty for a model built elsewhere.
    model_config: dict[str, Any] = field(default_factory=dict)


def _looks_like_path(value: str) -> bool:
    return (
        os.sep in value
        or (os.altsep is not None and os.altsep in value)
        or value.startswith(("~", "."))
        or Path(value).suffix.lower() in _WEIGHT_SUFFIXES
    )


def _cached_tag_file(model: str, tag: str, cache_dir: str | None) -> str | None:
    """The local file of a pretrained tag's weights, looked up without touching the network."""
    from huggingface_hub import try_to_load_from_cache  # an open_clip dependency
    from open_clip.pretrained import get_pretrained_cfg

    cfg = get_pretrained_cfg(model, tag)
    hub = cfg.get("hf_hub", "")
    if hub:
        # "org/repo/file.bin", or "org/repo/" for open_clip's default file name; open_clip
        # prefers a .safetensors twin when there is one, and so do we.
        repo_id, filename = os.path.split(hub)
        filename = filename or "open_clip_pytorch_model.bin"
        stem, _ = os.path.splitext(filename)
        for name in (f"{stem}.safetensors", filename):
            found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
            if isinstance(found, str) and os.path.isfile(found):
                return found
    url = cfg.get("url", "")
    if url:
        local = Path(cache_dir or _URL_CACHE).expanduser() / os.path.basename(url)
        if local.is_file():
            return str(local)
    return None


def _resolve_checkpoint(
    model: str, checkpoint: str | None, *, cache_dir: str | None, allow_download: bool,
    how_to_provide: str,
) -> tuple[str, dict[str, Any]]:
    """(what to pass as `pretrained`, extra keyword arguments of `create_model_and_transforms`:
    a cached tag's preprocessing and activation), or ClipUnavailable."""
    from open_clip.pretrained import get_pretrained_cfg, list_pretrained_tags_by_model

    checkpoint = str(checkpoint or "").strip()
    where = f"CLIP model {model!r}"
    if not checkpoint:
        raise ClipUnavailable(f"{where} has no checkpoint configured. {how_to_provide}")
    path = Path(checkpoint).expanduser()
    if path.is_file():
        return str(path), {}
    if path.exists():
        raise ClipUnavailable(f"{where}: checkpoint {checkpoint} is not a file. {how_to_provide}")
    tag_cfg = get_pretrained_cfg(model, checkpoint)
    if not tag_cfg:
        if _looks_like_path(checkpoint):
            raise ClipUnavailable(
                f"{where}: there is no CLIP checkpoint file at {checkpoint}. {how_to_provide}"
            )
        tags = ", ".join(list_pretrained_tags_by_model(model)) or "none"
        raise ClipUnavailable(
            f"{where}: checkpoint {checkpoint!r} is neither an existing file nor a pretrained "
            f"tag of this model (its tags: {tags}). {how_to_provide}"
        )
    if allow_download:
        return checkpoint, {}  # open_clip resolves (and may download) the tag itself
    local = _cached_tag_file(model, checkpoint, cache_dir)
    if local is None:
        raise ClipUnavailable(
            f"{where}: the weights of pretrained tag {checkpoint!r} are not in the local cache "
            f"and downloads are off. {how_to_provide}"
        )
    # Loaded as a file, the tag's own preprocessing (mean, std, interpolation) must come along,
    # and so must its activation: OpenAI's weights were trained with QuickGELU (open_clip only
    # warns about that mismatch; here the model is built to match the weights).
    kwargs: dict[str, Any] = {f"image_{k}": tag_cfg[k]
                              for k in ("mean", "std", "interpolation", "resize_mode")
                              if tag_cfg.get(k) is not None}
    if tag_cfg.get("quick_gelu"):
        kwargs["force_quick_gelu"] = True
    return local, kwargs


def load_clip(
    model: str,
    checkpoint: str | None,
    *,
    device: str = "cpu",
    cache_dir: str | None = None,
    allow_download: bool = False,
    how_to_provide: str = HOW_TO_PROVIDE,
) -> LoadedClip:
    """Build the model with open_clip's real loading path; ClipUnavailable when it cannot.

    `how_to_provide` ends every refusal: the caller's own way to give a checkpoint (a setting,
    a flag) or to do without. Never falls back to random weights: open_clip only does that
    when `pretrained` is empty, which `_resolve_checkpoint` refuses.
    """
    import open_clip

    if ":" in model:
        raise ClipUnavailable(
            f"CLIP model {model!r}: names with a schema (hf-hub:, local-dir:) are not "
            "supported here; give an open_clip model name and a checkpoint file"
        )
    model_config = open_clip.get_model_config(model.replace("/", "-"))
    if model_config is None and checkpoint:
        # A custom architecture's config may travel beside its weights (`<model>.json`), so a
        # worker on another machine needs nothing registered by hand.
        beside = Path(checkpoint).parent / f"{model.replace('/', '-')}.json"
        if beside.is_file():
            open_clip.add_model_config(beside)
            model_config = open_clip.get_model_config(model.replace("/", "-"))
    if model_config is None:
        raise ClipUnavailable(
            f"unknown open_clip model {model!r} (open_clip knows no model by that name): use "
            "one of open_clip.list_models() (e.g. ViT-B-32), put its config beside the "
            f"checkpoint as {model}.json, or register it with open_clip.add_model_config(). "
            f"{how_to_provide}"
        )
    pretrained, kwargs = _resolve_checkpoint(
        model, checkpoint, cache_dir=cache_dir, allow_download=allow_download,
        how_to_provide=how_to_provide,
    )
    try:
        clip, _, preprocess = open_clip.create_model_and_transforms(
            model, pretrained=pretrained, device=device, cache_dir=cache_dir, **kwargs
        )
        tokenizer = open_clip.get_tokenizer(model)
    except Exception as exc:
        # A file that is not a state dict of this model (torch, pickle and safetensors each
        # raise their own kinds), a failed download, a device that is not there.
        raise ClipUnavailable(
            f"CLIP model {model!r} cannot be loaded from {pretrained}: {exc}. {how_to_provide}"
        ) from exc
    clip.eval()
    built = copy.deepcopy(model_config)
    if kwargs.get("force_quick_gelu"):
        built["quick_gelu"] = True
    return LoadedClip(clip, preprocess, tokenizer,
                      pretrained if Path(pretrained).is_file() else None, built)
