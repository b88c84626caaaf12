"""The package's layers and its scorer type: import-linter's contracts hold, every scorer is a Scorer."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold(capsys: pytest.CaptureFixture[str]) -> None:
    """Layers only point down and nothing imports in a circle (pyproject.toml, [tool.importlinter])."""
    from importlinter.cli import lint_imports

    code = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 kept, 0 broken" in out


def test_no_module_imports_a_private_name_of_another_module() -> None:
    """``from rewardlab.x import _name`` across modules: a shared helper lives in the wrong place."""
    import ast

    found = []
    for path in sorted((ROOT / "rewardlab").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rewardlab"):
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert found == []


def test_loaders_declare_the_scorer_type() -> None:
    from rewardlab.models.loading import load_reward
    from rewardlab.models.reward_model import RewardModel
    from rewardlab.models.scoring import Scorer

    assert typing.get_type_hints(load_reward)["return"] is Scorer
    assert typing.get_type_hints(RewardModel.from_pretrained)["return"] is Scorer


def test_every_kind_of_scorer_is_a_scorer(tiny_models: dict) -> None:
    from rewardlab.models.embedding import EmbeddingRewardModel
    from rewardlab.models.ensemble import RewardEnsemble
    from rewardlab.models.loading import load_reward
    from rewardlab.models.prm import ProcessRewardModel
    from rewardlab.models.remote import RemoteReward
    from rewardlab.models.scoring import Scorer

    function = load_reward("builtin:demo-gold")
    remote = RemoteReward("http://127.0.0.1:9/score")
    checkpoint = load_reward(str(tiny_models["llama"]), device="cpu")
    ensemble = RewardEnsemble([function, function])
    for scorer in (function, remote, checkpoint, ensemble):
        assert isinstance(scorer, Scorer), type(scorer).__name__
        assert isinstance(scorer.info, dict)
    assert ensemble.info["kind"] == "ensemble"
    assert ensemble.info["members"] == [function.info, function.info]
    assert len(checkpoint.score(["Say hi."], ["Hi."])) == 1
    # the process and embedding models set ``info`` in __init__; their class has the method
    for cls in (ProcessRewardModel, EmbeddingRewardModel):
        assert callable(getattr(cls, "score", None))


def test_cli_registers_its_commands_with_ordinary_imports() -> None:
    """Commands named by ``importlib`` strings hide their edges from the import graph."""
    import grimp

    graph = grimp.build_graph("rewardlab", cache_dir=None)
    cli_modules = {m for m in graph.modules if m == "rewardlab.cli" or m.startswith("rewardlab.cli.")}
    assert "rewardlab.cli.data" in cli_modules  # the package's modules, not one file
    imported = set().union(*(graph.find_modules_directly_imported_by(m) for m in cli_modules))
    runners = {
        "rewardlab.evaluation.evaluate",
        "rewardlab.diagnostics.diagnose",
        "rewardlab.diagnostics.rlcheck.run",
        "rewardlab.serving.server",
    }
    assert runners <= imported
    for path in sorted((ROOT / "rewardlab" / "cli").rglob("*.py")):
        assert "importlib" not in path.read_text(), path.name
