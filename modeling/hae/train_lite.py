"""Train HumanAesExpert-Lite: embed every image once with the frozen CLIP (cached under
``RUN_DIR/cache/``), then fit the regression and Expert heads on the cached embeddings, then the
MetaVoter. Minutes on a CPU; the full model's loop (`loop.train`), so the same checkpoints,
``--resume``, metrics log, ``final/`` and test report."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from .config import TrainConfig
from .data import Sample, TrainingData, open_image, training_data
from .errors import CheckpointNotFoundError, ReleaseError
from .lite import HumanAesLite
from .loop import EpochSampler, MetricsLog, Runtime, streams, train
from .losses import masked_mse


def cache_key(model: HumanAesLite, samples: Sequence[Sample], seed: int) -> str:
    h = hashlib.sha256()
    c = model.config
    h.update(json.dumps([c.clip_model, c.clip_config, c.clip_checkpoint, seed]).encode())
    for s in samples:
        stat = s.image_path.stat()
        h.update(f"{s.image_name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def cached_embeddings(
    model: HumanAesLite, samples: Sequence[Sample], cache: Path, split: str, seed: int, batch: int
) -> torch.Tensor:
    path = cache / f"{split}-{cache_key(model, samples, seed)}.safetensors"
    if path.is_file():
        return load_file(str(path))["features"]
    chunks = []
    for start in tqdm(range(0, len(samples), batch), desc=f"embed {split}", mininterval=1):
        images = [open_image(s.image_path) for s in samples[start : start + batch]]
        chunks.append(model.embed(images).cpu())
    features = torch.cat(chunks)
    cache.mkdir(parents=True, exist_ok=True)
    save_file({"features": features.contiguous()}, str(path))
    return features


def train_lite(cfg: TrainConfig, data: str, run_dir: Path, resume: bool) -> Path:
    if not cfg.clip_model:
        raise CheckpointNotFoundError(
            "--backbone lite needs --clip-model NAME with --clip-checkpoint PATH "
            "(or --clip-model tiny for the random smoke-test CLIP)"
        )
    if streams(cfg, data):
        raise ReleaseError(
            "--backbone lite embeds a release folder's image files once; it does not stream "
            "shards (train the full model from s3://, or download the release to a folder)"
        )
    # One process: the heads train on cached embeddings in minutes, with no use for DDP.
    rt = Runtime(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    return train(
        lambda latest, state: LiteTraining(cfg, data, run_dir, rt.device, latest),
        cfg, data, run_dir, resume, rt,
    )


class LiteTraining:
    """The Lite model in the shared loop (`loop.train`): the frozen CLIP embeds every image
    once (cached), then the heads train on batches of the cached embeddings, one batch per
    step, and the MetaVoter on the frozen heads' outputs for held-out images."""

    name = "lite"
    amp = None  # small heads on cached features: full precision

    def __init__(
        self, cfg: TrainConfig, data: str, run_dir: Path, device: torch.device,
        latest: Path | None,
    ) -> None:
        self.cfg, self.run_dir, self.device = cfg, run_dir, device
        self.data: TrainingData = training_data(data, seed=cfg.seed)
        samples = self.data.heads
        if latest is not None:
            self.model = HumanAesLite.from_pretrained(latest, device=str(device))
        else:
            self.model = HumanAesLite.create(
                cfg.clip_model, cfg.clip_checkpoint, cfg.head_hidden, cfg.seed
            )
            self.model.to(device)
        features = self._embed(samples, "train")
        if latest is None:
            self.model.heads.fit_normaliser(features)
        self.features = features.to(device)
        self.targets = torch.tensor([s.target_vector() for s in samples], device=device)
        self.mask = torch.tensor([s.target_mask() for s in samples], device=device)
        self.heads = self.train_module = self.model.heads
        self.loss_weights = {"regression": cfg.loss_regression, "expert": cfg.loss_expert}
        self.n = len(samples)
        self.batch_size = min(cfg.lite_batch_size, self.n)
        self.per_epoch = math.ceil(self.n / self.batch_size)
        self.epoch = self.done = 0

    def _embed(self, samples: Sequence[Sample], split: str) -> torch.Tensor:
        return cached_embeddings(
            self.model, samples, self.run_dir / "cache", split, self.cfg.seed,
            self.cfg.lite_embed_batch_size,
        )

    def plan(self, cfg: TrainConfig) -> tuple[int, int]:
        total = cfg.max_steps or cfg.lite_epochs * self.per_epoch
        voter = cfg.metavoter_steps if cfg.metavoter_steps is not None else max(1, total // 10)
        return total, voter

    def param_groups(self) -> list[dict]:
        params = [p for m in (self.heads.regression, self.heads.expert) for p in m.parameters()]
        return [{"params": params, "lr": self.cfg.head_lr}]

    def accumulate(self, step: int, scaler: torch.amp.GradScaler) -> tuple[dict[str, float], int]:
        # The step decides the batch: a seeded permutation per epoch, cut in batch_size slices,
        # so a resumed run continues with the very batch it would have seen.
        self.epoch, offset = divmod(step, self.per_epoch)
        self.done = offset + 1
        order = EpochSampler(self.n, self.cfg.seed, self.epoch, 0, 1).indices
        bs = self.batch_size
        idx = torch.tensor(order[offset * bs : (offset + 1) * bs], device=self.device)
        out = self.heads(self.features[idx])
        parts = {
            "regression": F.mse_loss(out["regression"], self.targets[idx, -1]),
            "expert": masked_mse(out["expert"], self.targets[idx], self.mask[idx]),
        }
        loss = sum(self.loss_weights[k] * v for k, v in parts.items())
        scaler.scale(loss).backward()
        return {k: v.item() for k, v in parts.items()}, len(idx)

    def save_weights(self, directory: Path) -> None:
        self.model.save_pretrained(directory)

    def train_metavoter(self, steps: int, log: MetricsLog) -> None:
        """Stage 2: the MetaVoter on the frozen heads' outputs for the held-out images
        (`data.training_data`), never the ones the heads trained on."""
        self.heads.eval()
        features = self._embed(self.data.voter, self.data.voter_from).to(self.device)
        target = torch.tensor([s.overall for s in self.data.voter], device=self.device)
        with torch.no_grad():
            out = self.heads(features)
        candidates = torch.stack([out["regression"], out["expert"][:, -1]], -1)
        voter = self.heads.metavoter
        opt = torch.optim.Adam(voter.parameters(), lr=self.cfg.metavoter_lr)
        for step in range(1, steps + 1):
            loss = F.mse_loss(voter(candidates, out["expert"]), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % self.cfg.log_every == 0 or step == steps:
                log.write({"stage": "metavoter", "step": step, "loss": loss.item()})

    def test_report(self, test: list[Sample]) -> dict:
        from .evaluate import build_report

        features = self._embed(test, "test").to(self.device)
        with torch.no_grad():
            pred = {k: v.cpu().numpy() for k, v in self.heads(features).items()}
        return build_report(pred, test)
