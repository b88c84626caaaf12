"""What the process runs on: the precision ``auto`` resolves to (decided once per process), memory, logging.

On a GPU, ``auto`` is bf16 where torch says the device supports it. On a CPU it is bf16 only where
the CPU computes bf16 natively: its flags name a bf16 instruction set (``avx512_bf16`` or
``amx_bf16``) *and* a short timing probe (a square matmul in both precisions, best of a few) shows
bf16 at least :data:`MIN_SPEEDUP` times faster than fp32. Elsewhere bf16 is emulated and slower
than fp32, so ``auto`` means fp32. The choice carries its reason, which training, evaluation and
the server record (``train_summary.json``, ``metrics.json``, ``/info``).

Force the CPU decision with ``REWARDLAB_CPU_BF16=1`` (or ``0``); tests monkeypatch
:func:`cpu_flags` and :func:`bf16_speedup` instead.

Run ``python -m rewardlab.runtime`` to print the decision for this machine.

:func:`quiet_transformers` silences the progress bars and info logs of transformers and datasets for
every command that loads a model; :func:`release_memory` hands freed heap memory back to the OS.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: bf16 must beat fp32 by this factor in the probe for ``auto`` to pick it on a CPU.
MIN_SPEEDUP = 1.3
#: CPU flags (Linux /proc/cpuinfo names) that mean native bf16 arithmetic.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision ``auto`` stands for on one device, and why."""

    precision: str  # "bf16" or "fp32"
    device: str  # "cpu" or "cuda"
    reason: str

    @property
    def dtype_name(self) -> str:
        """The torch dtype name (``bfloat16`` or ``float32``)."""
        return "bfloat16" if self.precision == "bf16" else "float32"

    def to_dict(self) -> dict[str, str]:
        """A JSON-ready record."""
        return asdict(self)


def cpu_flags() -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where that file is absent)."""
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return set()
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def matmul_flops(n: int = 2048, reps: int = 8, device: str = "cpu", dtype: str = "fp32") -> float:
    """FLOP/s of a plain ``n × n`` matrix multiply where training runs, now (best of ``reps``).

    On a GPU it is measured in the training precision, with the device synchronised around
    each product, so the utilisation compares like with like.
    """
    import torch

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    a, b = torch.randn(n, n, device=device, dtype=dt), torch.randn(n, n, device=device, dtype=dt)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b  # warm-up
    sync()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def bf16_speedup(size: int = 1024, repeats: int = 3) -> float:
    """fp32 time over bf16 time of a ``size`` x ``size`` matmul on the CPU (best of ``repeats``)."""
    return matmul_flops(size, repeats, dtype="bf16") / matmul_flops(size, repeats, dtype="fp32")


def _forced() -> bool | None:
    value = os.environ.get("REWARDLAB_CPU_BF16", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    return None


def cpu_precision() -> PrecisionChoice:
    """The CPU's ``auto`` precision: bf16 where it is native and measurably faster, else fp32."""
    forced = _forced()
    if forced is not None:
        return PrecisionChoice(
            "bf16" if forced else "fp32", "cpu", f"forced by REWARDLAB_CPU_BF16={forced:d}"
        )
    have = sorted(set(BF16_FLAGS) & cpu_flags())
    if not have:
        return PrecisionChoice("fp32", "cpu", "CPU flags name no native bf16 (no avx512_bf16 or amx_bf16)")
    speedup = bf16_speedup()
    if speedup < MIN_SPEEDUP:
        return PrecisionChoice(
            "fp32",
            "cpu",
            f"CPU has {', '.join(have)} but a bf16 matmul ran only {speedup:.2f}x fp32's speed "
            f"(auto needs {MIN_SPEEDUP}x)",
        )
    return PrecisionChoice(
        "bf16", "cpu", f"CPU has {', '.join(have)}; a bf16 matmul ran {speedup:.2f}x fp32's speed"
    )


@functools.cache
def _cpu_precision_cached() -> PrecisionChoice:
    return cpu_precision()


