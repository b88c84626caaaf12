"""The training skeleton: run_recipe's order of steps, when OUT is opened, and the Reporter.

Run: ``pytest tests/training/test_recipe.py -q``. A fake recipe records its steps and whether OUT existed
at each one; nothing is trained.
"""

from __future__ import annotations

import random

import pytest

from rewardlab.errors import RewardlabError
from rewardlab.training import recipe as recipe_module
from rewardlab.training.config import TrainConfig
from rewardlab.training.recipe import Recipe, Reporter, TrainResult, run_recipe


class Fake(Recipe):
    """Records each step and whether OUT (and its data summary) existed when it ran."""

    def __init__(self, cfg, fail_in=None):
        super().__init__(cfg)
        self.steps = []
        self.fail_in = fail_in

    def _step(self, name):
        self.steps.append((name, self.out.exists(), (self.out / "summary.txt").exists()))
        if name == self.fail_in:
            raise RewardlabError(f"{name} failed")

    def load_data(self):
        self._step("load_data")
        self.draw = random.random()  # run_recipe seeds before the data loads

    def load_model(self):
        self._step("load_model")

    def write_data_summary(self):
        self._step("write_data_summary")
        (self.out / "summary.txt").write_text("data")

    def train(self):
        self._step("train")
        self.reporter.warn("a warning while training")

    def save(self):
        self._step("save")
        return self.result({"steps": 1})


class FakeOpenAfter(Fake):
    opens_out_before_train = False


def _cfg(tmp_path, **kw):
    return TrainConfig(model="m", data="d", out=str(tmp_path / "out"), **kw)


@pytest.fixture
def closes(monkeypatch):
    """The process-group closes run_recipe asks for (sync flag of each)."""
    calls = []
    monkeypatch.setattr(recipe_module, "close_process_group", lambda sync: calls.append(sync))
    return calls


def test_steps_run_in_order_and_out_opens_before_training(tmp_path, closes):
    fake = Fake(_cfg(tmp_path))
    result = run_recipe(fake)
    assert fake.steps == [
        ("load_data", False, False),
        ("load_model", False, False),
        ("write_data_summary", True, False),
        ("train", True, True),
        ("save", True, True),
    ]
    assert (tmp_path / "out" / "train_config.yaml").exists()
    assert isinstance(result, TrainResult) and result.summary == {"steps": 1}
    assert result.warnings == ["a warning while training"] and result.warnings is fake.reporter.warnings
    assert closes == [True]


def test_a_recipe_that_checks_its_result_first_opens_out_after_training(tmp_path, closes):
    fake = FakeOpenAfter(_cfg(tmp_path))
    run_recipe(fake)
    assert [s for s, _, _ in fake.steps] == ["load_data", "load_model", "train", "write_data_summary", "save"]
    assert ("train", False, False) in fake.steps and ("save", True, True) in fake.steps


@pytest.mark.parametrize("step", ["load_data", "load_model"])
def test_a_failure_while_loading_leaves_out_unwritten(tmp_path, closes, step):
    fake = Fake(_cfg(tmp_path), fail_in=step)
    with pytest.raises(RewardlabError, match=f"{step} failed"):
        run_recipe(fake)
    assert not (tmp_path / "out").exists()
    assert "train" not in [s for s, _, _ in fake.steps]
    assert closes == [False]  # the group is closed without waiting for the other ranks


def test_a_bad_out_is_refused_before_anything_loads(tmp_path, closes):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "rewardlab.json").write_text("{}")
    fake = Fake(_cfg(tmp_path))
    with pytest.raises(RewardlabError, match="already holds a training run"):
        run_recipe(fake)
    assert fake.steps == [] and closes == [False]


def test_the_run_is_seeded_before_the_data_loads(tmp_path, closes):
    draws = []
    for name in ("a", "b"):
        fake = Fake(TrainConfig(model="m", data="d", out=str(tmp_path / name), seed=7))
        random.seed(12345 if name == "a" else 999)  # whatever came before does not matter
        run_recipe(fake)
        draws.append(fake.draw)
    random.seed(7)
    assert draws == [random.random()] * 2


