"""Plain-text tables for the human-readable outputs."""

from __future__ import annotations

from collections.abc import Sequence


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, plain: bool) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) for c, w in zip(cells, widths, strict=True)]
        return "  ".join(padded).rstrip() if plain else "│ " + " │ ".join(padded) + " │"

    if plain:
        return "\n".join([line(headers), *(line(r) for r in rows)])
    rule = "─┼─".join("─" * w for w in widths)
    top = "╒═" + "═╤═".join("═" * w for w in widths) + "═╕"
    bottom = "╘═" + "═╧═".join("═" * w for w in widths) + "═╛"
    return "\n".join([top, line(headers), "├─" + rule + "─┤", *(line(r) for r in rows), bottom])
