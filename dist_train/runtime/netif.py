"""Which network interface gloo and nccl use: the one that routes to the master.

Left alone, gloo binds to the address the host name resolves to, and nccl to its first
non-loopback interface. On a host whose name resolves to loopback (Debian's default
``127.0.1.1 host`` line) or to an interface that does not reach the other hosts, ranks hang
or fail deep inside gloo (ANCHORS: "wrong interface", dgl#3629, dgl#2013, GLT#66). The rule
here is ``ip route get MASTER``: the interface holding the source address the kernel uses
towards the master (a UDP ``connect`` sends nothing and sets that source address). On the
master's own host the master address may itself be loopback; then the route to a rank on
another host decides (:func:`peers_to_ask`; the entry point finds its address through
the rendezvous store).

The decision is a pure function (:func:`choose_interface`) of what :func:`probe_host`
measured; the entry point writes ``GLOO_SOCKET_IFNAME`` / ``NCCL_SOCKET_IFNAME`` from it.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from partition.errors import InputError

IFNAME_VARS = ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME")


class NoRouteError(InputError):
    """No interface of this host reaches the master (or a user-named interface is missing)."""


@dataclass(frozen=True)
class Route:
    """What the kernel says about reaching ``target`` from this host."""

    target: str
    """The address routed to (an IP: the master's, or a peer's)."""
    source: str | None
    """Source IP the kernel picks towards ``target``; None when there is no route."""
    error: str = ""
    """Why there is no route (the OS's words), when ``source`` is None."""


@dataclass(frozen=True)
class InterfaceChoice:
    """The interface for the process group and why; ``env`` holds the variables to set."""

    ifname: str
    address: str
    reason: str
    env: dict[str, str]


def is_loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip.split("%")[0]).is_loopback


def resolve(host: str) -> list[str]:
    """IPv4 then IPv6 addresses of ``host`` (a name or an IP), in resolver order; [] if none."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return []
    ips = [str(i[4][0]) for i in infos]
    ordered = [ip for ip in ips if ":" not in ip] + [ip for ip in ips if ":" in ip]
    return list(dict.fromkeys(ordered))


def route_to(ip: str) -> Route:
    """The source address for ``ip`` (``ip route get`` semantics; no packet is sent)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((ip, 9))  # port 9 (discard): UDP connect only selects a route
            return Route(ip, str(s.getsockname()[0]))
    except OSError as err:
        return Route(ip, None, err.strerror or str(err))


def interface_addresses() -> dict[str, list[str]]:
    """Every interface of this host with its IPv4/IPv6 addresses (psutil)."""
    import psutil

    fams = (socket.AF_INET, socket.AF_INET6)
    return {name: [a.address.split("%")[0] for a in addrs if a.family in fams]
            for name, addrs in psutil.net_if_addrs().items()}


def interface_holding(ip: str, if_addrs: Mapping[str, Sequence[str]]) -> str | None:
    """The interface that holds address ``ip``; loopback addresses belong to the loopback one."""
    for name, addrs in if_addrs.items():
        if ip in addrs:
            return name
    if is_loopback(ip):
        return next((n for n, a in if_addrs.items() if any(is_loopback(x) for x in a)), None)
    return None


