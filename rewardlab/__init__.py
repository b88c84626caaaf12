"""rewardlab: train, evaluate, stress-test and serve reward models for RLHF.

The package follows the flow of the work: ``data`` → ``models`` → ``training`` →
``evaluation`` → ``diagnostics`` → ``serving``; ``cli`` only parses arguments and calls them.
Importing the package does no work: heavy libraries (torch, transformers, datasets) are
imported inside the functions that need them. On a busy CPU, call
:func:`rewardlab.runtime.set_wait_policy` before importing torch (the ``rewardlab`` command does it
itself): OpenMP reads its wait policy only when torch loads it.
"""

__version__ = "0.1.0"
