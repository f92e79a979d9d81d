"""Counts in user-facing lines: "1 part", "2 parts", never "1 parts" or "2 part(s)"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, singular for exactly one: ``counted(1, "part")`` is ``"1 part"``,
    ``counted(3, "part")`` ``"3 parts"``, ``counted(2, "rank")`` ``"2 ranks"``. ``plural``
    (default ``noun + "s"``) for irregular nouns. ``n`` is printed with thousands separators."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
