"""Generate the CLI reference (docs/cli.md) from the click commands themselves.

``python -m radloop.cli_reference > docs/cli.md`` rewrites it; a test fails when the file and
the code disagree, so the reference cannot drift from the command line.
"""

from __future__ import annotations

import click

__all__ = ["render_cli_reference"]


def _walk(command: click.Command, context: click.Context) -> list[click.Context]:
    """The context of a command and of each subcommand, parents first.

    Subcommand contexts are children of their group's, as when the command runs, so settings
    such as ``help_option_names`` are inherited exactly as users see them.
    """
    # click caches a command's help option on first use; a command invoked on its own (as tests
    # do) caches one without the group's "-h". Drop the cache so the reference shows what a
    # user of `radloop ...` sees.
    if hasattr(command, "_help_option"):
        command._help_option = None
    found = [context]
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            sub = command.commands[name]
            found.extend(_walk(sub, click.Context(sub, parent=context, info_name=name)))
    return found


def render_cli_reference(root: click.Command | None = None) -> str:
    """Markdown with the help text of every command and subcommand."""
    if root is None:
        from radloop.cli import main

        root = main
    settings = {"terminal_width": 100, "max_content_width": 100, **root.context_settings}
    top = click.Context(root, info_name="radloop", **settings)
    lines = [
        "# Command-line reference",
        "",
        "Generated from the code by `python -m radloop.cli_reference > docs/cli.md`; "
        "a test checks that this file is current.",
        "",
    ]
    for context in _walk(root, top):
        path = context.command_path
        lines += [f"## `{path}`", "", "```text", context.command.get_help(context), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    click.echo(render_cli_reference(), nl=False)
