"""The entry point's network set-up: the interface for gloo/nccl and naming lost ranks.

Part of the entry point (with cli.py): the decisions are pure functions in
``runtime/netif.py`` and ``runtime/peers.py``; this module applies them, and
:class:`InterfaceSetter` is the one place the process environment is written
(``GLOO_SOCKET_IFNAME`` / ``NCCL_SOCKET_IFNAME``, issue 13).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from dist_train.runtime import netif, peers
from dist_train.runtime import process_group as pg
from dist_train.runtime.env import World


class InterfaceSetter:
    """The ``before_init`` hook: set ``GLOO_SOCKET_IFNAME`` / ``NCCL_SOCKET_IFNAME`` to the interface
    that routes to the master (runtime/netif.py) unless the user set them, and log it.

    The one place the process environment is written. Raises ``netif.NoRouteError`` (one
    line: the address and every interface tried) when no interface reaches the master.
    ``address`` is then this rank's IP on that interface (what the others reach it by).
    """

    def __init__(self, world: World, wait_s: float) -> None:
        self.world, self.wait_s, self.address = world, wait_s, "127.0.0.1"
        self.log = logging.getLogger(netif.__name__)
        if world.local_rank == 0:
            self.log.setLevel(logging.INFO)  # one line per host, not only on rank 0

    def check_route(self) -> None:
        """Raise ``netif.NoRouteError`` now when no interface reaches the master (or its name does
        not resolve), or a user-set ``*_SOCKET_IFNAME`` cannot work (``netif.check_user_ifnames``):
        the other ranks would otherwise wait for this one until the rendezvous timeout."""
        master, w = self.world.master_addr, self.world
        netif.check_user_ifnames(os.environ, netif.interface_addresses(),
                                 (w.world_size, w.local_world_size))
        if w.world_size == 1:
            return
        ips = netif.resolve(master)
        route = netif.route_to(ips[0]) if ips else netif.Route(master, None, "the name does not resolve")
        if route.source is None:
            where = f"MASTER_ADDR {master}" + (f" ({ips[0]})" if ips and ips[0] != master else "")
            netif.choose_interface(route, netif.interface_addresses(), {}, where)  # raises

    def __call__(self, store) -> None:
        w = self.world
        if_addrs = netif.interface_addresses()
        route, where = netif.world_route(w.rank, w.world_size, w.local_world_size, w.master_addr,
                                         store, self.wait_s)
        user = {v: os.environ[v] for v in netif.IFNAME_VARS if os.environ.get(v, "").strip()}
        if len(user) == len(netif.IFNAME_VARS):
            self.address = route.source or self.address
            self.log.info("rank %d: network interface as you set it: %s", w.rank, user)
            return
        choice = netif.choose_interface(route, if_addrs, os.environ, where)
        os.environ.update(choice.env)
        self.address = choice.address
        self.log.info("rank %d on %s: network interface %s (%s) %s; set %s%s", w.rank,
                      socket.gethostname(), choice.ifname, choice.address, choice.reason,
                      " ".join(f"{k}={v}" for k, v in choice.env.items()),
                      f" (kept yours: {user})" if user else "")


@contextmanager
def ifnames_restored() -> Iterator[None]:
    """Put ``GLOO_SOCKET_IFNAME`` / ``NCCL_SOCKET_IFNAME`` back as they were on exit.

    :class:`InterfaceSetter` writes them for this process's process group; a caller of the
    Python API (``dist_train.train``) keeps its environment, so processes it starts later
    (on other hosts, say) do not inherit an interface chosen for this run.
    """
    saved = {v: os.environ.get(v) for v in netif.IFNAME_VARS}
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def name_the_lost(err: RuntimeError, table: Sequence[peers.Peer], rank: int,
                  timeout_s: float) -> pg.CollectiveError:
    """``err`` (a failed collective) as one line that names the ranks and hosts now unreachable.

    ``table`` is every rank's :class:`~dist_train.runtime.peers.Peer` (empty when the failure
    came before it was gathered). The probe takes about a second.
    """
    if table:
        lost = peers.describe_lost(peers.unreachable(table, rank))
    else:
        lost = "which rank is gone is unknown (it failed before the ranks exchanged addresses)"
    if isinstance(err, pg.CollectiveError):
        return pg.CollectiveError(f"{err}; {lost}")
    return pg.CollectiveError(
        f"rank {rank}: a collective failed outside the training steps: another rank died or did "
        f"not answer within dist.timeout_s={timeout_s:g} ({pg.backend_detail(err)}); {lost}")
