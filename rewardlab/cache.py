"""Where rewardlab keeps what it builds or computes once.

``$REWARDLAB_CACHE``, else ``~/.cache/rewardlab``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache folder (not created here)."""
    return Path(os.environ.get("REWARDLAB_CACHE", Path.home() / ".cache" / "rewardlab"))
