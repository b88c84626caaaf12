"""The ``rewardlab`` command line: the Typer app, its commands in order, and the exit status.

Run ``rewardlab --help``; in code, ``main(["data", "summarize", "data.jsonl", "--out", "out"])``
returns the exit status (0 success, 2 a user error such as bad data, with a message and no
traceback, 130 after a Ctrl-C, with the one line ``interrupted``). Every command is built from its
options dataclass (``rewardlab.config.typer_command``) and declared in the module of its group:
:mod:`rewardlab.cli.data` (data ...), :mod:`rewardlab.cli.train` (train, merge, advise, export),
:mod:`rewardlab.cli.evaluate` (eval, diagnose, rlcheck, harden), :mod:`rewardlab.cli.serve` (serve, score,
bon), :mod:`rewardlab.cli.signals` (signals fit), :mod:`rewardlab.cli.bench` (bench ...) and
:mod:`rewardlab.cli.demo` (demo). No logic lives here.
"""

from __future__ import annotations

import sys

import typer
from rich.markup import escape
from safetensors import SafetensorError

from rewardlab import interrupts
from rewardlab.cli import bench, data, demo, evaluate, serve, signals, train
from rewardlab.cli.common import err_console
from rewardlab.errors import RewardlabError
from rewardlab.io_utils import os_error_message, weights_error_message

app = typer.Typer(
    name="rewardlab",
    help="Train, evaluate, stress-test and serve reward models for RLHF.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data.data_app, name="data")
app.add_typer(bench.bench_app, name="bench")
app.add_typer(signals.signals_app, name="signals")
app.command("train")(train.train_command)
app.command("eval")(evaluate.eval_command)
app.command("diagnose")(evaluate.diagnose_command)
app.command("rlcheck")(evaluate.rlcheck_command)
app.command("harden")(evaluate.harden_command)
app.command("serve")(serve.serve_command)
app.command("advise")(train.advise_command)
app.command("score")(serve.score_command)
app.command("bon")(serve.bon_command)
app.command("merge")(train.merge_command)
app.command("export")(train.export_command)
app.command("demo")(demo.demo_command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``) and return the exit status."""
    from rewardlab.runtime import set_wait_policy

    set_wait_policy()  # before torch loads OpenMP (no effect once it has: e.g. main() called in-process)
    try:
        with interrupts.watching():
            app(args=argv, prog_name="rewardlab", standalone_mode=False)  # Typer returns Ctrl-C as 130
        if interrupts.received():
            return _interrupted()
    except KeyboardInterrupt:  # outside the command (e.g. while Typer parsed the arguments)
        return _interrupted()
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err_console.print("aborted")
        return 1
    except typer.TyperException as exc:  # usage errors: Typer's message on one line, no traceback
        message, ctx = " ".join(exc.format_message().split()), getattr(exc, "ctx", None)
        if message:  # empty when the help was shown instead (a group called without a command)
            _error(message + (f" (see {ctx.command_path} --help)" if ctx is not None else ""))
        return int(getattr(exc, "exit_code", 2))
    except RewardlabError as exc:
        _error(str(exc))
        return int(getattr(exc, "exit_code", 2))  # 2, or 1 for a regression found by eval --compare
    except OSError as exc:  # the last line of defence for files named by the user: one line, no traceback
        _error(os_error_message(exc))
        return 2
    except SafetensorError as exc:  # damaged weights no loader above named, or a full disk while saving
        _error(weights_error_message(str(exc)))
        return 2
    return 0


def _interrupted() -> int:
    """One line for a Ctrl-C, and the shell's status for it (128 + SIGINT)."""
    err_console.print("interrupted", highlight=False)
    return 130


def _error(message: str) -> None:
    """Print ``error: MESSAGE`` on stderr (the message as text, never as console markup)."""
    err_console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
