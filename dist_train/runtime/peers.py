"""Which ranks and hosts are gone when a collective fails.

A gloo error says little: "Connection closed by peer" (sometimes with an address) when a
host died, "Timed out waiting Nms" with no address at all when the link went down. At
start-up every rank opens a tiny TCP listener (a :class:`Beacon`, accept-and-close on the
address its process group uses) and the ranks exchange ``(host, address, port)`` in one
all-gather (:func:`gather_peers`). When a collective fails, :func:`unreachable` tries every
other rank's beacon for about a second, in parallel: a killed host refuses or does not
answer, a cut link does not answer, a rank that is merely hung (SIGSTOP) still accepts
(the kernel completes the handshake). :func:`describe_lost` turns that into the words of
the error line (issue 13: "a line naming the lost ranks and host").
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class Peer:
    """One rank as the others can reach it."""

    rank: int
    host: str
    """The rank's host name (``socket.gethostname()``)."""
    address: str
    """The IP its process group uses (the chosen interface's address)."""
    port: int
    """The TCP port of its :class:`Beacon`; 0 when it has none."""


class Beacon:
    """A listening TCP socket on ``address`` that accepts and closes connections (daemon thread).

    Costs one port and one idle thread per rank. ``port`` is 0 when the socket could not be
    opened (then the rank is reported as unknown, never as lost).
    """

    def __init__(self, address: str) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.port = 0
        try:
            self._sock = socket.socket(family, socket.SOCK_STREAM)
            self._sock.bind((address, 0))
            self._sock.listen(64)
        except OSError:
            return
        self.port = int(self._sock.getsockname()[1])
        threading.Thread(target=self._serve, name="giantgcn-beacon", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            conn.close()

    def close(self) -> None:
        if self.port:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close alone does not
            except OSError:
                pass
            self._sock.close()


def gather_peers(host: str, address: str, port: int) -> list[Peer]:
    """Every rank's :class:`Peer`, in rank order (one ``all_gather_object``; a collective)."""
    import torch.distributed as dist

    rows: list[tuple[str, str, int] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(rows, (host, address, int(port)))
    return [Peer(r, *row) for r, row in enumerate(rows) if row is not None]


def _answers(peer: Peer, timeout_s: float) -> bool:
    try:
        with socket.create_connection((peer.address, peer.port), timeout=timeout_s):
            return True
    except OSError:
        return False


def unreachable(peers: Sequence[Peer], me: int, timeout_s: float = 1.0,
                answers: Callable[[Peer, float], bool] = _answers) -> list[Peer]:
    """The ranks other than ``me`` whose beacon does not answer within ``timeout_s`` seconds.

    All are tried at once, so this takes about ``timeout_s`` however many ranks there are.
    Ranks without a beacon (port 0) are left out.
    """
    others = [p for p in peers if p.rank != me and p.port]
    if not others:
        return []
    with ThreadPoolExecutor(max_workers=min(len(others), 64)) as pool:
        alive = list(pool.map(lambda p: answers(p, timeout_s), others))
    return [p for p, ok in zip(others, alive, strict=True) if not ok]


def describe_lost(lost: Sequence[Peer]) -> str:
    """``lost rank 1 on host node2 (10.213.0.12)`` / ``lost ranks 2,3 on host b (..); rank 5 on ..``.

    With nothing lost: every other rank still answers, so one is alive but hung (or slow).
    """
    if not lost:
        return "every other rank's host still answers: a rank is alive but hung or too slow"
    by_host: dict[tuple[str, str], list[int]] = {}
    for p in lost:
        by_host.setdefault((p.host, p.address), []).append(p.rank)
    parts = []
    for (host, addr), ranks in by_host.items():
        shown = ",".join(map(str, ranks[:16])) + (",…" if len(ranks) > 16 else "")
        parts.append(f"rank{'s' if len(ranks) > 1 else ''} {shown} on host {host} ({addr})")
    return "lost " + "; ".join(parts) + " (not answering)"
