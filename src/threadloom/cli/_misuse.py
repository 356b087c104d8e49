"""Misuse (a missing option, a value out of range, no such command) as one line, as every other error."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer._click import exceptions as click  # typer runs its own copy of click: its errors are these
from typer.core import TyperGroup

__all__ = ["OneLineErrors"]


class OneLineErrors(TyperGroup):
    """The top command group: click's usage errors print `error: ...` on one line of stderr, exit 2.

    typer draws them as a box of four to six lines; the command's own errors are one line, and a
    script reading stderr should not have to tell the two apart.
    """

    def main(  # pyright: ignore[reportIncompatibleMethodOverride] - click's overloads, one behaviour
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            done = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.NoArgsIsHelpError as exc:
            sys.exit(exc.exit_code)  # the help is printed already
        except click.UsageError as exc:
            _misused(exc)
        except click.ClickException as exc:
            typer.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(done if isinstance(done, int) else 0)


def _misused(exc: click.UsageError) -> NoReturn:
    message = " ".join(exc.format_message().split()).rstrip(".")
    ctx = exc.ctx
    hint = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
    typer.echo(f"error: {message}{hint}", err=True)
    sys.exit(exc.exit_code)
