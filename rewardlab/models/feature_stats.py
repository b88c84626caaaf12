"""How far a sample's reward-model features lie from the training data's: a stored Mahalanobis distance.

InfoRM (Miao et al., arXiv 2510.13694) flags reward-hacked samples as outliers of the reward
model's latent features under the training distribution (a Mahalanobis outlier probability). The
features here are what the reward head reads: a :class:`~rewardlab.models.reward_model.RewardModel`'s
pooled last hidden state (the END token's state for decoders, the classifier's input for encoders),
an :class:`~rewardlab.models.embedding.EmbeddingRewardModel`'s embedding. :func:`fit_feature_stats`
runs once, at the end of training, on the features of training responses (chosen and rejected),
and :func:`save_feature_stats` writes them beside the weights (:data:`FEATURE_STATS_FILE`, recorded
in ``rewardlab.json`` as ``feature_stats``); ``rewardlab signals fit`` does it for older checkpoints.

The covariance is the Ledoit-Wolf shrinkage estimate Σ = (1 − α)·S + α·m·I (S the sample
covariance, m = tr S / d, α the shrinkage that minimises the expected squared error; Ledoit & Wolf
2004), kept as its top-k eigenpairs (λ_i, v_i) plus one variance σ² for all other directions:

    d²(x) = Σ_i (v_iᵀ z)² / λ_i + (‖z‖² − ‖Vᵀz‖²) / σ²,   z = x − μ.

Why this form: a checkpoint stores a few thousand training responses (``norm_samples``, 2000 by
default) while features have hundreds to thousands of dimensions (576 for SmolLM2-135M, 2304 for
six MiniLM layers), so S is singular and must be shrunk to be inverted; and k·d floats (k ≤
:data:`RANK`) instead of d² keep the file small (4 MB for a 4096-wide 8B model instead of 64 MB)
and the distance O(k·d) per sample. The distance is reported as d(x) (not squared); under a
Gaussian d² is χ² with d degrees of freedom, which :func:`outlier_probability` gives. Import only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rewardlab.errors import RewardlabError

log = logging.getLogger(__name__)

FEATURE_STATS_FILE = "feature_stats.safetensors"
#: Eigenpairs kept (at most; fewer when the data has fewer directions).
RANK = 256
#: Samples fitted on (at most; a seeded sample of more): 8192 rows of 4096 floats fit in seconds.
MAX_SAMPLES = 8192


@dataclass
class FeatureStats:
    """Mean, kept eigenpairs and the rest's variance of training features (see the module doc)."""

    mean: torch.Tensor  # (d,)
    components: torch.Tensor  # (k, d), orthonormal rows
    variances: torch.Tensor  # (k,), shrunk eigenvalues
    rest: float  # σ², the shrunk variance of every direction outside the components
    samples: int
    shrinkage: float

    @property
    def dim(self) -> int:
        """Feature size d."""
        return int(self.mean.shape[0])

    def distance(self, features: torch.Tensor) -> torch.Tensor:
        """Mahalanobis distance d(x) (float64) of each row of ``features`` (N, d)."""
        if features.shape[-1] != self.dim:
            raise RewardlabError(f"features of size {features.shape[-1]}, statistics of size {self.dim}")
        z = features.detach().to("cpu", torch.float64) - self.mean
        proj = z @ self.components.T
        inside = (proj**2 / self.variances).sum(1)
        outside = ((z**2).sum(1) - (proj**2).sum(1)).clamp_min(0.0) / self.rest
        return (inside + outside).sqrt()


def fit_feature_stats(
    features: torch.Tensor, rank: int = RANK, max_samples: int = MAX_SAMPLES, seed: int = 0
) -> FeatureStats:
    """Fit :class:`FeatureStats` to ``features`` (N, d), N ≥ 2 (see the module doc for the form).

    Raises:
        RewardlabError: fewer than 2 samples, or a feature that is not finite.
    """
    x = features.detach().to("cpu", torch.float64)
    if not torch.isfinite(x).all():
        raise RewardlabError("feature statistics: some features are not finite")
    if len(x) > max_samples:
        x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_samples]]
    n, d = x.shape
    if n < 2:
        raise RewardlabError(f"feature statistics need at least 2 samples, got {n}")
    mean = x.mean(0)
    z = x - mean
    values, vectors = _spectrum(z)
    total = float(values.sum())  # tr S
    m = max(total / d, 1e-12)
    frob = float((values**2).sum())  # ‖S‖²_F
    gap = frob - d * m * m  # ‖S − mI‖²_F
    spread = (float(((z**2).sum(1) ** 2).sum()) - n * frob) / n**2  # Ledoit-Wolf's b̄²
    alpha = 1.0 if gap <= 0 else min(max(spread, 0.0), gap) / gap
    k = min(rank, d, int((values > 1e-12 * m).sum()))
    kept = (1 - alpha) * values[:k] + alpha * m
    rest_dims = d - k
    rest = (
        ((1 - alpha) * (total - float(values[:k].sum())) + alpha * m * rest_dims) / rest_dims
        if rest_dims
        else 1.0
    )
    return FeatureStats(
        mean, vectors[:k].contiguous(), kept.clamp_min(1e-12 * m), max(rest, 1e-12 * m), n, alpha
    )


