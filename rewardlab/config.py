"""Typed dataclass configs: documented once, validated once, loadable from YAML, shown in ``--help``.

A config is a dataclass whose fields are made with :func:`opt`; the help text lives in the field
and becomes the CLI option's help. :func:`resolve` merges, in order of precedence, command-line
flags the user gave, a YAML file (``--config``), and the dataclass defaults, then builds the
dataclass so that its ``__post_init__`` rejects contradictions in one place.

Options several commands share are dataclass parts they inherit (:class:`DataOptions`,
:class:`ScoringOptions`, :class:`ModelRuntimeOptions`, :class:`EmbeddingOptions`, ...): inheritance
keeps the fields flat, so the CLI options and the YAML keys keep their names, and each part checks
its own options once for every command. :func:`typer_command` turns a config into a Typer command:
a field made with ``opt(..., argument=True)`` is a positional argument, ``opt(..., short="-f")``
adds a short flag, a ``list[str]`` field is a repeatable option.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from rewardlab.errors import RewardlabError


def parse_assignments(items: list[str] | None, option: str) -> dict[str, str]:
    """Turn ``["a=b", ...]`` (``--map``, ``--label``) into ``{"a": "b"}``; a missing ``=`` is a user error."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise RewardlabError(f"{option} expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


#: What ``--on-error`` takes: stop at the first bad record, or drop it and count it.
ON_ERROR = ("fail", "skip")


