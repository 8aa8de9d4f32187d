"""The one exception type the CLI turns into a one-line message (anything else keeps its traceback)."""

from __future__ import annotations


class TsgenError(Exception):
    """Raised for a problem the user can fix; the message names the bad value and the fix."""


def last_line(text: str) -> str:
    """The last non-blank line of what a tool printed ('' when it printed none): the line worth quoting."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
