"""Interface selection (runtime/netif.py) and naming the lost ranks (runtime/peers.py), in-process.

The real thing across simulated hosts is tests/test_multihost.py; here the decisions are
checked on measured inputs given by hand: a route, the interfaces, a store.
"""

from __future__ import annotations

import socket
import time

import pytest
import torch.distributed as dist

from dist_train.runtime import netif, peers
from dist_train.runtime.netif import NoRouteError, Route

IFACES = {"lo": ["127.0.0.1", "::1"], "eth0": ["192.0.2.2"], "ib0": ["10.213.0.11"]}


def test_the_interface_holding_the_route_source_wins():
    choice = netif.choose_interface(Route("10.213.0.12", "10.213.0.11"), IFACES, {}, "MASTER_ADDR n2")
    assert choice.ifname == "ib0" and choice.address == "10.213.0.11"
    assert choice.env == {"GLOO_SOCKET_IFNAME": "ib0", "NCCL_SOCKET_IFNAME": "ib0"}


def test_a_variable_the_user_set_is_kept():
    choice = netif.choose_interface(Route("10.213.0.12", "10.213.0.11"), IFACES,
                                    {"NCCL_SOCKET_IFNAME": "=ib0"}, "x")
    assert choice.env == {"GLOO_SOCKET_IFNAME": "ib0"}


def test_127_0_1_1_belongs_to_the_loopback_interface():
    assert netif.interface_holding("127.0.1.1", IFACES) == "lo"


def test_no_route_is_one_line_naming_the_address_and_every_interface():
    with pytest.raises(NoRouteError) as info:
        netif.choose_interface(Route("10.9.9.9", None, "Network is unreachable"), IFACES, {},
                               "MASTER_ADDR far (10.9.9.9)")
    msg = str(info.value)
    assert "\n" not in msg and "MASTER_ADDR far (10.9.9.9)" in msg and "Network is unreachable" in msg
    for name in IFACES:
        assert name in msg


def test_a_user_interface_that_does_not_exist_is_refused():
    with pytest.raises(NoRouteError, match="GLOO_SOCKET_IFNAME=eth0,eth7: no interface 'eth7'"):
        netif.check_user_ifnames({"GLOO_SOCKET_IFNAME": "eth0,eth7"}, IFACES)
    netif.check_user_ifnames({"GLOO_SOCKET_IFNAME": "eth0"}, IFACES)


def test_a_user_loopback_interface_is_refused_when_the_world_spans_hosts():
    # measured on simulated hosts: GLOO_SOCKET_IFNAME=lo was kept and rank 0 failed only after
    # dist.timeout_s with "a rank did not arrive" (connectFullMesh timeout), rank 1 said nothing
    with pytest.raises(NoRouteError, match=r"GLOO_SOCKET_IFNAME=lo: loopback only.*world size 2, 1 per host"):
        netif.check_user_ifnames({"GLOO_SOCKET_IFNAME": "lo"}, IFACES, (2, 1))
    netif.check_user_ifnames({"GLOO_SOCKET_IFNAME": "lo"}, IFACES, (2, 2))  # one host: lo is fine
    netif.check_user_ifnames({"GLOO_SOCKET_IFNAME": "lo,eth0"}, IFACES, (4, 2))  # eth0 reaches out
    netif.check_user_ifnames({"NCCL_SOCKET_IFNAME": "lo"}, IFACES, (2, 1))  # a pattern, unused on CPU


def test_route_to_unreachable_and_local_addresses():
    assert netif.route_to("127.0.0.1").source == "127.0.0.1"
    assert netif.route_to("127.0.1.1").source is not None
    assert netif.resolve("127.0.0.1") == ["127.0.0.1"] and netif.resolve("no-such-host.invalid") == []
    assert "lo" in netif.interface_addresses()


@pytest.mark.parametrize(("rank", "size", "local", "first"),
                         [(0, 2, 1, 1), (1, 2, 1, 0), (0, 4, 2, 2), (3, 4, 2, 0), (2, 6, 2, 4), (0, 2, 2, None)])
def test_the_first_rank_asked_is_on_another_host(rank, size, local, first):
    order = netif.peers_to_ask(rank, size, local)
    assert (order[0] if order else None) == first
    assert sorted(order) == ([r for r in range(size) if r != rank] if order else [])


def _fake_route(table):
    return lambda ip: Route(ip, table[ip])


