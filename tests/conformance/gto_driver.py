"""Run gto's own CLI (`gto.cli.app`, what the `gto` console script calls) once per request,
in one long-lived process: gto takes about a second to import, and the round-trip test calls it
hundreds of times. Run with the interpreter gto is installed in.

Protocol: one JSON object per line on stdin, {"argv": [...]}; one per line on stdout,
{"code": int, "out": str, "err": str}.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys

# Set before rich is imported: GTO's consoles wrap long messages at the terminal width.
os.environ["COLUMNS"] = "100000"

from gto.cli import app


def run(argv: list[str]) -> dict[str, object]:
    out, err = io.StringIO(), io.StringIO()
    code: object = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            app.main(args=argv, prog_name="gto", standalone_mode=True)
        except SystemExit as exit_:
            code = exit_.code
    return {
        "code": code if isinstance(code, int) else 1,
        "out": out.getvalue(),
        "err": err.getvalue(),
    }


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.write(json.dumps(run(request["argv"])) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