def opt(
    default: Any = dataclasses.MISSING,
    help: str = "",  # noqa: A002
    *,
    argument: bool = False,
    short: str | None = None,
    **kwargs: Any,
) -> Any:
    """A dataclass field with its help text (``default`` may be a list: it is copied).

    ``argument=True`` makes the field a positional command-line argument (``data summarize PATH``);
    ``short`` adds a short flag (``"-f"`` beside ``--format``).
    """
    metadata = {"help": help, "argument": argument, "short": short}
    if isinstance(default, list):
        value = list(default)
        return dataclasses.field(default_factory=lambda: list(value), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


@dataclasses.dataclass(kw_only=True)
class FormatOptions:
    """The data format option (``--format/-f``) of every command that reads preference data."""

    format: str = opt(
        "auto", short="-f", help="Data format: auto, explicit (trl), implicit (hh), labelled, ranked."
    )


@dataclasses.dataclass(kw_only=True)
class OnErrorOptions:
    """What a command does with a bad record (``--on-error``): every command that reads data files."""

    on_error: str = opt(
        "fail", help="Bad records: fail (stop at the first one), or skip (dropped and counted)."
    )

    def check_on_error(self) -> None:
        """Raise ``ValueError`` for an ``--on-error`` no command accepts."""
        if self.on_error not in ON_ERROR:
            raise ValueError("--on-error must be fail or skip")


@dataclasses.dataclass(kw_only=True)
class DataOptions(OnErrorOptions, FormatOptions):
    """How a command reads preference data (train, eval, diagnose, data ...): the same options, checked once.

    The ``data`` commands leave ``--on-error`` to the loader, which checks it as it reads.
    """

    def check_data_options(self) -> None:
        """Raise ``ValueError`` for a data option no command accepts."""
        self.check_on_error()


@dataclasses.dataclass(kw_only=True)
class SplitOptions(DataOptions):
    """The data options plus the split of a saved ``DatasetDict`` (eval, diagnose, data summarize)."""

    split: str | None = opt(None, help="Split of a saved DatasetDict.")


@dataclasses.dataclass(kw_only=True)
class DeviceOptions:
    """Where a model runs: every command that loads one (eval, diagnose, score, bon, serve, bench)."""

    device: str = opt(
        "auto", help="auto (a CUDA device when torch sees one, else the CPU), cpu, cuda, cuda:1, ..."
    )


@dataclasses.dataclass(kw_only=True)
class BatchOptions:
    """Sequences per forward pass: 16 by default; ``serve`` overrides it with 32 (most per pass)."""

    batch_size: int = opt(16, help="Sequences per forward pass.")

    def check_batch_size(self) -> None:
        """Raise ``RewardlabError`` (the message as is, no prefix) for a batch size below 1."""
        if self.batch_size < 1:
            raise RewardlabError(f"--batch-size must be at least 1, got {self.batch_size}")


@dataclasses.dataclass(kw_only=True)
class DtypeOptions(DeviceOptions):
    """Where a model runs and in which precision (score, bon, serve, bench score, bench serve).

    The default is ``float32`` (rewards as trained) for every command that has this part.
    """

    dtype: str = opt(
        "float32",
        help="float32 (rewards as trained), auto (bfloat16 on a GPU or a CPU that computes bf16 "
        "natively, else float32), bf16-mixed (bf16 matrix multiplies; float32 residual, norms, "
        "attention and head), bf16-autocast (bf16-mixed with attention in bf16 too; faster than float32 "
        "on a CPU with avx512_bf16, flips near-ties), bfloat16 or float16.",
    )


@dataclasses.dataclass(kw_only=True)
class ModelRuntimeOptions(DtypeOptions, BatchOptions):
    """How a loaded reward model runs (score, bon, serve, bench score): device, dtype, batch, kernel."""

    attn_implementation: str | None = opt(
        None, help="Attention kernel: sdpa, eager, flex_attention (block masks for packed rows; GPU)."
    )


@dataclasses.dataclass(kw_only=True)
class LayoutOptions:
    """How a checkpoint lays out the sequences of a batch (score, bon, serve)."""

    layout: str = opt(
        "auto", help="auto (packed for decoders that reproduce padded rewards on a probe), packed or padded."
    )


@dataclasses.dataclass(kw_only=True)
class ScoringOptions(DeviceOptions, BatchOptions, SplitOptions):
    """Scoring held-out data with a model (eval, diagnose): the data options plus split, batch and device."""

    def check_scoring_options(self) -> None:
        """Raise ``ValueError`` for a bad data option or a batch size below 1."""
        self.check_data_options()
        if self.batch_size < 1:
            raise ValueError("--batch-size must be >= 1")


@dataclasses.dataclass(kw_only=True)
class EmbeddingOptions:
    """How an embedding reward model embeds and fits its heads (train --method embedding, bench embedding).

    Declared once here: every command that trains heads on frozen embeddings inherits these options,
    with their names, defaults and checks.
    """

    head: str = opt("linear", help="With --method embedding: linear or mlp head.")
    objective: str = opt(
        "bt", help="With --method embedding: bt (Bradley-Terry) or classification (per response)."
    )
    l2: float | None = opt(
        None,
        help="With --method embedding: L2 penalty on the head's weights (default: chosen on a validation "
        "share of the training pairs).",
    )
    embed_layers: int = opt(
        6,
        help="With --method embedding: concatenate the pooled states of this many last layers "
        "(capped at the model's depth).",
    )
    embed_prompt: str = opt(
        "last_turn",
        help="With --method embedding: embed the prompt's last user turn (last_turn) or all of it (full) "
        "with the response.",
    )
    embed_pooling: str = opt(
        "auto",
        help="With --method embedding: auto (mean for encoders, last for decoders), last (a decoder's "
        "last token) or mean (an encoder's tokens, a decoder's response tokens).",
    )
    embed_dtype: str = opt(
        "auto",
        help="With --method embedding: precision of the frozen model while embedding: auto (bfloat16 "
        "where the CPU or GPU computes it natively), float32 or bfloat16.",
    )

    def check_embedding_options(self) -> None:
        """Raise ``ValueError`` for an embedding option outside its choices or range."""
        if self.head not in ("linear", "mlp") or self.objective not in ("bt", "classification"):
            raise ValueError("--head must be linear or mlp, --objective bt or classification")
        if self.embed_prompt not in ("last_turn", "full"):
            raise ValueError("--embed-prompt must be last_turn or full")
        if self.embed_pooling not in ("auto", "last", "mean"):
            raise ValueError("--embed-pooling must be auto, last or mean")
        if self.embed_dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError("--embed-dtype must be auto, float32 or bfloat16")
        if (
            isinstance(self.embed_layers, bool)
            or not isinstance(self.embed_layers, int)
            or self.embed_layers < 1
        ):
            raise ValueError(f"--embed-layers must be at least 1, got {self.embed_layers!r}")
        if self.l2 is not None and not (isinstance(self.l2, int | float) and 0 <= self.l2 < float("inf")):
            raise ValueError(f"--l2 must be a finite number >= 0, got {self.l2!r}")


def option_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of config ``cls`` as ``--help`` lists them: its own first, then its shared parts'.

    A config made of many parts may name the order instead (a class attribute ``option_order``:
    field names; fields it leaves out follow, ranked as above).
    """
    mro = cls.__mro__
    order = {name: i for i, name in enumerate(getattr(cls, "option_order", ()))}

    def rank(f: dataclasses.Field) -> tuple[int, int]:  # 0 for cls itself, then its parts, most basic first
        i = next(i for i, k in enumerate(mro) if f.name in k.__dict__.get("__annotations__", {}))
        return order.get(f.name, len(order)), (i if i == 0 else len(mro) - i)

    return sorted(dataclasses.fields(cls), key=rank)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as a plain dict (for YAML/JSON), in the order ``--help`` lists the options."""
    values = dataclasses.asdict(cfg)
    return {f.name: values[f.name] for f in option_fields(type(cfg))}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file."""
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise RewardlabError(f"{path}: cannot read config: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RewardlabError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RewardlabError(f"{path}: a config file must be a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def save_yaml(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML next to the outputs it produced."""
    import yaml

    from rewardlab.io_utils import write_text

    return write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))


