"""``rewardlab advise`` picks a method for the machine as well as the data, with the measured alternatives."""

from __future__ import annotations

import json

import pytest

from rewardlab.cli import main
from rewardlab.training.advise import FULL_FINETUNE_GB, MEASURED, advise_method
from tests.conftest import write_jsonl

CPU_BF16 = {"device": "cpu", "gpu_memory_gb": None, "bf16": True, "reason": "test"}


def test_a_cpu_gets_the_embedding_method_with_every_measured_alternative():
    m = advise_method(CPU_BF16, 2000)
    assert m["method"] == "embedding" and m["flags"] == MEASURED["embedding-minilm"]["train"]
    assert {a["method"] for a in m["alternatives"]} == set(MEASURED)
    assert all("accuracy" in a and "cost" in a for a in m["alternatives"])
    slow = advise_method({**CPU_BF16, "bf16": False}, 2000)
    assert any("fp32" in w for w in slow["why"]) and not any("fp32" in w for w in m["why"])


@pytest.mark.parametrize(
    ("memory", "method"), [(FULL_FINETUNE_GB + 4, "full"), (FULL_FINETUNE_GB - 4, "lora")]
)
def test_a_gpu_gets_fine_tuning_full_or_lora_by_its_memory(memory, method):
    m = advise_method({"device": "gpu", "gpu_memory_gb": memory, "bf16": True, "reason": "t"}, 2000)
    assert m["method"] == method and ("--lora" in m["flags"]) == (method == "lora")
    assert any("no GPU run is measured" in w for w in m["why"])


def test_the_command_writes_the_hardware_and_method(demo_rows, tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", demo_rows[:50])
    assert main(["advise", "--data", str(data), "--hardware", "cpu", "--out", str(tmp_path / "a")]) == 0
    advice = json.loads((tmp_path / "a" / "advice.json").read_text())
    assert advice["hardware"]["device"] == "cpu" and advice["method"]["method"] == "embedding"
    assert advice["command"].startswith("rewardlab train --method embedding --model minilm")
    assert "measured alternatives" in capsys.readouterr().out
    assert main(["advise", "--data", str(data), "--hardware", "tpu"]) == 2
