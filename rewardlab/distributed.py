"""Split scoring over the processes of a ``torchrun`` / ``accelerate launch`` run, gather in input order.

A launcher starts one process per GPU (or several on a CPU) and tells each its place through the
environment: ``WORLD_SIZE`` (processes in all), ``RANK`` (this one, 0 …) and ``LOCAL_RANK`` (this
one on its node, which picks its GPU). :func:`session` opens the process group such a run needs
(NCCL where this rank scores on a GPU, gloo on the CPU) and closes it at the end; inside it
:func:`run_sharded` gives each rank one contiguous slice of the inputs (:func:`shard`; slices differ
in size by at most one item) and returns every rank the full result in input order
(:func:`gather_in_order`). Only rank 0 (:func:`is_main`) writes files and prints.

Without a launcher (``WORLD_SIZE`` unset or 1) nothing here opens a group, and :func:`run_sharded`
just calls the function on all the inputs: one process behaves as it always did.

Run: ``torchrun --nproc_per_node 2 -m rewardlab score --model M --data rows.jsonl --out scores.jsonl``
(or ``accelerate launch -m rewardlab score …``); ``python -m rewardlab.distributed`` prints what this
process sees.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Launch:
    """This process's place in a launch (``world_size`` 1: no launcher)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes the outputs and prints."""
        return self.rank == 0


def launch() -> Launch:
    """This process's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` as the launcher set them."""
    env = os.environ
    rank = int(env.get("RANK", "0"))
    return Launch(rank, int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", str(rank))))


def _group_ready() -> bool:
    if launch().world_size <= 1:  # no launcher: not even torch needs importing
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world() -> Launch:
    """This rank and the number of ranks of the open process group (one process when none is open)."""
    if not _group_ready():
        return Launch()
    import torch.distributed as dist

    return Launch(dist.get_rank(), dist.get_world_size(), launch().local_rank)


def is_main() -> bool:
    """Whether this process writes the outputs (rank 0, or the only process)."""
    return world().main


def rank_device(device: str | None = "auto") -> str | None:
    """``auto`` (or a bare ``cuda``) under a launch on a GPU machine: this rank's GPU, ``cuda:LOCAL_RANK``.

    Anything else (``cpu``, ``cuda:1``, no launch, no GPU) is ``device`` unchanged.
    """
    if device not in (None, "auto", "cuda"):
        return device
    place = launch()
    if place.world_size <= 1:
        return device
    import torch

    if not torch.cuda.is_available():
        return device
    return f"cuda:{place.local_rank % torch.cuda.device_count()}"


def start(device: str | None = "auto") -> Launch:
    """Open the default process group when launched with several processes and none is open yet.

    NCCL when this rank scores on a GPU (``device`` after :func:`rank_device`), else gloo.
    """
    place = launch()
    if place.world_size <= 1:
        return place
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        resolved = rank_device(device) or "cpu"
        cuda = resolved.startswith("cuda")
        if cuda:
            torch.cuda.set_device(torch.device(resolved))
        dist.init_process_group("nccl" if cuda else "gloo")
    return world()


#: Seconds a rank sleeps after the final barrier so that gloo's workers can free their finished work
#: (see :func:`close_process_group`).
SETTLE_SECONDS = 0.5


def close_process_group(sync: bool) -> None:
    """Barrier (when ``sync``) and destroy the default process group, if one is open.

    A rank that exits with its gloo/NCCL group still open can abort ("terminate called without an
    active exception") and fail the whole launch.

    After the barrier the process sleeps :data:`SETTLE_SECONDS` (the GIL released) before the group
    can be freed. A gloo worker thread frees each finished collective, and freeing one that holds a
    Python-owned tensor (the evaluation's all-gather) takes the GIL; the group's destructor joins
    those threads while holding the GIL (it runs when the last reference goes, e.g. with the DDP
    model). Without the pause a worker still waiting for the GIL deadlocks the exit (seen under
    load: 2 of 29 two-process CPU runs hung with the main thread in ``~ProcessGroupGloo`` and a
    worker in ``~AsyncBarrierWork``).
    """
    import time

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if sync:
            dist.barrier()
        time.sleep(SETTLE_SECONDS)
        dist.destroy_process_group()


@contextmanager
def session(device: str | None = "auto") -> Iterator[Launch]:
    """:func:`start` on entry; on exit the ranks wait for each other (after a success), the group closes."""
    ok = False
    try:
        place = start(device)
        yield place
        ok = True
    finally:
        close_process_group(sync=ok)


def shard(n: int, rank: int | None = None, world_size: int | None = None) -> range:
    """The indices of ``n`` items that ``rank`` handles: one contiguous slice, sizes within one of each other.

    Concatenating the slices of ranks 0, 1, … gives ``range(n)`` (the input order).
    """
    if rank is None or world_size is None:
        here = world()
        rank, world_size = here.rank, here.world_size
    return range(rank * n // world_size, (rank + 1) * n // world_size)


def order_results(parts: Sequence[tuple[Sequence[int], Sequence[Any]]]) -> list[Any]:
    """Every rank's ``(indices, results)`` merged into one list in input order (each index once)."""
    n = sum(len(idx) for idx, _ in parts)
    out: list[Any] = [None] * n
    seen = [False] * n
    for indices, results in parts:
        if len(indices) != len(results):
            raise ValueError(f"{len(results)} results for {len(indices)} indices")
        for i, value in zip(indices, results, strict=True):
            if not 0 <= i < n or seen[i]:
                raise ValueError(f"index {i} is out of range or given twice (of {n} items)")
            out[i], seen[i] = value, True
    return out


def gather_in_order(local_results: Sequence[Any], indices: Sequence[int]) -> list[Any]:
    """The results of every rank (this one's: ``local_results`` for ``indices``), in input order.

    Every rank gets the full list (``all_gather_object``), so each can check it the same way;
    without an open group it is ``local_results`` itself.
    """
    if not _group_ready():
        return order_results([(list(indices), list(local_results))])
    import torch.distributed as dist

    parts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (list(indices), list(local_results)))
    return order_results(parts)


def run_sharded(fn: Callable[..., Sequence[Any]], *columns: Sequence[Any]) -> list[Any]:
    """``fn(*columns)`` (one result per row of the equally long ``columns``) split over the ranks.

    Each rank calls ``fn`` on its :func:`shard` of the rows (not at all when its shard is empty);
    every rank returns all the results in input order. One process: ``fn(*columns)`` unchanged.
    """
    if not _group_ready():
        return list(fn(*columns))
    part = shard(len(columns[0]))
    local = fn(*(list(c[part.start : part.stop]) for c in columns)) if len(part) else []
    return gather_in_order(local, part)


if __name__ == "__main__":
    place = launch()
    print(
        f"rank {place.rank} of {place.world_size} (local rank {place.local_rank}); device auto -> "
        f"{rank_device('auto')}"
    )
