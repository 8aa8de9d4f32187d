"""Refuse answers the template cannot use, before anything is rendered (standard library only).

On a bad answer: one line ``ERROR: <answer>=<value>: <why>; <fix>`` on stderr and exit 1; cookiecutter then
removes the project folder it had just created, so nothing is left behind.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# Values arrive through tojson inside a raw string: no answer can break out of the literal or run as code.
CONTEXT_JSON = r"""{{ cookiecutter | tojson }}"""


def main(context: dict) -> int:
    sys.dont_write_bytecode = True  # no __pycache__ in the user's project or in the template
    sys.path.insert(0, str(Path(context["_repo_dir"]) / "hooks"))
    import answers

    try:
        answers.validate(context, answers.model_file_bases(context.get("_output_dir")))
    except answers.AnswerError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(json.loads(CONTEXT_JSON)))
