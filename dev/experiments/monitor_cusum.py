"""Would a sequential (CUSUM) rule meet the monitor's firing target on the recorded slow rlcheck runs?

The monitor's rule judges each step's effect size on its own. A one-sided CUSUM (Page, Biometrika
1954) accumulates them instead: ``S_t = max(0, S_{t-1} + m_t - k)``, a warning once ``S_t > h``,
where ``m_t`` is how far the step's effect size moved the suspect way
(:func:`rewardlab.serving.monitor.suspect`). This script replays every signal's per-step effect sizes
of the training batches, as recorded in ``docs/bench/monitor-slow.json`` (24-step runs, arms ``none``
and ``oracle``, two worlds, two seeds), over a grid of ``k`` and ``h``, and prints per signal:

- the most hacked arms warned at or before the gold's peak by a setting that keeps every oracle arm
  quiet;
- the fewest oracle arms warned by a setting that warns in time in every hacked arm.

The grid is searched on the same runs it is scored on, so both figures are optimistic.

Run: ``python -m dev.experiments.monitor_cusum [docs/bench/monitor-slow.json]``.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

from rewardlab.serving.monitor import suspect

KS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)
HS = (0.5, 1, 1.5, 2, 3, 4, 6, 8, 12)


def cusum_step(moved: dict[str, dict[str, float]], name: str, k: float, h: float) -> int | None:
    """The first step at which the CUSUM of ``name``'s effect sizes passes ``h`` (None: never)."""
    total = 0.0
    for step in sorted(moved, key=int):
        d = moved[step].get(name)
        if d is None:
            continue
        total = max(0.0, total + suspect(name, d) - k)
        if total > h:
            return int(step)
    return None


def in_time(world: dict[str, Any], name: str, k: float, h: float) -> bool | None:
    """Whether the hacked arm warned at or before the gold's peak (None: the arm was not hacked)."""
    firing = world["firing"]["none"]
    if not firing.get("hacked"):
        return None
    step = cusum_step(world["moved_train"]["none"], name, k, h)
    return step is not None and step <= firing["peak_step"]


def best_settings(worlds: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """For ``name``: the two figures of the module doc, with the (k, h) that gave them."""
    quiet_best, all_best = None, None
    for k, h in itertools.product(KS, HS):
        false = sum(cusum_step(w["moved_train"]["oracle"], name, k, h) is not None for w in worlds)
        timely = [t for w in worlds if (t := in_time(w, name, k, h)) is not None]
        if false == 0 and (quiet_best is None or sum(timely) > quiet_best[0]):
            quiet_best = (sum(timely), k, h)
        if timely and all(timely) and (all_best is None or false < all_best[0]):
            all_best = (false, k, h)
    hacked = sum(1 for w in worlds if w["firing"]["none"].get("hacked"))
    return {
        "hacked_arms": hacked,
        "oracle_arms": len(worlds),
        "in_time_with_every_oracle_quiet": quiet_best,
        "oracle_warnings_when_in_time_in_every_hacked_arm": all_best,
    }


def main() -> None:
    """Print :func:`best_settings` for every signal recorded in the file (see the module doc)."""
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/bench/monitor-slow.json")
    worlds = [w for w in json.loads(path.read_text())["worlds"].values() if "moved_train" in w]
    seen = {n for w in worlds for step in w["moved_train"]["none"].values() for n in step}
    names = sorted(seen - {"proxy"})
    print(json.dumps({n: best_settings(worlds, n) for n in names}, indent=1))


if __name__ == "__main__":
    main()
