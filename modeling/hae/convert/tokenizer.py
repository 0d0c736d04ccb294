"""The official tokenizer, made loadable without remote code.

- Qwen2 (InternVL2-1B): the files are copied; ``Qwen2Tokenizer`` is native in transformers.
- InternLM2 (InternVL2-8B): ``InternLM2Tokenizer`` is remote code around a SentencePiece model.
  It is rebuilt as a fast tokenizer from the same ``tokenizer.model`` with SentencePiece's own
  normalizer settings; every chunk between added tokens gets SentencePiece's dummy prefix,
  as the slow tokenizer encodes each chunk on its own, and ``<s>`` is prepended.

The image-context token id is read from the result (``<IMG_CONTEXT>``), never assumed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerFast

from ..errors import IncompatibleCheckpointError

IMAGE_CONTEXT_TOKEN = "<IMG_CONTEXT>"
IMAGE_TOKENS = ("<img>", "</img>", IMAGE_CONTEXT_TOKEN)
_QWEN2_FILES = (
    "vocab.json",
    "merges.txt",
    "tokenizer.json",
    "added_tokens.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def token_id(tokenizer, token: str) -> int:
    """The id of ``token``; an error if the tokenizer does not know it."""
    tid = tokenizer.convert_tokens_to_ids(token)
    if tid is None or (tid == tokenizer.unk_token_id and token != tokenizer.unk_token):
        raise IncompatibleCheckpointError(f"the tokenizer has no {token!r} token")
    return int(tid)


def _copy_qwen2(src: Path, dst: Path) -> None:
    for name in _QWEN2_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    config_path = dst / "tokenizer_config.json"
    config = _read_json(config_path)
    config.pop("auto_map", None)  # nothing remote to point at any more
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def build_internlm2(src: Path) -> PreTrainedTokenizerFast:
    """A fast tokenizer that encodes like the official ``InternLM2Tokenizer``."""
    from tokenizers import AddedToken, processors
    from transformers.convert_slow_tokenizer import SpmConverter, import_protobuf

    proto = import_protobuf().ModelProto()
    proto.ParseFromString((src / "tokenizer.model").read_bytes())
    vocab = {piece.piece: i for i, piece in enumerate(proto.pieces)}
    backend = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=True)
    if backend is None:
        raise IncompatibleCheckpointError(f"{src / 'tokenizer.model'} is not a BPE model")
    config = _read_json(src / "tokenizer_config.json")
    added = sorted(
        (int(i), entry) for i, entry in config.get("added_tokens_decoder", {}).items()
    )
    for expected_id, entry in added:
        backend.add_special_tokens(
            [
                AddedToken(
                    entry["content"],
                    lstrip=entry.get("lstrip", False),
                    rstrip=entry.get("rstrip", False),
                    normalized=entry.get("normalized", False),
                    single_word=entry.get("single_word", False),
                    special=True,
                )
            ]
        )
        if backend.token_to_id(entry["content"]) != expected_id:
            raise IncompatibleCheckpointError(
                f"added token {entry['content']!r} is id {expected_id} in the source but "
                f"{backend.token_to_id(entry['content'])} once rebuilt"
            )
    bos, eos = config.get("bos_token", "<s>"), config.get("eos_token", "</s>")
    single = "$A"
    if config.get("add_bos_token", True):
        single = f"{bos} $A"
    if config.get("add_eos_token", False):
        single = f"{single} {eos}"
    specials = sorted({t for t in (bos, eos) if t in single})
    backend.post_processor = processors.TemplateProcessing(
        single=single,
        pair=single.replace("$A", "$A $B"),
        special_tokens=[(t, backend.token_to_id(t)) for t in specials],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=eos,
        unk_token=config.get("unk_token", "<unk>"),
        pad_token=config.get("pad_token"),
        clean_up_tokenization_spaces=config.get("clean_up_tokenization_spaces", False),
        model_max_length=config.get("model_max_length", 32768),
    )


def convert_tokenizer(src: Path, dst: Path, family: str):
    """Write the stand-alone tokenizer to ``dst`` and return it as loaded back from there."""
    dst.mkdir(parents=True, exist_ok=True)
    if family == "internlm2":
        if not (src / "tokenizer.model").is_file():
            raise IncompatibleCheckpointError(f"{src} has no tokenizer.model (InternLM2)")
        build_internlm2(src).save_pretrained(dst)
    else:
        if not ((src / "vocab.json").is_file() or (src / "tokenizer.json").is_file()):
            raise IncompatibleCheckpointError(f"{src} has no Qwen2 tokenizer files")
        _copy_qwen2(src, dst)
    tokenizer = AutoTokenizer.from_pretrained(dst, local_files_only=True)
    for token in IMAGE_TOKENS:
        token_id(tokenizer, token)
    return tokenizer
