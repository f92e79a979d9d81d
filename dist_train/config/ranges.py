"""The range of every config value, taken from the place the value is used (issue 16).

A value that passes its type check can still break where it lands: ``dist.timeout_s=.inf``
became an ``OverflowError`` inside ``datetime.timedelta``, ``1e13`` a gloo assertion, a
fanout of 10^5 a 40 GB allocation in the sampler. Each bound below names that place, and
:func:`at_most` / :func:`finite_in` turn a violation into one :class:`ConfigError` line
naming the key and the range, at load time, before any rank starts.
"""

from __future__ import annotations

import math

from dist_train.config.load import ConfigError

INT32_MAX = 2**31 - 1
"""``torch.set_num_threads`` takes a C ``int`` (2**31 raises "Overflow when unpacking long")."""

SEED_MAX = 2**32 - 1
"""Batch order and sampling seeds use the low 32 bits of ``train.seed``
(:func:`dist_train.sampling.batches.mix_seed`): two seeds that differ above them would
share every batch, so a larger seed is refused rather than silently folded."""

MAX_EPOCHS = 999_999
"""Checkpoint names hold the epoch in 6 digits (``ckpt-e000123-...``,
:mod:`dist_train.loop.checkpoint`); a 7-digit epoch would be written but never found."""

MAX_STEPS_PER_EPOCH = 999_999_999
"""... and the step within the epoch in 9 digits."""

MAX_FANOUT = 4096
"""Sampling k of d neighbours without replacement keeps a scratch table of about
k*k/2 int64 per thread (``sampler.sample_hops``): 64 MiB at 4096, 40 GB at 10^5. Take
every neighbour with -1 instead."""

MAX_HIDDEN = 65_536
"""A hidden x hidden float32 weight is 16 GiB at 65,536, and Adam keeps two more of it."""

FLOAT32_MAX = 3.4e38
"""Weight decay multiplies float32 weights: a larger factor is inf after one step."""

MAX_TIMEOUT_S = 9.2e12
"""gloo keeps a timeout as int64 microseconds: 9.3e12 s fails its ``timeout.count() >= 0``
check (measured, torch 2.13); ``timedelta`` itself stops at 8.64e13 s (999,999,999 days)."""

MIN_TIMEOUT_S = 1e-3
"""gloo counts a timeout in whole milliseconds: below 1 ms it is 0 ms, which its
``timeout.count() > 0`` check refuses mid-run, reported as a rank that did not answer
(measured with ``dist.timeout_s=1e-9`` and ``1e-4``, torch 2.13; review of issue 16)."""

INT64_MAX = 2**63 - 1
"""Batch sizes and queue depths become numpy int64 sizes."""


def at_most(value: int | float, hi: int | float, key: str, why: str) -> None:
    """Raise ConfigError ``key: value is too large: at most hi (why)`` when ``value > hi``."""
    if value > hi:
        raise ConfigError(key, f"{value} is too large: at most {hi:g} ({why})"
                          if isinstance(hi, float) else f"{value} is too large: at most {hi} ({why})")


def finite(value: float, lo: float, hi: float, key: str, why: str, lo_open: bool = True) -> None:
    """Raise ConfigError naming the range ``(lo, hi]`` (``[lo, hi]`` if not ``lo_open``) when
    ``value`` is NaN or +-inf: they pass or fail comparisons silently, so test them first."""
    if math.isnan(value) or math.isinf(value):
        left = "(" if lo_open else "["
        raise ConfigError(key, f"{value} is not a finite number in {left}{lo:g}, {hi:g}] ({why})")


def finite_in(value: float, lo: float, hi: float, key: str, why: str,
              lo_open: bool = True) -> None:
    """:func:`finite`, then :func:`at_most` ``hi`` (the lower bound is the caller's check)."""
    finite(value, lo, hi, key, why, lo_open)
    at_most(value, hi, key, why)
