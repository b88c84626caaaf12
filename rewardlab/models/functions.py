r"""Python reward functions and built-in verifiable rewards, scored like any reward model.

A ``--model`` may name, besides a checkpoint:

- ``module:function`` or ``path/to/file.py:function``: a function with TRL's ``reward_funcs``
  signature, ``f(prompts, completions, **kwargs) -> list[float]`` (completions are strings, or
  message lists for conversational data);
- ``builtin:demo-gold``: the demo world's rule-based gold reward
  (:func:`rewardlab.data.demo.gold_reward`);
- ``builtin:math``: 1 when a completion's final answer equals the reference answer, else 0,
  checked with Hugging Face's ``math-verify``. References come from TRL's dataset columns
  (``answer``, ``ground_truth``, ``solution``, ``reference``) when called as a reward function, or
  from a file, ``builtin:math?references=FILE[&field=NAME]``: each record's prompt and its
  reference (a GSM8K solution's ``#### 42`` or final ``A: 42``, a ``\boxed{}`` answer, a number).

Each is a :class:`FunctionReward` with the scorers' ``score(prompts, responses, **options)``;
options about weights (device, dtype, layout, batch size) do not apply and are ignored.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from rewardlab.data.schema import Text, text_key, text_plain
from rewardlab.errors import RewardlabError
from rewardlab.interrupts import is_user_interrupt
from rewardlab.models.scoring import PairScoring

#: Dataset columns that hold a reference answer, as TRL passes them to a reward function.
REFERENCE_FIELDS = ("answer", "ground_truth", "reference", "solution", "final_answer")
BUILTINS = ("demo-gold", "math")


class FunctionFailed(RewardlabError):
    """The user's reward function itself failed (raised, exited): a fault of the reward, not of the input."""


class FunctionReward(PairScoring):
    """A reward function as a scorer.

    Args:
        fn: ``fn(prompts, completions, **kwargs) -> list[float]`` (TRL's ``reward_funcs`` signature).
        info: What the reward is (``kind``, ``method``, ``path``), for ``/info`` and reports.
        extra: ``extra(prompts) -> kwargs`` added to each call (e.g. reference answers).
    """

    #: ``score`` takes ``columns`` (TRL's dataset columns), which ``RewardFunction`` passes on.
    takes_columns = True

    def __init__(
        self,
        fn: Callable[..., Any],
        info: dict[str, Any],
        extra: Callable[[list[Text]], dict[str, Any]] | None = None,
    ) -> None:
        self.fn, self.info, self.extra = fn, info, extra

    @property
    def name(self) -> str:
        """The spec it was loaded from."""
        return str(self.info.get("path", getattr(self.fn, "__name__", "reward function")))

    def score(self, prompts: Sequence[Text], responses: Sequence[Text], **options: Any) -> list[float]:
        """One reward per (prompt, response), from one call of the function.

        ``columns`` (TRL's dataset columns, one list each) are passed to the function as keyword
        arguments. ``normalize`` and ``length_correction=True`` are refused (a function stores
        neither); other options are ignored.

        Raises:
            RewardlabError: the function fails, or returns anything but one finite number per item.
        """
        if options.get("normalize"):
            raise RewardlabError(f"{self.name}: a reward function stores no reward normalisation")
        if options.get("length_correction"):
            raise RewardlabError(f"{self.name}: a reward function stores no length correction")
        if len(prompts) != len(responses):
            raise RewardlabError(f"{len(prompts)} prompts but {len(responses)} responses")
        prompts, responses = list(prompts), list(responses)
        if not prompts:
            return []
        kwargs = {**(options.get("columns") or {}), **(self.extra(prompts) if self.extra else {})}
        try:
            out = self.fn(prompts=prompts, completions=responses, **kwargs)
        except RewardlabError:
            raise
        except BaseException as exc:  # noqa: BLE001 - a user's function, sys.exit and KeyboardInterrupt too
            if is_user_interrupt(exc):
                raise
            raise FunctionFailed(f"{self.name} failed: {type(exc).__name__}: {exc}") from exc
        return check_rewards(out, len(prompts), self.name)


def check_rewards(out: Any, n: int, name: str) -> list[float]:
    """``out`` as ``n`` finite floats, or a one-line error naming ``name`` and the first bad item."""
    if isinstance(out, str | bytes | dict | set | frozenset) or not hasattr(out, "__len__"):
        # a string, a mapping or an iterator would be read item by item, silently
        raise RewardlabError(f"{name} returned {type(out).__name__}, not a list of rewards")
    try:
        values = list(out)
    except TypeError:
        raise RewardlabError(f"{name} returned {type(out).__name__}, not a list of rewards") from None
    if len(values) != n:
        raise RewardlabError(f"{name} returned {len(values)} rewards for {n} items")
    result = []
    for i, v in enumerate(values):
        try:
            f = float(v)
        except (TypeError, ValueError):
            f = math.nan
        if isinstance(v, bool) or not math.isfinite(f):
            raise RewardlabError(f"{name} returned {v!r} for item {i}, not a finite number")
        result.append(f)
    return result