def peers_to_ask(rank: int, world_size: int, local_world_size: int) -> list[int]:
    """The other ranks, the first of them on another host under the usual block layout
    (``local_world_size`` ranks per host); [] when the world is one host.

    Used when the master address is loopback here: the first of them that reaches the master
    over a real interface gives the address to route to (uneven layouts only cost a wait).
    """
    if world_size <= local_world_size:
        return []
    start = (rank // local_world_size + 1) * local_world_size
    order = [(start + k) % world_size for k in range(world_size)]
    return [r for r in order if r != rank]


def _loopback_only(names: Sequence[str], if_addrs: Mapping[str, Sequence[str]]) -> bool:
    addrs = [a for n in names for a in if_addrs.get(n, ())]
    return bool(addrs) and all(is_loopback(a) for a in addrs)


def check_user_ifnames(env: Mapping[str, str], if_addrs: Mapping[str, Sequence[str]],
                       layout: tuple[int, int] = (1, 1)) -> None:
    """Raise :class:`NoRouteError` when a user-set ``*_SOCKET_IFNAME`` cannot work.

    A ``GLOO_SOCKET_IFNAME`` entry (comma-separated list) naming a missing interface; and,
    when the world spans hosts (``layout`` = (world size, ranks per host), the latter from
    ``LOCAL_WORLD_SIZE`` or the launcher), a list of loopback interfaces only
    (``GLOO_SOCKET_IFNAME=lo``): ranks on other hosts can never connect to 127.0.0.1, which
    gloo reports only as a connectFullMesh timeout ``dist.timeout_s`` later, on rank 0 alone
    (measured on simulated hosts, issue 13). ``NCCL_SOCKET_IFNAME`` is left alone: it names
    patterns (``^`` exclude, ``=`` exact), and a CPU run never uses it.
    """
    var = "GLOO_SOCKET_IFNAME"
    gloo = [n.strip() for n in env.get(var, "").split(",") if n.strip()]
    for name in gloo:
        if name not in if_addrs:
            raise NoRouteError(f"{var}={env[var]}: no interface {name!r} on this host "
                               f"(interfaces: {', '.join(sorted(if_addrs))})")
    world_size, per_host = layout
    if world_size <= per_host:
        return
    if _loopback_only(gloo, if_addrs):
        raise NoRouteError(f"{var}={env[var]}: loopback only, but the ranks are on several hosts "
                           f"(world size {world_size}, {per_host} per host) and cannot reach each "
                           f"other there; unset {var} (giantgcn then uses the interface that routes "
                           "to MASTER_ADDR) or name an interface the other hosts reach")


def choose_interface(route: Route, if_addrs: Mapping[str, Sequence[str]], env: Mapping[str, str],
                     where: str) -> InterfaceChoice:
    """The interface holding ``route.source``, and the ``*_SOCKET_IFNAME`` values to set.

    ``where`` names the target for messages (e.g. ``MASTER_ADDR node1 (10.213.0.11)``).
    Variables the user already set are kept (not in ``env`` of the result). Raises
    :class:`NoRouteError` with one line naming the address and every interface tried when
    nothing routes there.
    """
    tried = ", ".join(f"{n} ({'/'.join(a) or 'no address'})" for n, a in sorted(if_addrs.items()))
    if route.source is None:
        raise NoRouteError(f"no network interface reaches {where}: {route.error}; "
                           f"interfaces tried: {tried}")
    name = interface_holding(route.source, if_addrs)
    if name is None:
        raise NoRouteError(f"the route to {where} leaves from {route.source}, which no interface "
                           f"holds; interfaces tried: {tried}")
    unset = {v: name for v in IFNAME_VARS if not env.get(v, "").strip()}
    return InterfaceChoice(name, route.source, f"routes to {where}", unset)


def world_route(rank: int, world_size: int, local_world_size: int, master: str, store, wait_s: float,
                route=route_to, resolve_host=resolve) -> tuple[Route, str]:
    """The route that decides this rank's interface, and the target's description.

    Every rank publishes its source address towards the master under ``netif/<rank>`` in the
    rendezvous ``store`` (a ``torch.distributed.Store``). A rank for which the master is
    loopback while the world spans hosts reads the other ranks' addresses (:func:`peers_to_ask`,
    waiting up to ``wait_s`` seconds in all) and routes to the first that is not loopback.
    Raises :class:`NoRouteError` when none arrives in time or every one is loopback.
    """
    ips = resolve_host(master)
    if not ips:
        return Route(master, None, "the name does not resolve"), f"MASTER_ADDR {master}"
    found = route(ips[0])
    store.set(f"netif/{rank}", found.source or "")
    others = peers_to_ask(rank, world_size, local_world_size)
    label = f"MASTER_ADDR {master}" + (f" ({ips[0]})" if ips[0] != master else "")
    if found.source is None or not is_loopback(found.source) or not others:
        return found, label
    deadline = time.monotonic() + wait_s
    for peer in others:
        try:
            store.wait([f"netif/{peer}"], timedelta(seconds=max(deadline - time.monotonic(), 0.001)))
        except RuntimeError:
            raise NoRouteError(f"{label} is loopback here and rank {peer} did not say within "
                               f"{wait_s:g}s which address reaches the master") from None
        peer_ip = store.get(f"netif/{peer}").decode()
        if peer_ip and not is_loopback(peer_ip):
            return route(peer_ip), f"rank {peer} on another host ({peer_ip}; {label} is loopback here)"
    raise NoRouteError(f"MASTER_ADDR {master} is a loopback address ({ips[0]}) here and for every "
                       f"other rank too, yet the world spans hosts (world size {world_size}, "
                       f"{local_world_size} per host): set MASTER_ADDR (or torchrun --local-addr) to "
                       "an address every host reaches")
