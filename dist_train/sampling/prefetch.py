"""A background thread that samples and gathers batches ahead of the model.

The sampler kernel and numpy's gather release the GIL, so the thread really overlaps
the model's forward/backward; with ``depth`` batches queued the model never waits on
sampling unless sampling is slower than a step. Order is the order of the input
list, so a run is reproducible. A failure in the thread is re-raised by ``next()``
(never a silent hang), and ``close()`` stops the thread even mid-epoch.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dist_train.sampling.sampler import NeighborSampler, SampledSubgraph

_POLL_S = 0.05
"""How often a blocked producer or consumer looks at the stop flag / worker liveness."""


@dataclass
class Batch:
    """One training or evaluation step's input, already on the target device."""

    subgraph: SampledSubgraph
    x: torch.Tensor
    """float32 [num_nodes, F] features of ``subgraph.node_ids``."""
    y: torch.Tensor
    """int64 [num_seeds] labels of the seeds."""
    sample_s: float
    """Seconds spent sampling (in the background thread)."""
    gather_s: float
    """Seconds spent gathering features and labels and starting the device copy."""


@dataclass
class _Failure:
    error: BaseException


class PeerStopped(RuntimeError):
    """Another rank's prefetch thread stopped (its run is ending) while this rank still
    wanted batches: this rank's run cannot go on either."""


_DONE = object()
_PEER_STOPPED = object()


def gather_rows(x: np.ndarray, ids: np.ndarray, pin: bool) -> torch.Tensor:
    """``x[ids]`` as a contiguous float32 tensor; into page-locked memory when ``pin``.

    ``x`` may be stored in float16 or bfloat16 (``--feature-dtype``): rows are cast per
    batch here, so a rank holds its features at half size and computes in float32.

    Pinned buffers come from torch's caching host allocator, which reuses them and
    records the copies that use them, so a buffer is never overwritten mid-transfer.
    """
    out = torch.empty((ids.shape[0], x.shape[1]), dtype=torch.float32, pin_memory=pin)
    if x.dtype == np.float32:
        np.take(x, ids, axis=0, out=out.numpy())
    else:
        out.numpy()[:] = np.take(x, ids, axis=0)
    return out


def make_batch(sampler: NeighborSampler, x: np.ndarray, y: np.ndarray, seeds: np.ndarray,
               sample_seed: int, device: torch.device) -> Batch:
    """Sample, gather and move one batch (what the thread does per item)."""
    t0 = time.perf_counter()
    sub = sampler.sample(seeds, sample_seed)
    t1 = time.perf_counter()
    feats = gather_rows(x, sub.node_ids.numpy(), pin=device.type == "cuda")
    labels = torch.from_numpy(np.ascontiguousarray(np.take(y, seeds), dtype=np.int64))
    return to_device(sub, feats, labels, device, t1 - t0, t1)


def to_device(sub: SampledSubgraph, feats: torch.Tensor, labels: torch.Tensor,
              device: torch.device, sample_s: float, t_gather: float) -> Batch:
    """The batch on ``device`` (pinned, non-blocking copies to a GPU); ``t_gather`` is the
    ``perf_counter`` time the gather started."""
    cuda = device.type == "cuda"
    if cuda:
        sub = sub.pin_memory()
        labels = labels.pin_memory()
    if device.type != "cpu":
        sub = sub.to(device, non_blocking=True)
        feats = feats.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
    return Batch(sub, feats, labels, sample_s=sample_s, gather_s=time.perf_counter() - t_gather)


class Prefetcher:
    """Iterate ``Batch``es for ``batches[i]`` sampled with ``seeds[i]``, ``depth`` ahead.

    Use as a context manager (``with Prefetcher(...) as it: for b in it: ...``) so the
    thread is stopped however the loop ends. ``sampler`` may be None when ``make`` is given.
    """

    def __init__(self, sampler: NeighborSampler | None, x: np.ndarray, y: np.ndarray,
                 batches: Sequence[np.ndarray], seeds: Sequence[int],
                 device: torch.device | str = "cpu", depth: int = 2,
                 make: Callable[[np.ndarray, int, torch.device], Batch] | None = None,
                 agree: Callable[[bool], bool] | None = None) -> None:
        if len(batches) != len(seeds):
            raise ValueError(f"{len(batches)} batches but {len(seeds)} sampling seeds")
        if depth < 1:
            raise ValueError(f"depth {depth} is not >= 1")
        self._args = (sampler, x, y, list(batches), [int(s) for s in seeds], torch.device(device))
        # ``make(seeds, sample_seed, device)`` replaces sample-and-gather (exact mode)
        self._make = make
        # ``agree(stop_here) -> any rank stops``: a collective before each batch, needed
        # when ``make`` runs collectives (see the module docstring)
        self._agree = agree
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._work, name="giantgcn-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        sampler, x, y, batches, seeds, device = self._args
        try:
            if device.type == "cuda" and device.index is not None:
                # As DataLoader's pin thread: without it this thread's pinning and
                # copies would open a context on GPU 0 in every rank.
                torch.cuda.set_device(device)
            for ids, seed in zip(batches, seeds, strict=True):
                if self._agree is not None:
                    # a stop seen mid-put falls through to here: every rank leaves together
                    if self._agree(self._stop.is_set()):
                        self._put(_PEER_STOPPED)
                        return
                elif self._stop.is_set():
                    return
                batch = (make_batch(sampler, x, y, ids, seed, device) if self._make is None
                         else self._make(ids, seed, device))
                if not self._put(batch) and self._agree is None:
                    return
            self._put(_DONE)
        except BaseException as err:  # noqa: BLE001 -- handed to the consumer, re-raised there
            self._put(_Failure(err))

    def __iter__(self) -> Prefetcher:
        return self

    def __next__(self) -> Batch:
        if self._finished:
            raise StopIteration
        while True:
            try:
                item = self._queue.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self._finished = True
                    raise RuntimeError("prefetch thread ended without a result "
                                       "(closed, or died without reporting)") from None
        if item is _DONE:
            self._finished = True
            raise StopIteration
        if item is _PEER_STOPPED:
            self._finished = True
            raise PeerStopped("another rank stopped its prefetch thread mid-epoch")
        if isinstance(item, _Failure):
            self._finished = True
            raise item.error
        return item

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the thread; waits for at most one batch in progress (with ``agree``: until
        every rank's thread reaches its next agreement). Idempotent."""
        self._stop.set()
        self._finished = True
        while True:  # free queue slots so a producer blocked on put() sees the flag
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        stop = getattr(self, "_stop", None)  # absent when __init__ raised
        if stop is not None:
            stop.set()
