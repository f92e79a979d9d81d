"""Slurm's compressed list syntaxes, parsed without ``scontrol`` (absent on many compute nodes).

- host lists: ``node[001-004,007],gpu2`` -> node001 … node004, node007, gpu2; several
  bracket groups (``rack[1-2]-n[01-02]``) expand as a product, zero padding is kept.
- tasks per node: ``2(x3),1`` -> [2, 2, 2, 1].

Both raise ``ValueError`` with a short reason; callers add the variable name.
"""

from __future__ import annotations

import re

_TASKS = re.compile(r"(\d+)(?:\(x(\d+)\))?")


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise ValueError("nested '['")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError("']' without '['")
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError("'[' without ']'")
    items.append(text[start:])
    return items


def _range_values(body: str) -> list[str]:
    """``001-003,7`` -> ['001', '002', '003', '7'] (width of the lower bound kept)."""
    values: list[str] = []
    for part in body.split(","):
        lo, dash, hi = part.strip().partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ValueError(f"bad range {part!r}")
        if not dash:
            values.append(lo)
            continue
        if int(hi) < int(lo):
            raise ValueError(f"empty range {part!r}")
        values.extend(str(n).zfill(len(lo)) for n in range(int(lo), int(hi) + 1))
    return values


def _expand_item(item: str) -> list[str]:
    open_at = item.find("[")
    if open_at < 0:
        return [item]
    close_at = item.index("]", open_at)
    head, body, rest = item[:open_at], item[open_at + 1:close_at], item[close_at + 1:]
    tails = _expand_item(rest)
    return [head + v + t for v in _range_values(body) for t in tails]


def expand_hostlist(text: str) -> list[str]:
    """All host names of a Slurm host list, in order."""
    hosts = [h for item in _split_top_level(text.strip()) if item.strip()
             for h in _expand_item(item.strip())]
    if not hosts:
        raise ValueError("empty host list")
    return hosts


def expand_tasks_per_node(text: str) -> list[int]:
    """``SLURM_TASKS_PER_NODE`` (``2(x3),1``) as one task count per node."""
    counts: list[int] = []
    for part in text.strip().split(","):
        m = _TASKS.fullmatch(part.strip())
        if not m:
            raise ValueError(f"bad entry {part!r}")
        counts.extend([int(m.group(1))] * int(m.group(2) or 1))
    return counts
