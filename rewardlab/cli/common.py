"""What every command module of the CLI shares: the consoles and the way a command is declared.

Every command is built from its options dataclass by :func:`config_command`
(``rewardlab.config.typer_command``), so options come with their help, checks and ``--config`` YAML.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console

from rewardlab.config import typer_command

console = Console()
err_console = Console(stderr=True)

#: The line every command's help ends with.
YAML_NOTE = "Options can also come from a YAML file (--config); flags override it."


def config_command(cls: type, run: Callable[[Any], object], doc: str, *, usage_errors: bool = True) -> Any:
    """The command whose options are the fields of the dataclass ``cls``; ``run`` takes the config.

    A required option missing from the command line is Typer's usage error (``Missing option``),
    except for the commands that have always named all missing options at once (``usage_errors=False``).
    """
    return typer_command(cls, run, f"{doc}\n\n{YAML_NOTE}", usage_errors=usage_errors)