def test_only_the_main_process_opens_out(tmp_path, closes, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    fake = Fake(_cfg(tmp_path))
    run_recipe(fake)
    assert [s for s, _, _ in fake.steps] == ["load_data", "load_model", "train", "save"]
    assert not (tmp_path / "out").exists()


def test_reporter_collects_warnings_and_prints_on_the_main_process(capsys, monkeypatch):
    reporter = Reporter()
    reporter.warn("first")
    reporter.say("hello")
    assert reporter.warnings == ["first"]
    printed = capsys.readouterr().out
    assert "warning: first" in printed and "hello" in printed
    monkeypatch.setenv("RANK", "1")
    reporter.warn("second")
    reporter.say("quiet")
    assert reporter.warnings == ["first", "second"]
    assert capsys.readouterr().out == ""


def test_train_picks_the_recipe_of_the_config(tmp_path):
    from rewardlab.training.recipes.embedding import EmbeddingRecipe
    from rewardlab.training.recipes.outcome import OutcomeRecipe
    from rewardlab.training.recipes.process import ProcessRecipe
    from rewardlab.training.recipes.trl import TrlRecipe
    from rewardlab.training.run import recipe_for

    assert type(recipe_for(_cfg(tmp_path))) is OutcomeRecipe
    assert type(recipe_for(_cfg(tmp_path, engine="trl"))) is TrlRecipe
    assert type(recipe_for(_cfg(tmp_path, method="embedding"))) is EmbeddingRecipe
    assert type(recipe_for(_cfg(tmp_path, kind="prm"))) is ProcessRecipe
    emb = recipe_for(_cfg(tmp_path, method="embedding"))
    assert not emb.opens_out_before_train and OutcomeRecipe.opens_out_before_train


def test_recipes_share_functions_not_base_classes():
    """No recipe inherits from another: each is a Recipe of its own, declaring the parts it reads."""
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.recipes.embedding import EmbeddingRecipe
    from rewardlab.training.recipes.outcome import OutcomeRecipe
    from rewardlab.training.recipes.process import ProcessRecipe
    from rewardlab.training.recipes.trl import TrlRecipe

    recipes = [OutcomeRecipe, TrlRecipe, EmbeddingRecipe, ProcessRecipe]
    for cls in recipes:
        assert cls.__mro__[1] is Recipe, cls
        assert not [other for other in recipes if other is not cls and other in cls.__mro__], cls
        assert cls.parts and set(cls.parts) <= set(TrainConfig.__mro__), cls
    assert {cls.__module__.rsplit(".", 1)[-1] for cls in recipes} == {
        "outcome",
        "trl",
        "embedding",
        "process",
    }


def test_embedder_uncached_runs_the_model_again_and_leaves_the_cache_as_it_was(tmp_path):
    """Embedder.uncached (used by the evaluation's consistency checks) bypasses the cache for a block."""
    from rewardlab.models.embedding import Embedder
    from rewardlab.models.tiny import build_tiny_model, train_tokenizer

    texts = ["one two three", "the answer is four", "hello world"]
    tokenizer = train_tokenizer(texts, tmp_path / "tok", style="bert")
    model = build_tiny_model("bert", tokenizer, tmp_path / "bert")
    emb = Embedder(model, max_length=32, cache_dir=tmp_path / "cache")
    first = emb.embed(["hello"], ["world"])
    shards = sorted(emb.cache_file.rglob("*"))
    assert emb.embedded == 1 and shards
    with emb.uncached():
        again = emb.embed(["hello"], ["world"])
        assert emb.embedded == 2  # the model ran again
    assert sorted(emb.cache_file.rglob("*")) == shards  # nothing written to disk
    emb.embed(["hello"], ["world"])
    assert emb.embedded == 2  # the cache is back
    assert (first - again).abs().max().item() < 1e-5
