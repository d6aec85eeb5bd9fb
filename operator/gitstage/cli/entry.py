"""The `gitstage` console script and `python -m gitstage`.

`show --json` is answered before click is imported (importing click costs more than a warm
answer); every other command, and any `show --json` the fast path declines, goes to click.
"""

from __future__ import annotations

import sys


def main() -> None:
    from gitstage.cli.show_json import fast_main

    if fast_main(sys.argv[1:]) is None:
        from gitstage.cli.main import cli

        cli(prog_name="gitstage")  # as the console script, under `python -m gitstage` too
