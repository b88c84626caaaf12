"""``--overwrite`` removes only what rewardlab wrote: never an input of the run, never unknown files.

Before, ``train --overwrite`` into a folder holding a ``rewardlab.json`` or an empty ``checkpoints/``
removed the whole folder, the training data it had just read included; ``merge --overwrite`` replaced a
folder with unrelated files in it.
"""

from __future__ import annotations

import json
import shutil

from rewardlab.cli import main
from rewardlab.training.outdir import MANIFEST
from tests.conftest import write_jsonl


def _args(tiny_models, data, out, *extra):
    return ["train", "--method", "embedding", "--model", str(tiny_models["bert"]), "--data", str(data),
            "--out", str(out), "--max-length", "64", "--ensemble", "1", *extra]  # fmt: skip


def test_training_data_inside_an_unrecorded_run_folder_is_never_removed(
    tiny_models, demo_rows, tmp_path, capsys
):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)  # looks like a started run, with no record of it
    data = write_jsonl(out / "pairs.jsonl", demo_rows[:80])
    notes = out / "notes.txt"
    notes.write_text("mine")
    assert main(_args(tiny_models, data, out, "--overwrite")) == 2
    err = capsys.readouterr().err
    assert "holds files rewardlab did not write (notes.txt, pairs.jsonl)" in err and err.count("error:") == 1
    assert data.exists() and notes.read_text() == "mine"


def test_an_input_the_earlier_run_wrote_is_refused_by_name(tiny_models, demo_rows, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "rewardlab.json").write_text("{}")
    data = write_jsonl(out / "train_log.jsonl", demo_rows[:80])  # a name rewardlab writes, used as input
    assert main(_args(tiny_models, data, out, "--overwrite")) == 2
    assert "--overwrite would remove" in capsys.readouterr().err and data.exists()


def test_a_recorded_run_gives_up_its_own_files_and_keeps_the_users(tiny_models, demo_rows, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    data = write_jsonl(out / "pairs.jsonl", demo_rows[:80])  # the user's, there before the first run
    assert main(_args(tiny_models, data, out)) == 0
    assert json.loads((out / MANIFEST).read_text()) == {"preexisting": ["pairs.jsonl"]}
    (out / "data_summary.md").write_text("stale")  # something the earlier run wrote
    assert main(_args(tiny_models, data, out, "--overwrite")) == 0
    assert data.exists() and (out / "data_summary.md").read_text() != "stale"
    assert json.loads((out / MANIFEST).read_text()) == {"preexisting": ["pairs.jsonl"]}


def test_resume_without_a_checkpoint_says_what_to_do(tiny_models, demo_rows, tmp_path, capsys):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    data = write_jsonl(tmp_path / "pairs.jsonl", demo_rows[:80])
    args = ["train", "--model", str(tiny_models["llama"]), "--data", str(data), "--out", str(out), "--resume"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "holds no complete checkpoint (the run stopped before its first save" in err
    assert "start it again with --overwrite" in err


def test_merge_overwrite_never_replaces_a_folder_with_foreign_files(tiny_models, tmp_path):
    import pytest

    from rewardlab.errors import RewardlabError
    from rewardlab.models.weight_average import check_out

    out = tmp_path / "merged"
    shutil.copytree(tiny_models["llama"], out)
    check_out(out, [], overwrite=True)  # a model folder: may be replaced
    (out / "my_data.jsonl").write_text("{}\n")
    with pytest.raises(RewardlabError, match=r"holds files rewardlab did not write \(my_data.jsonl\)"):
        check_out(out, [], overwrite=True)
