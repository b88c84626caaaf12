"""diagnose as one function per check: each runs on its own, from the held-out scores alone."""

from __future__ import annotations

from rewardlab.data.schema import PreferencePair
from rewardlab.diagnostics import checks
from rewardlab.diagnostics.diagnose import check_disagreement
from rewardlab.diagnostics.held_out import MemberScorer, score_held_out


class Members:
    """Two members scoring by rule; records every text it is asked to score."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def score_members(self, prompts, responses, **kw):
        self.seen += list(responses)
        return [[float(len(r)) for r in responses], [float(-len(r)) for r in responses]]


def pairs() -> list[PreferencePair]:
    return [
        PreferencePair(prompt="p", chosen="long answer", rejected="no"),
        PreferencePair(prompt="p", chosen="long answer", rejected="other"),  # shares its chosen
        PreferencePair(prompt="q", chosen="yes", rejected="maybe so"),
    ]


def test_held_out_scores_each_distinct_text_once_and_indexes_the_pairs():
    ensemble = Members()
    held = score_held_out(pairs(), MemberScorer(ensemble, batch_size=8))
    assert ensemble.seen == ["long answer", "no", "other", "yes", "maybe so"]
    assert held.responses == ensemble.seen
    assert held.pair_idx == [(0, 1), (0, 2), (3, 4)]
    assert held.members[0] == [11.0, 2.0, 5.0, 3.0, 8.0]
    assert held.rewards == [0.0] * 5  # the two members cancel
    assert held.groups[0] == held.groups[1] != held.groups[3]


def test_disagreement_check_reads_chosen_and_rejected_columns_and_needs_two_members():
    held = score_held_out(pairs(), MemberScorer(Members(), batch_size=8))
    expected = checks.disagreement(
        [[11.0, 11.0, 3.0], [-11.0, -11.0, -3.0]], [[2.0, 5.0, 8.0], [-2.0, -5.0, -8.0]]
    )
    assert check_disagreement(held) == expected
    held.members = held.members[:1]
    assert check_disagreement(held) is None
