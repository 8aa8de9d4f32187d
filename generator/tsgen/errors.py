"""The one exception type the CLI turns into a one-line message (anything else keeps its traceback)."""

from __future__ import annotations


class TsgenError(Exception):
    """Raised for a problem the user can fix; the message names the bad value and the fix."""
