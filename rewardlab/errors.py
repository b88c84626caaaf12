"""Errors that rewardlab reports to users as a message, never as a traceback."""

from __future__ import annotations


class RewardlabError(Exception):
    """Base class for user-facing errors: the CLI prints the message and exits with status 2."""
