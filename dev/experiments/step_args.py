"""The arguments the training-step experiments share (``lora_frozen_ab``, ``profile_train_step``).

Not run on its own: :func:`step_parser` sets the OpenMP wait policy as the ``rewardlab`` command
does (before torch loads: PASSIVE on a busy machine) and returns a parser with ``--model``,
``--data``, ``--pairs``, ``--batch-size`` and ``--max-length``, the pairs ``rewardlab bench train``
would choose.
"""

from __future__ import annotations

import argparse


def step_parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by the first paragraph of ``doc``, with the shared training-step arguments."""
    from rewardlab.runtime import set_wait_policy

    set_wait_policy()
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=256)
    return ap
