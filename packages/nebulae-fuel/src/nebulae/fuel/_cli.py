"""Command-line conventions: the program's name as the user typed it, library errors told in flags."""

from __future__ import annotations

import argparse
import os
import re
import sys

from ._compat import parser_actions

__all__ = ["in_flags", "prog_name"]

QUOTES = "'\""


def prog_name(module: str, script: str) -> str:
    """``script`` when started as that console script, else ``python -m module`` (how the user ran it)."""
    launched = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    # Windows launchers are script.exe, or script-script.py beside them
    if os.path.splitext(launched)[0] in (script, f"{script}-script"):
        return script
    return f"python -m {module}"


def _flags(parser: argparse.ArgumentParser, aliases: dict[str, str]) -> dict[str, tuple[str, bool]]:
    """Python argument name -> (the flag the user types, whether the flag takes no value)."""
    found: dict[str, tuple[str, bool]] = {}
    for action in parser_actions(parser):
        longs = [s for s in action.option_strings if s.startswith("--")]
        if longs and action.dest not in found:
            found[action.dest] = (longs[0], action.nargs == 0)
    for name, flag in aliases.items():
        found.setdefault(name, (flag, False))
    return found


def in_flags(message: str, parser: argparse.ArgumentParser, aliases: dict[str, str] | None = None) -> str:
    """Rewrite a library message so that it names the command-line flags instead of Python arguments.

    ``'shards' must be >= 1`` becomes ``--shards must be >= 1``, ``pass overwrite=True`` becomes
    ``pass --overwrite``, ``encode='RAW'`` becomes ``--encode RAW`` and a bare ``dst_path`` becomes ``--dst``.
    Plain words (``height``) are left alone: they may be ordinary prose.

    Args:
        message: the exception's text.
        parser: the (sub)command's parser whose options the user typed.
        aliases: extra Python names (such as a keyword alias) and the flag that sets them.
    """
    for name, (flag, bare) in _flags(parser, aliases or {}).items():
        word = re.escape(name)

        def told(match: re.Match[str], flag: str = flag, bare: bool = bare) -> str:
            return flag if bare else f"{flag} {match.group(1).strip(QUOTES)}"

        message = re.sub(rf"(?<![\w./-]){word}=(True|'[^']*'|\"[^\"]*\"|[^\s,;)]+)", told, message)
        message = re.sub(rf"'{word}'", flag, message)
        if "_" in name:  # an identifier, never an English word
            message = re.sub(rf"(?<![\w./'-]){word}(?![\w'])", flag, message)
    return message
