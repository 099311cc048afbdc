"""The ``accelsim`` command.

Commands live one module each in ``accelsim/cli/commands/`` and are discovered at start-up, so
a new capability adds a file instead of editing a shared list. A module attaches its commands
with ``@app.command()`` or to a sub-group from ``group(name, help)``.

Every user mistake surfaces as an AccelsimError; ``main`` turns it into one line on stderr and
exit status 2. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.console import Console

from accelsim.errors import AccelsimError

try:  # typer >= 0.29 carries its own copy of click; older versions use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exceptions

HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(
    name="accelsim",
    help="Accelerator simulation: hardware models, mappers and LLM-scale workloads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=HELP_OPTIONS,
)


def _show_version(value: bool) -> None:
    if value:
        from accelsim import __version__

        out.print(f"accelsim {__version__}", markup=False, highlight=False)
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Accelerator simulation: hardware models, mappers and LLM-scale workloads."""
_groups: dict[str, typer.Typer] = {}
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def group(name: str, help: str) -> typer.Typer:
    """The sub-command group ``accelsim <name>``, created on first use."""
    if name not in _groups:
        _groups[name] = typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None,
                                    context_settings=HELP_OPTIONS)
    return _groups[name]


def _load_commands() -> None:
    from accelsim.cli import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        importlib.import_module(f"{commands.__name__}.{info.name}")
    for name, sub in _groups.items():
        if not any(getattr(g, "name", None) == name for g in app.registered_groups):
            app.add_typer(sub, name=name)


def main(argv: list[str] | None = None) -> None:
    try:
        _load_commands()  # inside the try: a Ctrl-C while the commands import is one line too
        command = typer.main.get_command(app)
        # make_context + invoke rather than command.main: typer's main turns a Ctrl-C into a bare
        # exit code 130 that cannot be told from a command's own deliberate exit 130
        args = list(sys.argv[1:] if argv is None else argv)
        with command.make_context("accelsim", args) as ctx:
            result = command.invoke(ctx)
    except AccelsimError as error:
        err.print(f"accelsim: error: {error}", markup=False, highlight=False)
        sys.exit(2)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except getattr(click_exceptions, "NoArgsIsHelpError", ()) as shown:
        shown.show()  # the group's help text, as for ``accelsim`` alone
        sys.exit(0)
    except click_exceptions.ClickException as error:
        # One line, like every other input error: the option and what was wrong with it.
        err.print(f"accelsim: error: {error.format_message()} (see --help)", markup=False, highlight=False)
        sys.exit(2 if isinstance(error, click_exceptions.UsageError) else error.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("accelsim: interrupted\n")  # plain write: rich may be what was interrupted
        sys.stderr.flush()
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
