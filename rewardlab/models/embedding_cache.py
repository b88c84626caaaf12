"""The embedder's cache: a memory-bounded LRU in front of an append-only folder of shard files.

Memory: :class:`BoundedCache` keeps the most recently used embeddings up to a byte budget
(default :data:`DEFAULT_MAX_BYTES`) and forgets the least recently used ones beyond it, so a
server scoring millions of unique completions stays at a fixed size.

Disk: :class:`ShardStore` writes each batch of new embeddings as a new shard file in the cache
folder (written to a temporary name, then renamed, so a reader never sees half a shard), never
rewriting earlier ones; when more than :data:`COMPACT_AT` small shards have piled up they are merged
into one. Loading reads the newest shards first until the memory budget is full. A shard that cannot
be read (e.g. truncated by a full disk) is skipped, counted in :attr:`ShardStore.damaged` and
reported as a warning. A cache written as one ``.pt`` file by earlier versions is read as the
oldest shard.

Each entry is (embedding, cut): the float32 vector and whether its sequence was cut to
``max_length`` (``None``: unknown, from a cache written before the flags were kept).
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import torch

#: Default memory budget of the in-memory cache.
DEFAULT_MAX_BYTES = 256 * 2**20
#: Bytes counted per entry on top of its vector (the key string, the tensor object, the dict slot).
ENTRY_OVERHEAD = 400
#: Small shards (below :data:`SMALL_SHARD_BYTES`) merged once there are more than this many.
COMPACT_AT = 32
SMALL_SHARD_BYTES = 8 * 2**20

Entry = tuple[torch.Tensor, "bool | None"]


def entry_bytes(entry: Entry) -> int:
    """Bytes an entry is counted for."""
    vec = entry[0]
    return vec.element_size() * vec.numel() + ENTRY_OVERHEAD


class BoundedCache(OrderedDict):
    """A dict of key -> (embedding, cut) that forgets its least recently used entries past ``max_bytes``.

    Reading an entry (``cache[key]``) or writing one marks it as the most recently used; ``in``
    does not. :attr:`bytes` is the budget counted so far; the newest entry is always kept.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        super().__init__()
        if max_bytes < 0:
            raise ValueError("the embedding cache's byte budget must be >= 0")
        self.max_bytes = max_bytes
        self.bytes = 0
        #: Entries forgotten to stay within the budget.
        self.evicted = 0

    def __getitem__(self, key: str) -> Entry:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: str, value: Entry) -> None:
        if key in self:
            self.bytes -= entry_bytes(super().__getitem__(key))
        super().__setitem__(key, value)
        self.move_to_end(key)
        self.bytes += entry_bytes(value)
        while self.bytes > self.max_bytes and len(self) > 1:
            _, old = self.popitem(last=False)
            self.bytes -= entry_bytes(old)
            self.evicted += 1

    def add_older(self, key: str, value: Entry) -> bool:
        """Add an entry as the least recently used (loading from disk, newest first); False when full."""
        if key in self:
            return True
        size = entry_bytes(value)
        if self.bytes + size > self.max_bytes:
            return False
        super().__setitem__(key, value)
        self.move_to_end(key, last=False)
        self.bytes += size
        return True


def _read_shard(path: Path) -> list[tuple[str, Entry]]:
    saved = torch.load(path, weights_only=True)
    keys, vectors = saved["keys"], saved["embeddings"]
    cut = saved.get("cut")
    flags: list[bool | None] = (
        [None] * len(keys) if cut is None else [None if c < 0 else bool(c) for c in cut.tolist()]
    )
    # each vector gets its own storage: a view would keep the whole shard in memory
    return [(k, (v.clone(), f)) for k, v, f in zip(keys, vectors, flags, strict=True)]


def _write_shard(path: Path, entries: list[tuple[str, Entry]]) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    cut = torch.tensor([-1 if f is None else int(f) for _, (_, f) in entries], dtype=torch.int8)
    vectors = torch.stack([v for _, (v, _) in entries])
    torch.save({"keys": [k for k, _ in entries], "embeddings": vectors, "cut": cut}, tmp)
    tmp.replace(path)


class ShardStore:
    """The append-only on-disk cache of one model and settings: ``folder/*.pt`` plus an older ``legacy`` file.

    Args:
        folder: The folder of shard files (created on the first write).
        legacy: A single-file cache written by earlier versions, read as the oldest shard.
    """

    def __init__(self, folder: Path, legacy: Path | None = None) -> None:
        self.folder, self.legacy = folder, legacy
        #: Shard files that could not be read (skipped and warned about).
        self.damaged: list[Path] = []

    def shards(self) -> list[Path]:
        """Shard files, oldest first (the legacy file first of all)."""
        found = sorted(self.folder.glob("*.pt")) if self.folder.is_dir() else []
        if self.legacy is not None and self.legacy.is_file():
            found.insert(0, self.legacy)
        return found

    def _read(self, path: Path) -> list[tuple[str, Entry]]:
        try:
            return _read_shard(path)
        except FileNotFoundError:  # compacted away by another process meanwhile
            return []
        except Exception as exc:  # a damaged file: torch raises several kinds  # noqa: BLE001
            self.damaged.append(path)
            warnings.warn(
                f"embedding cache: {path} cannot be read ({type(exc).__name__}): skipped; delete it",
                stacklevel=3,
            )
            return []

    def load_into(self, cache: BoundedCache) -> int:
        """Fill ``cache`` from the newest shards back until its budget is full; return the entries read."""
        n = 0
        for path in reversed(self.shards()):
            for key, entry in reversed(self._read(path)):
                if not cache.add_older(key, entry):
                    return n
                n += 1
        return n

    def append(self, entries: Iterable[tuple[str, Entry]]) -> Path | None:
        """Write ``entries`` as a new shard (nothing when empty); compact small shards now and then."""
        entries = list(entries)
        if not entries:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.pt"
        _write_shard(path, entries)
        small = [p for p in self.shards() if p != self.legacy and _size(p) < SMALL_SHARD_BYTES]
        if len(small) > COMPACT_AT:
            self.compact(small)
        return path

    def compact(self, shards: list[Path]) -> Path | None:
        """Merge ``shards`` (oldest first) into one new shard, then delete them."""
        merged: dict[str, Entry] = {}
        for path in shards:
            merged.update(self._read(path))
        if not merged:
            return None
        last = shards[-1].name.split("-", 1)[0]  # sorts where the newest merged shard was
        path = self.folder / f"{last}-{os.getpid()}-{uuid.uuid4().hex[:8]}.pt"
        _write_shard(path, list(merged.items()))
        for p in shards:
            if p not in self.damaged:
                p.unlink(missing_ok=True)
        return path


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
