"""Command-line conventions shared by every SASE-NAS command (docs/formats.md, "Command-line contracts").

Bad input exits 2 with one line ``error: ...`` on stderr and no traceback.
"""
from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable, NoReturn

USAGE_ERROR = 2


class UsageError(ValueError):
    """Bad input from the user: printed as one line, exit code 2."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad command line gives one ``error:`` line (with the program name) and exit 2."""

    def error(self, message: str) -> NoReturn:
        fail(f"{self.prog}: {message} (see --help)")


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (``-k``, ``--rank``), refused in one line otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def first_line(err: BaseException) -> str:
    """An exception as one line for a message: the first line of its text, else its type's name."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(USAGE_ERROR)


def user_errors_exit_2(main: Callable[..., int | None]) -> Callable[..., int]:
    """Run ``main``; a ValueError (every input error of the project subclasses it) or a missing
    file becomes one ``error:`` line and exit 2 instead of a traceback."""

    @functools.wraps(main)
    def run(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs) or 0
        except (ValueError, FileNotFoundError) as err:
            fail(str(err) or type(err).__name__)

    return run
