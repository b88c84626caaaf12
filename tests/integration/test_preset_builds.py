"""Processes resolving a GGUF-built preset at once build it once (a fork pool of 3).

The 30 s conversion is replaced by a fake build that counts its runs (tests.models.helpers).

Run: ``pytest tests/integration/test_preset_builds.py -q`` (seconds).
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from rewardlab.models import gguf_presets
from rewardlab.models.presets import resolve_model_path
from tests.models.helpers import build_count as _builds


def _resolve_in_child(_: int) -> str:
    return str(resolve_model_path("smollm2-135m-instruct"))


def test_processes_building_at_once_build_it_once(fake_preset):
    with mp.get_context("fork").Pool(3) as pool:
        paths = pool.map(_resolve_in_child, range(3))
    assert len(set(paths)) == 1 and gguf_presets.is_intact(Path(paths[0]))
    assert _builds(fake_preset) == 1