def load_callable(spec: str) -> Callable[..., Any]:
    """The function named by ``module:function`` or ``path/to/file.py:function``."""
    where, _, attr = spec.rpartition(":")
    if not where or not attr.isidentifier():
        raise RewardlabError(f"{spec}: name a reward function as module:function or file.py:function")
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where)
        if not path.is_file():
            raise RewardlabError(f"{spec}: no such file {where}")
        name = f"rewardlab_reward_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise RewardlabError(f"{spec}: cannot import {where}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - the user's file: one line
            del sys.modules[name]
            raise RewardlabError(f"{spec}: importing {where} failed: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(where)
        except Exception as exc:  # noqa: BLE001 - ImportError, or the module's own error
            raise RewardlabError(f"{spec}: cannot import {where}: {type(exc).__name__}: {exc}") from exc
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise RewardlabError(f"{spec}: {where} has no function {attr}")
    return fn


def load_function(spec: str) -> FunctionReward:
    """A :class:`FunctionReward` for ``module:function``, ``file.py:function`` or ``builtin:NAME``."""
    if spec.startswith("builtin:"):
        return load_builtin(spec)
    return FunctionReward(load_callable(spec), {"kind": "function", "method": "python", "path": spec})


# --------------------------------------------------------------------------- built-in rewards


def demo_gold(prompts: list[Text], completions: list[Text], **_: Any) -> list[float]:
    """The demo world's gold reward of each completion (TRL ``reward_funcs`` signature)."""
    from rewardlab.data.demo import gold_reward
    from rewardlab.data.formats import request_text

    out = []
    for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        response = c[-1]["content"] if isinstance(c, list) and c else text_plain(c)
        try:
            out.append(gold_reward(request_text(p), response))
        except ValueError as exc:
            raise RewardlabError(f"builtin:demo-gold judges demo prompts only: item {i}: {exc}") from None
    return out


def reference_answer(text: str) -> str:
    """The final answer of a reference solution: after GSM8K's ``####``, a last ``A:`` line, or all."""
    if "####" in text:
        return text.rsplit("####", 1)[1].strip()
    m = re.search(r"(?:^|\n)\s*A:\s*([^\n]+)\s*$", text)
    return m.group(1).strip() if m else text.strip()


def _verify(reference: str, completion: str) -> bool:
    from math_verify import parse, verify

    # math-verify's timeouts use SIGALRM, which only the main thread may set (the server scores in threads)
    timeout = 5 if threading.current_thread() is threading.main_thread() else None
    gold = parse(reference_answer(reference), parsing_timeout=timeout)
    if not gold:
        return False
    return bool(verify(gold, parse(completion, parsing_timeout=timeout), timeout_seconds=timeout))


def math_reward(prompts: list[Text], completions: list[Text], **kwargs: Any) -> list[float]:
    """1.0 when a completion's final answer equals its reference answer (math-verify), else 0.0.

    The reference comes from the first of :data:`REFERENCE_FIELDS` among ``kwargs`` (one per item).
    """
    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its "timeout disabled" note, per call
    field = next((f for f in REFERENCE_FIELDS if kwargs.get(f) is not None), None)
    if field is None:
        raise RewardlabError(
            "builtin:math needs reference answers: a dataset column "
            f"({', '.join(REFERENCE_FIELDS)}) or builtin:math?references=FILE"
        )
    refs = list(kwargs[field])
    if len(refs) != len(completions):
        raise RewardlabError(f"builtin:math: {len(refs)} references for {len(completions)} completions")
    out = []
    for ref, c in zip(refs, completions, strict=True):
        text = c[-1]["content"] if isinstance(c, list) and c else text_plain(c)
        out.append(1.0 if _verify(str(ref), text) else 0.0)
    return out


def read_references(path: str, field: str | None) -> dict[str, str]:
    """Prompt (:func:`text_key`) → reference answer text, from a data file's records."""
    from rewardlab.data.formats import find_prompt_field, read_prompt
    from rewardlab.data.io import DataError, data_files, iter_records

    table: dict[str, str] = {}
    if not Path(path).exists():
        raise RewardlabError(f"builtin:math references {path}: no such file")
    for f in data_files(Path(path)):
        for rec in iter_records(f):
            if isinstance(rec, DataError):
                raise rec
            where = str(rec.where)
            data = rec.data
            pf = find_prompt_field(set(data))
            rf = field or next((k for k in REFERENCE_FIELDS if k in data), None)
            if pf is None or rf is None or rf not in data:
                want = field or " or ".join(REFERENCE_FIELDS)
                raise DataError(where, "missing field", f"a prompt and a reference ({want})", field=rf or "")
            table[text_key(read_prompt(data, pf, where))] = str(data[rf])
    if not table:
        raise RewardlabError(f"builtin:math references {path}: no records")
    return table


def load_builtin(spec: str) -> FunctionReward:
    """``builtin:demo-gold`` or ``builtin:math[?references=FILE[&field=NAME]]``."""
    name, _, query = spec.removeprefix("builtin:").partition("?")
    if name not in BUILTINS:
        raise RewardlabError(
            f"{spec}: no such built-in reward; use one of builtin:{', builtin:'.join(BUILTINS)}"
        )
    params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    unknown = set(params) - ({"references", "field"} if name == "math" else set())
    if unknown:
        raise RewardlabError(f"{spec}: unknown option {sorted(unknown)[0]!r}")
    info = {"kind": "verifier", "method": f"builtin:{name}", "path": spec}
    if name == "demo-gold":
        return FunctionReward(demo_gold, info)
    try:
        import math_verify  # noqa: F401
    except ImportError:
        raise RewardlabError("builtin:math needs math-verify: pip install math-verify") from None
    if "references" not in params:
        return FunctionReward(math_reward, info)
    table = read_references(params["references"], params.get("field"))
    info["references"] = params["references"]

    def extra(prompts: list[Text]) -> dict[str, Any]:
        refs = []
        for i, p in enumerate(prompts):
            ref = table.get(text_key(p))
            if ref is None:
                shown = text_plain(p)[:60]
                raise RewardlabError(f"builtin:math: no reference answer for prompt {i} ({shown!r})")
            refs.append(ref)
        return {"reference": refs}

    return FunctionReward(math_reward, info, extra)
