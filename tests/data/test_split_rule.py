"""One rule splits by prompt (data/split.py): the held-out share and the K folds deal one shuffle."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rewardlab.data.schema import text_key
from rewardlab.data.split import fold_of_prompts, held_out_prompts, shuffled_keys


@settings(max_examples=50, deadline=None)
@given(
    prompts=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=30),
    share=st.floats(min_value=0.01, max_value=1.0),
    seed=st.integers(0, 1000),
)
def test_held_out_share_and_folds_follow_one_shuffle(prompts: list[str], share: float, seed: int) -> None:
    keys = shuffled_keys((text_key(p) for p in prompts), seed)
    assert sorted(keys) == sorted({text_key(p) for p in prompts})
    held = held_out_prompts(prompts, share, seed)
    assert held == set(keys[: len(held)]) and 1 <= len(held) <= len(keys)
    folds = fold_of_prompts(keys, len(keys), seed)
    assert [folds[k] for k in keys] == list(range(len(keys)))
