"""rewardlab: train, evaluate, stress-test and serve reward models for RLHF.

The package follows the flow of the work: ``data`` → ``models`` → ``training`` →
``evaluation`` → ``diagnostics`` → ``serving``; ``cli`` only parses arguments and calls them.
Importing the package does no work but one: heavy libraries (torch, transformers, datasets) are
imported inside the functions that need them, and where torch is not imported yet and other
processes hold a core, ``OMP_WAIT_POLICY=PASSIVE`` is set first (0.2 s of measuring;
:func:`rewardlab.runtime.set_wait_policy`), because OpenMP reads it only when torch loads it.
"""

from rewardlab.runtime import set_wait_policy

__version__ = "0.1.0"

set_wait_policy()
