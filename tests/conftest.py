"""Shared fixtures: small data files written by the tests, a word-level tokenizer, shared data."""

from __future__ import annotations

import json
import os
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