def _number_type(tp: Any) -> type | None:
    """``int`` or ``float`` for a field typed so (``X | None`` included), else ``None``."""
    args = [a for a in typing.get_args(tp) if a is not type(None)] if typing.get_origin(tp) else [tp]
    return args[0] if len(args) == 1 and args[0] in (int, float) else None


def check_number(name: str, tp: Any, value: Any, source: str = "options") -> None:
    """A value for a numeric field is a number of its type and finite (nan and inf pass every ``<`` test).

    Every command's options go through here (:func:`build`), flags and YAML alike, before any work;
    each config's own checks then add the ranges.

    Raises:
        RewardlabError: one line naming the option and the value.
    """
    kind = _number_type(tp)
    if kind is None or value is None:
        return
    option = "--" + name.replace("_", "-")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (kind is int and isinstance(value, float))
    ):
        what = "a whole number" if kind is int else "a number"
        raise RewardlabError(f"{source}: {option} must be {what}, got {value!r}")
    if not math.isfinite(value):
        raise RewardlabError(f"{source}: {option} must be a finite number, got {value!r}")


def build(cls: type, values: dict[str, Any], source: str = "config") -> Any:
    """Build ``cls`` from ``values``, naming unknown keys and missing required ones.

    Raises:
        RewardlabError: unknown key, missing required value, or a ``__post_init__`` rejection.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise RewardlabError(f"{source}: unknown option(s) {unknown}; known: {sorted(fields)}")
    missing = [
        n
        for n, f in fields.items()
        if n not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
    if missing:
        raise RewardlabError(
            f"missing required option(s): {', '.join('--' + m.replace('_', '-') for m in missing)}"
        )
    hints = typing.get_type_hints(cls)
    values = {k: Path(v) if isinstance(v, str) and _is_path(hints[k]) else v for k, v in values.items()}
    for name, value in values.items():
        check_number(name, hints[name], value, source)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise RewardlabError(f"{source}: {exc}") from exc


def resolve(cls: type, cli_values: dict[str, Any], config_file: str | Path | None = None) -> Any:
    """Defaults ← YAML file ← flags given on the command line (``None`` means not given)."""
    values = load_yaml(config_file) if config_file else {}
    values.update({k: v for k, v in cli_values.items() if v is not None})
    return build(cls, values, source=str(config_file) if config_file else "options")


def _is_path(tp: Any) -> bool:
    """True for a field typed ``Path`` or ``Path | None`` (a YAML string becomes a ``Path``)."""
    return tp is Path or Path in typing.get_args(tp)


def _cli_type(tp: Any) -> Any:
    """The Typer parameter type for a field type: ``X | None`` and ``list[X]`` become optional."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _cli_type(args[0]) if len(args) == 1 else str
    return tp


