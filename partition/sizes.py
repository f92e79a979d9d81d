"""Byte sizes as users write them on the command line (``8G``, ``500M``, ``1.5GiB``)."""

from __future__ import annotations

import math
import re

from partition.errors import InputError

_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str, flag: str) -> int:
    """``text`` in bytes: a number with an optional binary suffix K, M, G, T (also KB, KiB, ...).

    Suffixes are powers of 1024 (``8G`` = 8 * 2^30 bytes), as ``free -g`` and
    ``/proc/meminfo`` count. Raises InputError naming ``flag`` for anything else or
    for a size below one byte.
    """
    m = _SIZE.match(text)
    if m is None:
        raise InputError(f"{flag}: {text!r} is not a size (e.g. 8G, 500M, 2.5G)")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise InputError(f"{flag}: {text!r} is not a size of at least 1 byte")
    return int(value)
