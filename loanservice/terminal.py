"""Text for the terminal: what people typed (names, notes) is printed by CLI commands without the
control characters that a terminal would obey (escape sequences that move the cursor, rewrite the
title, hide text, or a carriage return that overwrites a line)."""
import re

import click

# C0 controls but the line feed and tab, DEL, and the C1 controls (0x9b is a one-byte CSI).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """``text`` with its control characters written out as escapes (``\\x1b``), newlines and tabs kept."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", str(text))


def echo(message: object = "", *, err: bool = False) -> None:
    """``click.echo`` for CLI output that may carry text people typed: control characters escaped."""
    click.echo(printable(message), err=err)


class CommandError(click.ClickException):
    """A command's refusal (``Error: ...`` and exit status 1), its message made printable."""

    def __init__(self, message: object):
        super().__init__(printable(message))
