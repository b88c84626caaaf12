r"""A bag-of-words reward model: a second reward model that shares no network with MiniLM or SmolLM2.

For the hacking monitor's ``independent`` signal a second model should share neither the proxy's
features nor the gold's; with two pretrained networks on this machine, the third "backbone" is word
counts. TF-IDF of the response's words and word pairs (scikit-learn), and a Bradley-Terry linear
head: logistic regression on the difference of the chosen and rejected responses' features (each
pair also mirrored, so there is no intercept to learn). Train, then score through rewardlab's Python
reward-function spec::

    python -m dev.experiments.bow_reward --data PAIRS.jsonl --out bow.pkl
    BOW_REWARD_MODEL=bow.pkl python -m dev.experiments.second_models ... \
        --second bow=dev/experiments/bow_reward.py:score

``score(prompts, completions)`` reads the model named by ``BOW_REWARD_MODEL`` (loaded once).
"""

from __future__ import annotations

import argparse
import os
import pickle
from functools import cache
from pathlib import Path
from typing import Any

from rewardlab.data.loader import load_preferences
from rewardlab.data.schema import text_plain


def fit(chosen: list[str], rejected: list[str], c: float = 1.0) -> Any:
    """The vectoriser and the linear head fitted on the pairs."""
    from scipy.sparse import vstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50_000)
    vec.fit(chosen + rejected)
    diff = vec.transform(chosen) - vec.transform(rejected)
    x, y = vstack([diff, -diff]), [1] * diff.shape[0] + [0] * diff.shape[0]
    head = LogisticRegression(C=c, fit_intercept=False, max_iter=2000).fit(x, y)
    return {"vectorizer": vec, "head": head}


@cache
def _model(path: str) -> Any:
    return pickle.loads(Path(path).read_bytes())  # noqa: S301  (a file this script wrote)


def score(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
    """Rewards of the completions under the model named by ``BOW_REWARD_MODEL``."""
    model = _model(os.environ["BOW_REWARD_MODEL"])
    feats = model["vectorizer"].transform([text_plain(c) for c in completions])
    return [float(v) for v in feats @ model["head"].coef_[0]]


def main() -> None:
    """Fit on ``--data`` and write the pickle."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the head")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    every = load_preferences(args.data).all_pairs()
    pairs = [p for p in every if not p.tie]  # a tie has no chosen side to learn
    model = fit([text_plain(p.chosen) for p in pairs], [text_plain(p.rejected) for p in pairs], args.c)
    Path(args.out).write_bytes(pickle.dumps(model))
    vocab, ties = len(model["vectorizer"].vocabulary_), len(every) - len(pairs)
    print(f"fitted on {len(pairs)} pairs ({ties} ties left out), {vocab} features -> {args.out}")


if __name__ == "__main__":
    main()