def _parameter(f: dataclasses.Field, tp: Any, callback: Callable[..., Any] | None) -> inspect.Parameter:
    """The Typer parameter of field ``f``: an option (``--name``, a short flag if any) or an argument."""
    import typer

    default = f.default if f.default is not dataclasses.MISSING else None
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        default = f.default_factory()  # type: ignore[misc]
    shown = "required" if _required(f) else None if default in (None, []) else f"default: {default}"
    text = f.metadata.get("help", "") + (f" \\[{shown}]" if shown else "")  # \\[: a bracket, not markup
    if f.metadata.get("argument"):
        info = typer.Argument(help=text, show_default=False, metavar=f.name.upper(), callback=callback)
    else:
        short = f.metadata.get("short")
        names = ("--" + f.name.replace("_", "-"), short) if short else ()
        info = typer.Option(*names, help=text, show_default=False, callback=callback)
    return inspect.Parameter(
        f.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[tp | None, info]
    )


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]


def _missing_check(cls: type) -> Callable[[Any, Any, Any], Any]:
    """A Click callback for each required field: without ``--config``, one not given is a usage error.

    Click processes the parameters given on the command line first, then the others in order, so
    when the first missing one is reached every given one is in ``ctx.params``. The error names the
    first required field missing in the dataclass's order, in Typer's words (``Missing option '--out'.``).
    """

    def check(ctx: Any, param: Any, value: Any) -> Any:
        if value is not None or ctx.resilient_parsing or ctx.params.get("config") is not None:
            return value
        for f in dataclasses.fields(cls):
            if _required(f) and ctx.params.get(f.name) is None:
                if f.metadata.get("argument"):
                    ctx.fail(f"Missing argument '{f.name}'.")
                ctx.fail(f"Missing option '--{f.name.replace('_', '-')}'.")  # (no short flag is required)
        return value

    return check


def typer_command(
    cls: type, run: Callable[[Any], Any], doc: str, *, usage_errors: bool = False
) -> Callable[..., Any]:
    """A function Typer can register whose options are the fields of ``cls``.

    Every option defaults to ``None`` (so a flag the user did not give does not override the
    YAML file); the help shows the field's help and its real default. ``--config FILE`` reads YAML.
    With ``usage_errors``, a required option or argument missing from the command line (and no
    ``--config``) is Typer's usage error (``Missing option '--out'``), else the config's message.
    The command carries its config class as ``config_class``.
    """
    import typer

    hints = typing.get_type_hints(cls)
    params = [
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Path | None, typer.Option(help="YAML file of options; flags given here override it.")
            ],
        ),
    ]
    check = _missing_check(cls) if usage_errors else None
    params += [
        _parameter(f, _cli_type(hints[f.name]), check if _required(f) else None) for f in option_fields(cls)
    ]

    def command(**kwargs: Any) -> Any:
        config_file = kwargs.pop("config", None)
        return run(resolve(cls, kwargs, config_file))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = doc
    command.__name__ = cls.__name__
    command.config_class = cls  # type: ignore[attr-defined]
    return command