def test_master_on_loopback_routes_to_a_rank_on_another_host():
    store = dist.HashStore()
    # rank 1 (host b) sees the master at 10.0.0.1 and leaves from 10.0.0.2
    r1, _ = netif.world_route(1, 2, 1, "a", store, 5, route=_fake_route({"10.0.0.1": "10.0.0.2"}),
                              resolve_host=lambda h: ["10.0.0.1"])
    assert r1.source == "10.0.0.2"
    # rank 0 (host a, Debian's 127.0.1.1 line): the master is loopback here
    r0, where = netif.world_route(0, 2, 1, "a", store, 5,
                                  route=_fake_route({"127.0.1.1": "127.0.0.1", "10.0.0.2": "10.0.0.1"}),
                                  resolve_host=lambda h: ["127.0.1.1"])
    assert r0 == Route("10.0.0.2", "10.0.0.1") and "rank 1 on another host" in where


def test_master_on_loopback_everywhere_is_an_error_not_a_hang():
    store = dist.HashStore()
    store.set("netif/1", "127.0.0.1")
    with pytest.raises(NoRouteError, match="loopback address .* here and for every other rank too"):
        netif.world_route(0, 2, 1, "a", store, 5, route=_fake_route({"127.0.1.1": "127.0.0.1"}),
                          resolve_host=lambda h: ["127.0.1.1"])
    with pytest.raises(NoRouteError, match="did not say within 0.2s"):
        netif.world_route(0, 2, 1, "a", dist.HashStore(), 0.2,
                          route=_fake_route({"127.0.1.1": "127.0.0.1"}), resolve_host=lambda h: ["127.0.1.1"])


def test_an_uneven_layout_skips_ranks_of_the_same_host():
    store = dist.HashStore()  # 2 ranks per host assumed; rank 1 is really the one elsewhere
    store.set("netif/2", "127.0.0.1")  # rank 2 turned out to be on the master's host
    store.set("netif/1", "10.0.0.2")
    r, where = netif.world_route(0, 3, 2, "a", store, 5,
                                 route=_fake_route({"127.0.1.1": "127.0.0.1", "10.0.0.2": "10.0.0.1"}),
                                 resolve_host=lambda h: ["127.0.1.1"])
    assert r.source == "10.0.0.1" and "rank 1 on another host" in where


def test_one_host_on_loopback_needs_no_peer():
    r, where = netif.world_route(0, 2, 2, "localhost", dist.HashStore(), 0.1)
    assert r.source == "127.0.0.1" and where.startswith("MASTER_ADDR localhost")


def test_a_closed_beacon_is_lost_an_open_one_answers():
    alive, dead = peers.Beacon("127.0.0.1"), peers.Beacon("127.0.0.1")
    dead.close()
    table = [peers.Peer(0, "me", "127.0.0.1", 0), peers.Peer(1, "hostb", "127.0.0.1", alive.port),
             peers.Peer(2, "hostc", "127.0.0.1", dead.port), peers.Peer(3, "hostc", "127.0.0.1", dead.port)]
    try:
        lost = peers.unreachable(table, me=0)
    finally:
        alive.close()
    assert [p.rank for p in lost] == [2, 3]
    assert peers.describe_lost(lost) == "lost ranks 2,3 on host hostc (127.0.0.1) (not answering)"
    assert "alive but hung" in peers.describe_lost([])


def test_probing_many_silent_ranks_takes_one_timeout_not_one_each():
    table = [peers.Peer(r, "h", "10.0.0.1", 1) for r in range(8)]
    t0 = time.monotonic()
    lost = peers.unreachable(table, me=0, timeout_s=0.3, answers=lambda p, t: time.sleep(t) or False)
    assert len(lost) == 7 and time.monotonic() - t0 < 1.5


def test_beacon_on_an_address_not_held_has_no_port():
    # 192.0.2.0/24 is TEST-NET-1: never an address of this host
    held = any("192.0.2.77" in a for a in netif.interface_addresses().values())
    if not held:
        assert peers.Beacon("192.0.2.77").port == 0
    with socket.create_connection(("127.0.0.1", (b := peers.Beacon("127.0.0.1")).port), timeout=2):
        pass
    b.close()


def test_a_failed_collective_outside_the_steps_names_the_lost_ranks():
    from dist_train.netsetup import name_the_lost
    from dist_train.runtime import process_group as pg

    dead = peers.Beacon("127.0.0.1")
    dead.close()
    table = [peers.Peer(0, "a", "127.0.0.1", 0), peers.Peer(1, "b", "127.0.0.1", dead.port)]
    gloo = RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:537] Connection closed by peer "
                        "[127.0.0.1]:8096")
    err = name_the_lost(gloo, table, 0, 5)
    assert isinstance(err, pg.CollectiveError) and "\n" not in str(err)
    assert str(err).startswith("rank 0: a collective failed outside the training steps")
    assert "dist.timeout_s=5" in str(err) and "lost rank 1 on host b (127.0.0.1)" in str(err)
    wrapped = name_the_lost(pg.CollectiveError("rank 0: epoch 2 step 3: x"), [], 0, 5)
    assert str(wrapped).startswith("rank 0: epoch 2 step 3: x; which rank is gone is unknown")
