"""rewardlab: train, evaluate, stress-test and serve reward models for RLHF.

The package follows the flow of the work: ``data`` → ``models`` → ``training`` →
``evaluation`` → ``diagnostics`` → ``serving``; ``cli`` only parses arguments and calls them.
Importing the package does no work: heavy libraries (torch, transformers, datasets) are
imported inside the functions that need them.
"""

__version__ = "0.1.0"
