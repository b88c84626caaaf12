"""How big a model is, read from its files without loading its weights.

:func:`parameter_count` sums the tensor shapes in a model folder's safetensors headers (a few
kilobytes read per file); ``skip_embeddings=True`` leaves out the token and position embeddings
(the count that compute scales with). ``rewardlab train`` uses the total to choose its default
learning rate and epochs by model size (:func:`rewardlab.training.size_defaults.size_defaults`).

Run: ``python -m rewardlab.models.size minilm`` prints the total and non-embedding counts.
"""

from __future__ import annotations

import sys
from pathlib import Path

EMBEDDING_KEYS = ("embed", "wte", "wpe")


def safetensors_parameters(model_dir: Path, skip_embeddings: bool = False) -> int:
    """Parameters in the ``*.safetensors`` files of ``model_dir`` (0 when it has none)."""
    from safetensors import safe_open

    total = 0
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(f), "pt") as fh:
            for key in fh.keys():
                if skip_embeddings and any(t in key for t in EMBEDDING_KEYS):
                    continue
                n = 1
                for d in fh.get_slice(key).get_shape():
                    n *= d
                total += n
    return total


def parameter_count(name_or_path: str | Path, skip_embeddings: bool = False) -> int | None:
    """Parameters of a preset or local model folder, or ``None`` when its size cannot be read.

    ``None``: no such folder or preset (the error comes later, when the model loads), or weights
    that are not in safetensors files.
    """
    from rewardlab.errors import RewardlabError
    from rewardlab.models.presets import resolve_model_path

    try:
        folder = resolve_model_path(name_or_path)
        count = safetensors_parameters(folder, skip_embeddings)
    except (RewardlabError, OSError, ImportError, ValueError):
        return None
    return count or None


if __name__ == "__main__":
    for name in sys.argv[1:] or ["minilm"]:
        print(name, parameter_count(name), parameter_count(name, skip_embeddings=True))