def _spectrum(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and eigenvectors (rows) of S = zᵀz / n, the non-zero part when n < d."""
    n, d = z.shape
    if n < d:  # the n × n Gram matrix has S's non-zero eigenvalues; map its vectors back
        values, u = torch.linalg.eigh(z @ z.T / n)
        values, u = values.flip(0).clamp_min(0.0), u.flip(1)
        keep = values > 0
        values, u = values[keep], u[:, keep]
        vectors = (z.T @ u / (n * values).sqrt()).T
    else:
        values, v = torch.linalg.eigh(z.T @ z / n)
        values, vectors = values.flip(0).clamp_min(0.0), v.flip(1).T
    return values, vectors


def outlier_probability(distance: torch.Tensor | float, dim: int) -> torch.Tensor:
    """P(χ²_dim ≤ d²): near 1 for a sample far outside a Gaussian training distribution."""
    d2 = torch.as_tensor(distance, dtype=torch.float64) ** 2
    return torch.special.gammainc(torch.tensor(dim / 2, dtype=torch.float64), d2 / 2)


def save_feature_stats(
    folder: str | Path, stats: FeatureStats, features: str, fitted_on: str
) -> dict[str, Any]:
    """Write :data:`FEATURE_STATS_FILE` into ``folder``; return its ``rewardlab.json`` record.

    Args:
        folder: The checkpoint folder.
        stats: The fitted statistics.
        features: What the features are (e.g. ``pooled last hidden state``), for the record.
        fitted_on: What data they came from, for the record.
    """
    from safetensors.torch import save_file

    tensors = {
        "mean": stats.mean.contiguous(),
        "components": stats.components.contiguous(),
        "variances": stats.variances.contiguous(),
        "rest": torch.tensor([stats.rest], dtype=torch.float64),
    }
    save_file({k: v.to(torch.float32) for k, v in tensors.items()}, str(Path(folder) / FEATURE_STATS_FILE))
    return {
        "file": FEATURE_STATS_FILE,
        "features": features,
        "fitted_on": fitted_on,
        "samples": stats.samples,
        "dim": stats.dim,
        "rank": int(stats.components.shape[0]),
        "shrinkage": stats.shrinkage,
        "covariance": "Ledoit-Wolf shrinkage, top-rank eigenpairs plus one variance for the rest",
    }


def load_feature_stats(folder: str | Path, info: dict[str, Any]) -> FeatureStats | None:
    """The statistics ``info['feature_stats']`` points to in ``folder``, or ``None``.

    ``None`` when ``rewardlab.json`` records none, and also, with a logged warning, when its file is
    missing or damaged: the model still scores, only without the ``feature_distance`` signal
    (``rewardlab signals fit`` writes the file again).
    """
    record = info.get("feature_stats")
    if not record:
        return None
    from safetensors.torch import load_file

    path = Path(folder) / record.get("file", FEATURE_STATS_FILE)
    try:
        t = {k: v.to(torch.float64) for k, v in load_file(str(path)).items()}
        return FeatureStats(
            t["mean"], t["components"], t["variances"], float(t["rest"][0]), int(record["samples"]),
            float(record["shrinkage"]),
        )  # fmt: skip
    except FileNotFoundError:
        why = "missing"
    except Exception as exc:  # safetensors and a bad record raise several kinds  # noqa: BLE001
        why = f"damaged ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})"
    log.warning("%s: %s; no feature_distance signal (rewardlab signals fit writes it again)", path, why)
    return None


def record_feature_stats(folder: str | Path, record: dict[str, Any]) -> None:
    """Add ``record`` to ``folder/rewardlab.json`` as ``feature_stats`` (for checkpoints saved without)."""
    from rewardlab.io_utils import write_json

    path = Path(folder) / "rewardlab.json"
    info = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    info["feature_stats"] = record
    write_json(path, info)
