"""Shared fixtures: small data files written by the tests, a word-level tokenizer, shared data, tiny models.

Fixtures that a unit folder shares with tests/integration/ live here too (the nearest conftest both
see): ``small_demo``, ``data_files``, ``fake_preset``, ``local`` and ``stub``, built from the folders'
helpers modules. Run the suite with ``pytest`` (``-m "not integration"`` for the in-process tests).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("REWARDLAB_SHARED_DATA", REPO.parent / "shared" / "data"))


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def shared_data() -> Path:
    """The real public data in ../shared/data; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set REWARDLAB_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def word_tokenizer(tmp_path_factory):
    """A whitespace word-level tokenizer saved to disk and loaded back with AutoTokenizer.

    Every whitespace-separated word is one token (unknown words map to [UNK]), and
    ``[CLS] … [SEP]`` is added around a sequence, so token counts can be worked out by hand.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    words = "hello world the answer is a b c x y z one two three four five six".split()
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *words])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    folder = tmp_path_factory.mktemp("word_tokenizer")
    fast.save_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(str(folder))
    tok.saved_folder = folder
    return tok


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Presets built by tests go to a temporary cache, not the user's home."""
    os.environ["REWARDLAB_CACHE"] = str(tmp_path_factory.mktemp("rewardlab-cache"))


@pytest.fixture(scope="session", autouse=True)
def _fp32_auto_precision():
    """``auto`` precision means fp32 in tests on every CPU, so results do not depend on its flags.

    Tests of the bf16 branch set ``REWARDLAB_CPU_BF16=1`` themselves (monkeypatch).
    """
    os.environ.setdefault("REWARDLAB_CPU_BF16", "0")


@pytest.fixture(scope="session")
def demo_rows():
    from rewardlab.data.demo import generate_demo

    return generate_demo(600, seed=0)


@pytest.fixture(scope="session")
def demo_file(tmp_path_factory, demo_rows):
    return write_jsonl(tmp_path_factory.mktemp("demo") / "demo.jsonl", demo_rows)


class TinyModels(Mapping):
    """Random-initialised tiny models by architecture, each built (with its tokenizer) on first use.

    llama: ``<s>`` added, no pad token, left padding; gpt2: pad == EOS; qwen2: ChatML template;
    bert: an encoder with token types. A test that needs one architecture builds that one only.
    """

    ARCHS = ("llama", "gpt2", "qwen2", "bert")

    def __init__(self, root: Path, texts: list[str]) -> None:
        self.root, self.texts, self.built = root, texts, {}

    def __getitem__(self, arch: str) -> Path:
        if arch not in self.ARCHS:
            raise KeyError(arch)
        if arch not in self.built:
            from rewardlab.models.tiny import build_tiny_model, train_tokenizer

            tok = train_tokenizer(self.texts, self.root / f"tok-{arch}", style=arch)
            self.built[arch] = build_tiny_model(arch, tok, self.root / arch)
        return self.built[arch]

    def __iter__(self):
        return iter(self.ARCHS)

    def __len__(self) -> int:
        return len(self.ARCHS)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, demo_rows):
    """Tiny models of four architectures (:class:`TinyModels`), each built by the first test that uses it."""
    texts = [r[k] for r in demo_rows for k in ("prompt", "chosen", "rejected")]
    return TinyModels(tmp_path_factory.mktemp("tiny"), texts)


@pytest.fixture(scope="session")
def embedding_checkpoint(tiny_models, demo_file, tmp_path_factory):
    """An embedding reward model (3 bootstrap heads, tiny BERT) trained on the demo file, in ``emb/``."""
    from rewardlab.training.config import TrainConfig
    from rewardlab.training.run import train

    out = tmp_path_factory.mktemp("checkpoints") / "emb"
    train(
        TrainConfig(
            data=str(demo_file),
            out=str(out),
            method="embedding",
            model=str(tiny_models["bert"]),
            max_length=64,
            ensemble=3,
        )
    )
    return out


@pytest.fixture
def small_demo(tmp_path, demo_rows):
    """The first 64 demo pairs in a JSONL file (training runs of a few steps)."""
    return write_jsonl(tmp_path / "small.jsonl", demo_rows[:64])


@pytest.fixture(scope="module")
def data_files(demo_rows, tmp_path_factory):
    """Evaluation data: held-out demo pairs, the same swapped, annotator votes (tests.evaluation.helpers)."""
    from tests.evaluation.helpers import write_eval_data

    return write_eval_data(demo_rows, tmp_path_factory.mktemp("evaldata"))


@pytest.fixture
def fake_preset(tmp_path, monkeypatch):
    """smollm2 resolved against a fake package and a counted fake build (tests.models.helpers)."""
    from tests.models.helpers import install_fake_preset

    return install_fake_preset(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def local(tiny_models):
    """The tiny LLaMA as a float32 reward model on the CPU, in this process."""
    from rewardlab.models.reward_model import RewardModel

    return RewardModel.from_pretrained(tiny_models["llama"], dtype="float32", device="cpu")


@pytest.fixture
def stub():
    """A small /score server in a thread (tests.serving.helpers.stub_server): its URL and handler class."""
    from tests.serving.helpers import stub_server

    with stub_server() as served:
        yield served


def pytest_collection_modifyitems(config, items):
    """Tests under ``tests/integration/`` (several processes, subprocesses, a browser, real data) are
    marked ``integration``: ``pytest -m "not integration"`` runs the fast in-process tests alone."""
    for item in items:
        if "integration" in Path(str(item.path)).relative_to(REPO).parts[:2]:
            item.add_marker(pytest.mark.integration)