def auto_precision(device: str = "cpu") -> PrecisionChoice:
    """What ``auto`` means on ``device`` (``cpu`` or ``cuda``); the CPU probe runs once per process."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_bf16_supported():
            return PrecisionChoice("bf16", "cuda", "the GPU supports bf16")
        return PrecisionChoice("fp32", "cuda", "the GPU does not support bf16")
    if _forced() is not None:  # the environment may change between calls (tests)
        return cpu_precision()
    return _cpu_precision_cached()


@functools.cache
def _malloc_trim() -> Any:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def release_memory() -> bool:
    """Hand freed heap memory back to the OS (glibc's ``malloc_trim``); False where there is none.

    A long-lived scorer that sees new texts of every length (a reward server in an RL loop)
    frees as much as it allocates, but glibc keeps the freed pieces, so its RSS creeps up
    (measured in the lab log dev/LOG.md, "Memory under unique texts"). Trimming after each batch
    costs about a millisecond.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


#: Environment variables that fix the CPU thread count; when one is set, rewardlab keeps it.
THREAD_VARIABLES = ("REWARDLAB_CPU_THREADS", "OMP_NUM_THREADS")


def _cpu_ticks() -> tuple[int, int, int]:
    """(busy, total, CPUs) from ``/proc/stat``: clock ticks of all CPUs since boot."""
    lines = Path("/proc/stat").read_text().splitlines()
    fields = [int(x) for x in lines[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user … steal; guest time is already inside user
    return total - idle, total, sum(1 for x in lines if x.startswith("cpu") and x[3:4].isdigit())


def _own_ticks() -> int:
    """Clock ticks (user + system) this process has used, from ``/proc/self/stat``."""
    after_name = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
    return int(after_name[11]) + int(after_name[12])  # utime, stime (fields 14 and 15)


class LoadMeter:
    """How many CPUs' worth of time other processes used since the last reading (``/proc``).

    Each :meth:`busy_elsewhere` call measures the interval since the previous one (or since the
    meter was made): all CPUs' busy time from ``/proc/stat`` less this process's own from
    ``/proc/self/stat``. Reading both files costs tens of microseconds, so a training loop can read
    it at every step.
    """

    def __init__(self) -> None:
        self._last = self._sample()

    @staticmethod
    def _sample() -> tuple[int, int, int, int] | None:
        try:
            return (*_cpu_ticks(), _own_ticks())
        except (OSError, ValueError, IndexError):  # no /proc (not Linux)
            return None

    def busy_elsewhere(self) -> float | None:
        """Other processes' CPUs since the last call (``None`` where ``/proc`` cannot say)."""
        now, last = self._sample(), self._last
        self._last = now
        if now is None or last is None or now[1] <= last[1] or now[2] <= 0:
            return None
        busy, elapsed, own = now[0] - last[0], now[1] - last[1], now[3] - last[3]
        return max(0.0, (busy - own) / elapsed * now[2])


def busy_cpus_elsewhere(interval: float = 0.3) -> float | None:
    """How many CPUs' worth of time other processes use over the next ``interval`` seconds."""
    meter = LoadMeter()
    time.sleep(interval)
    return meter.busy_elsewhere()


def cpu_threads(cores: int, busy_elsewhere: float | None) -> int:
    """Threads for torch's CPU kernels: the cores that other processes leave free, at least one.

    torch starts one OpenMP thread per core, and every parallel region ends at a barrier that waits
    for its slowest thread. When another process holds a core, the thread that shares it runs only
    in the scheduler's time slices, so each of the thousands of small parallel regions of a training
    step waits milliseconds for it: a bf16 LoRA step on 2 cores ran 8× slower with other jobs running
    (docs/benchmarks.md, "Training under CPU contention"). Leaving the busy cores to their processes
    costs at most their share of the machine and keeps every barrier short. A core counts as busy
    when others used more than half of it (``busy_elsewhere`` rounded to the nearest whole CPU).
    """
    if busy_elsewhere is None:
        return max(1, cores)
    return max(1, min(cores, cores - int(busy_elsewhere + 0.5)))


@dataclass(frozen=True)
class ThreadChoice:
    """The CPU thread count chosen for this process, and why."""

    threads: int
    reason: str
    fixed: bool = False  # by the environment: not re-read between steps

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return asdict(self)


def choose_cpu_threads(cores: int, interval: float = 0.3) -> ThreadChoice:
    """:func:`cpu_threads` for ``cores`` and the load measured now, unless the environment fixes it.

    ``REWARDLAB_CPU_THREADS`` or ``OMP_NUM_THREADS`` set: their count is kept (torch has read
    ``OMP_NUM_THREADS`` already). ``OMP_WAIT_POLICY=PASSIVE`` (which rewardlab sets itself on a
    busy machine, :func:`set_wait_policy`): one thread per core, as sleeping threads do not make
    each other wait.
    """
    for name in THREAD_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            count = min(int(value), cores) if name == "OMP_NUM_THREADS" else int(value)
            return ThreadChoice(count, f"{name}={value}", fixed=True)
    if os.environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE":
        # threads that sleep at barriers lose little to a busy core, and two passive threads ran
        # twice as fast as one under contention (docs/benchmarks.md): keep one per core
        return ThreadChoice(cores, "OMP_WAIT_POLICY=PASSIVE: one thread per core", fixed=True)
    busy = busy_cpus_elsewhere(interval)
    threads = cpu_threads(cores, busy)
    if busy is None:
        return ThreadChoice(threads, "one thread per core (no /proc/stat to measure other processes)")
    return ThreadChoice(
        threads, f"{cores} cores, other processes busy on {busy:.1f} of them: {threads} thread(s)"
    )


#: Set by :func:`set_wait_policy` when rewardlab (not the user) chose ``OMP_WAIT_POLICY``.
WAIT_POLICY_MARK = "REWARDLAB_SET_OMP_WAIT_POLICY"


def passive_wait(busy_elsewhere: float | None, cores: int) -> bool:
    """Whether OpenMP threads should sleep at barriers instead of spinning: when others hold a core.

    GNU OpenMP (torch's) spins at every barrier for a while before sleeping; on a machine where
    another process holds a core, the spinning thread burns the time slices the thread it waits for
    needs. Measured on 2 cores with a competing process and other jobs: a bf16 LoRA step ran 5× as
    fast with ``OMP_WAIT_POLICY=PASSIVE`` (docs/benchmarks.md, "Training under CPU contention").
    On an idle machine spinning is left on, as its cost there was not measured.
    """
    return busy_elsewhere is not None and cpu_threads(cores, busy_elsewhere) < cores


def set_wait_policy(interval: float = 0.2) -> str | None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` before torch loads OpenMP when :func:`passive_wait` says so.

    Only while torch is not imported yet (OpenMP reads the variable once, when it loads) and the
    variable is unset; ``REWARDLAB_OMP_PASSIVE=1`` or ``0`` forces the choice. Returns why it set
    it, or ``None``.
    """
    import sys

    forced = os.environ.get("REWARDLAB_OMP_PASSIVE", "").strip()
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ or forced == "0":
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if forced != "1":
        busy = busy_cpus_elsewhere(interval)
        if not passive_wait(busy, cores):
            return None
        why = f"other processes busy on {busy:.1f} of {cores} cores"
    else:
        why = "REWARDLAB_OMP_PASSIVE=1"
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    os.environ[WAIT_POLICY_MARK] = why
    return why


class CpuThreads:
    """Keeps torch's CPU thread count at :func:`cpu_threads` of the load, re-read between steps.

    :meth:`start` sets the count from a short measurement (or the environment, which then fixes it
    for the run); :meth:`update`, called between training steps, re-reads the load over the last
    step and changes the count when the cores left free changed, so a job that starts or stops
    beside a long run is followed. ``counts`` holds every count used, in order.
    """

    def __init__(self) -> None:
        self.cores = _default_threads()
        self.fixed = False
        self.counts: list[int] = []
        self.reason = ""
        self._meter: LoadMeter | None = None

    def start(self) -> ThreadChoice:
        """Choose and set the first count (measures the load for 0.3 s)."""
        choice = choose_cpu_threads(self.cores)
        self.fixed = choice.fixed
        self.reason = choice.reason
        self._set(choice.threads)
        self._meter = LoadMeter()
        return choice

    def update(self) -> int:
        """The count for the load since the last call (set when it changed)."""
        if self.fixed or self._meter is None:
            return self.counts[-1] if self.counts else self.cores
        threads = cpu_threads(self.cores, self._meter.busy_elsewhere())
        if threads != self.counts[-1]:
            self._set(threads)
        return threads

    def _set(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.counts.append(threads)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record: cores, the first choice and why, every count used."""
        return {
            "cores": self.cores,
            "reason": self.reason,
            "fixed": self.fixed,
            "counts": self.counts,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "omp_wait_policy_set_by_rewardlab": os.environ.get(WAIT_POLICY_MARK),
        }


@functools.cache
def _default_threads() -> int:
    import torch

    return torch.get_num_threads()  # read once, before rewardlab changes it


def quiet_transformers() -> None:
    """Silence transformers' and datasets' info logs and progress bars (rewardlab prints its own)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    import datasets

    datasets.disable_progress_bars()


if __name__ == "__main__":
    choice = auto_precision("cpu")
    print(f"auto precision on this CPU: {choice.precision} ({choice.reason})")
