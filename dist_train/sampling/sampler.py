"""Neighbour sampling over a rank's local CSR: a numba kernel and the ``SampledSubgraph`` message.

Why our own sampler: PyG's ``NeighborLoader`` needs pyg-lib or torch-sparse (absent on
many installs), and DGL/PyG sampling is not reproducible even with seeds (dgl#3302,
dgl#1692, dgl#7831). Here one compiled, GIL-free kernel call samples all hops of a
batch; its random numbers come from a splitmix64 stream seeded by the batch's own
seed, so the same (seeds, seed) gives the same subgraph whatever thread runs it and
whatever ran before.

Partition-invariant (issue 15): the neighbours chosen for a node depend only on (batch
seed, the node's global id, hop) -- each target gets its own counter-based stream -- and
a row's positions are in global-id order (the dataset format stores rows so). So a seed
set samples the same subgraph, as global ids, whether the graph is in 1 part or 64, as
long as the rows it expands are complete there (a halo as deep as the model, or exact
mode); this is what makes sampling across parts provably exact.

Two layouts of the result. Nodes are always seeds, then the new nodes of hop 1, hop 2, ...

- ``"union"`` (PyG ``sampler/base.py`` style, :func:`sample_hops`): each node is sampled
  once, at the hop it was first reached, and every layer shares that sample; edges are
  grouped by the hop of their target (hop-h edges point into hop-h nodes), so the model
  trims layers with plain slicing. A seed's output then depends on the other seeds of
  its batch (a node reached as a hop-1 neighbour is sampled with hop 1's fanout).
- ``"blocks"`` (DGL's message-flow graphs, Zheng et al. 2020 "DistDGL"; per-layer
  sampling as in Hamilton et al. 2017 "GraphSAGE", :func:`sample_blocks`): block d
  (d = 0..L-1) has as targets every node of hops 0..d and samples each with fanout
  ``f[d]`` from the stream (batch seed, global id, d); its new neighbours are hop d+1.
  Layer i of the model uses block L-1-i only, so a node's layer output depends only on
  (batch seed, its global id, the layer), never on the other seeds: a global batch split
  across ranks gives the same per-seed logits as one process (``train.batch_plan=global``).

:meth:`SampledSubgraph.layer_edges` is the one place that knows either layout.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import numpy as np
import torch
from numba import njit

# splitmix64 constants (Steele, Lea & Flood 2014): a counter-based stream, so the
# random numbers of a batch depend on its seed alone.
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, nogil=True)
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> np.uint64(30))) * _MUL1
    z = (z ^ (z >> np.uint64(27))) * _MUL2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def _below(z: np.uint64, m: np.int64) -> np.int64:
    """A number in [0, m) from the high 32 bits of z (Lemire's multiply-shift; m < 2^32)."""
    return np.int64(((z >> np.uint64(32)) * np.uint64(m)) >> np.uint64(32))


@njit(cache=True, nogil=True)
def _choose(d, k, replace, state, chosen, scratch):
    """Write k row positions in [0, d) into ``chosen``, drawing from the stream at ``state``.

    Without replacement: partial Fisher-Yates over a scratch copy of 0..d-1 when the row
    is short, else Floyd's algorithm (O(k^2) membership scans, no O(d) work on hubs).
    """
    if replace:
        for s in range(k):
            state += _GAMMA
            chosen[s] = _below(_mix(state), d)
    elif 2 * d < k * k:
        for j in range(d):
            scratch[j] = j
        for s in range(k):
            state += _GAMMA
            r = s + _below(_mix(state), d - s)
            pick = scratch[r]
            scratch[r] = scratch[s]
            scratch[s] = pick
            chosen[s] = pick
    else:
        for c in range(k):
            j = d - k + c
            state += _GAMMA
            t = _below(_mix(state), j + 1)
            for q in range(c):
                if chosen[q] == t:
                    t = j
                    break
            chosen[c] = t
    return state


@njit(cache=True, nogil=True)
def _grown(a, need):
    if need <= a.shape[0]:
        return a
    out = np.empty(max(need, 2 * a.shape[0]), dtype=a.dtype)
    out[: a.shape[0]] = a
    return out


@njit(cache=True, nogil=True)
def _edges_grown(ei, e, need):
    """``ei`` ([2, cap]) resized to exactly ``need`` columns, keeping the first ``e``.

    Exact, not doubling: each hop's edge count is known before it is filled, so the
    last hop leaves the buffer exactly full and it is returned as ``edge_index`` as is
    (no final copy; a full-neighbourhood evaluation batch can hold millions of edges).
    """
    if need == ei.shape[1]:
        return ei
    out = np.empty((2, need), dtype=ei.dtype)
    out[:, :e] = ei[:, :e]
    return out


@njit(cache=True, nogil=True)
def _exact(a, e, need):
    if need == a.shape[0]:
        return a
    out = np.empty(need, dtype=a.dtype)
    out[:e] = a[:e]
    return out


@njit(cache=True, nogil=True)
def _hop_edge_count(indptr, nodes, lo, hi, f, replace):
    cnt = 0
    for t in range(lo, hi):
        d = indptr[nodes[t] + 1] - indptr[nodes[t]]
        cnt += d if f < 0 or (d <= f and not replace) else (f if d > 0 else 0)
    return cnt


@njit(cache=True, nogil=True)
def _add_seeds(seeds, node_map, nodes, node_deg, degree, has_degree):
    """Place the seeds at positions 0..B-1; -1 for an id out of range, -2 for a repeat."""
    n = node_map.shape[0]
    for i in range(seeds.shape[0]):
        s = seeds[i]
        if s < 0 or s >= n:
            return i, -1
        if node_map[s] >= 0:
            return i, -2
        node_map[s] = i
        nodes[i] = s
        if has_degree:
            node_deg[i] = degree[s]
    return seeds.shape[0], 0


@njit(cache=True, nogil=True)
def _node_stream(base: np.uint64, key: np.int64, hop: np.int64) -> np.uint64:
    """The RNG state of one (batch, node, hop): a splitmix64 hash of the three, so a
    node's choice never depends on which part holds it or what was sampled before."""
    z = _mix(base ^ (np.uint64(key) * _GAMMA))
    return _mix(z + np.uint64(hop + 1) * _MUL1)


@njit(cache=True, nogil=True)
def _sample_hop(indptr, indices, lo, hi, f, replace, base, hop, keys, has_keys, chosen, scratch,
                node_map, nodes, node_deg, degree, has_degree, ei, wgt, target_ptr, num, e):
    """Edges into the nodes at positions lo..hi-1; new neighbours get the next positions.

    ``target_ptr[t]`` gets the first edge of target t (edges come grouped by target).
    Returns the updated (node count, edge count).
    """
    for t in range(lo, hi):
        target_ptr[t] = e
        v = nodes[t]
        start = indptr[v]
        d = indptr[v + 1] - start
        take_all = f < 0 or (d <= f and not replace)
        k = d if take_all else (f if d > 0 else 0)
        if not take_all and k > 0:
            _choose(d, k, replace, _node_stream(base, keys[v] if has_keys else v, hop),
                    chosen, scratch)
        scale = 0.0
        if has_degree and k > 0:
            scale = degree[v] / k / np.sqrt(degree[v] + 1.0)
        for c in range(k):
            u = indices[start + (c if take_all else chosen[c])]
            pos = node_map[u]
            if pos < 0:
                pos = num
                node_map[u] = pos
                nodes[num] = u
                if has_degree:
                    node_deg[num] = degree[u]
                num += 1
            ei[0, e] = pos
            ei[1, e] = t
            if has_degree:
                wgt[e] = scale / np.sqrt(node_deg[pos] + 1.0)
            e += 1
    return num, e


@njit(cache=True, nogil=True)
def sample_hops(indptr, indices, seeds, fanouts, replace, rng_seed, node_map, degree, has_degree,
                keys, has_keys):
    """All hops of one batch; returns (status, nodes, edge_index, weight, node_degree,
    nodes_per_hop, edges_per_hop, target_ptr). ``node_map`` is all -1 on entry and on exit.
    ``keys`` (int64 per local node, e.g. global ids) names each node's random stream;
    without ``has_keys`` the local id does."""
    num_hops = fanouts.shape[0]
    b = seeds.shape[0]
    nodes = np.empty(max(2 * b, 16), dtype=np.int64)
    node_deg = np.empty(nodes.shape[0], dtype=np.float32)
    num, status = _add_seeds(seeds, node_map, nodes, node_deg, degree, has_degree)
    per_hop_nodes = np.zeros(num_hops + 1, dtype=np.int64)
    per_hop_edges = np.zeros(num_hops, dtype=np.int64)
    per_hop_nodes[0] = num
    kmax = max(1, fanouts.max())
    chosen = np.empty(kmax, dtype=np.int64)
    scratch = np.empty(kmax * kmax // 2 + 1, dtype=np.int64)
    ei = np.empty((2, 0), dtype=np.int64)
    wgt = np.empty(0, dtype=np.float32)
    target_ptr = np.empty(num + 1, dtype=np.int64)
    base = _mix(rng_seed ^ _MUL2)  # nearby seeds start far apart in the stream
    e = 0
    lo, hi = 0, num
    for h in range(num_hops if status == 0 else 0):
        f = fanouts[h]
        cnt = _hop_edge_count(indptr, nodes, lo, hi, f, replace)
        ei = _edges_grown(ei, e, e + cnt)
        if has_degree:
            wgt = _exact(wgt, e, e + cnt)
        nodes, node_deg = _grown(nodes, num + cnt), _grown(node_deg, num + cnt)
        target_ptr = _grown(target_ptr, hi + 1)
        num, e = _sample_hop(indptr, indices, lo, hi, f, replace, base, h, keys, has_keys,
                             chosen, scratch, node_map, nodes, node_deg, degree, has_degree, ei,
                             wgt, target_ptr, num, e)
        per_hop_nodes[h + 1] = num - hi
        per_hop_edges[h] = cnt
        lo, hi = hi, num
    target_ptr[lo] = e  # lo = number of targets (nodes of hops 0..L-1)
    for i in range(num):  # leave the map clean for the next batch
        node_map[nodes[i]] = -1
    return (status, nodes[:num], ei[:, :e], wgt[:e], node_deg[:num], per_hop_nodes,
            per_hop_edges, target_ptr[:lo + 1])


@njit(cache=True, nogil=True)
def sample_blocks(indptr, indices, seeds, fanouts, replace, rng_seed, node_map, degree, has_degree,
                  keys, has_keys):
    """Layer-wise (MFG) sampling of one batch; returns what :func:`sample_hops` returns,
    with per-*block* edge counts and the per-block target pointers concatenated.

    Block d re-samples every node of hops 0..d (the seeds included) with fanout
    ``fanouts[d]`` from the stream of (batch seed, key, d); neighbours not yet in the batch
    become hop d+1. Block d's edges follow block d-1's, grouped by target; its pointer
    (int64 [T_d + 1], T_d = nodes of hops 0..d, relative to the block's first edge) follows
    block d-1's in the returned pointer array. ``node_map`` is all -1 on entry and on exit.
    """
    num_blocks = fanouts.shape[0]
    b = seeds.shape[0]
    nodes = np.empty(max(2 * b, 16), dtype=np.int64)
    node_deg = np.empty(nodes.shape[0], dtype=np.float32)
    num, status = _add_seeds(seeds, node_map, nodes, node_deg, degree, has_degree)
    per_hop_nodes = np.zeros(num_blocks + 1, dtype=np.int64)
    per_block_edges = np.zeros(num_blocks, dtype=np.int64)
    per_hop_nodes[0] = num
    kmax = max(1, fanouts.max())
    chosen = np.empty(kmax, dtype=np.int64)
    scratch = np.empty(kmax * kmax // 2 + 1, dtype=np.int64)
    ei = np.empty((2, 0), dtype=np.int64)
    wgt = np.empty(0, dtype=np.float32)
    ptr_all = np.empty(0, dtype=np.int64)
    base = _mix(rng_seed ^ _MUL2)  # the same base as sample_hops: block d uses "hop" d's key
    e = 0
    p = 0
    for d in range(num_blocks if status == 0 else 0):
        f = fanouts[d]
        hi = num  # targets: every node of hops 0..d
        cnt = _hop_edge_count(indptr, nodes, 0, hi, f, replace)
        ei = _edges_grown(ei, e, e + cnt)
        if has_degree:
            wgt = _exact(wgt, e, e + cnt)
        nodes, node_deg = _grown(nodes, num + cnt), _grown(node_deg, num + cnt)
        ptr = np.empty(hi + 1, dtype=np.int64)
        e0 = e
        num, e = _sample_hop(indptr, indices, 0, hi, f, replace, base, d, keys, has_keys,
                             chosen, scratch, node_map, nodes, node_deg, degree, has_degree, ei,
                             wgt, ptr, num, e)
        ptr[hi] = e
        ptr_all = _grown(ptr_all, p + hi + 1)
        for t in range(hi + 1):
            ptr_all[p + t] = ptr[t] - e0
        p += hi + 1
        per_hop_nodes[d + 1] = num - hi
        per_block_edges[d] = cnt
    for i in range(num):  # leave the map clean for the next batch
        node_map[nodes[i]] = -1
    return (status, nodes[:num], ei[:, :e], wgt[:e], node_deg[:num], per_hop_nodes,
            per_block_edges, ptr_all[:p])


LAYOUTS = ("union", "blocks")


@dataclass(frozen=True)
class LayerEdges:
    """What layer i of an L-layer model reads from a :class:`SampledSubgraph`.

    Its sources are the first ``num_src`` rows of the layer's input, its targets the first
    ``num_dst`` of them (targets are a prefix of sources in both layouts); its edges are
    ``edge_index[:, edges]`` (grouped by target) and ``target_ptr`` (int64 [num_dst + 1],
    relative to ``edges.start``, or None when the subgraph carries no pointer) their CSR.
    """

    num_src: int
    num_dst: int
    edges: slice
    target_ptr: torch.Tensor | None


@dataclass
class SampledSubgraph:
    """What the sampler hands the model; all indices are positions into ``node_ids``."""

    node_ids: torch.Tensor
    """int64 local ids of the sampled nodes: seeds first, then each hop's new nodes."""
    num_seeds: int
    edge_index: torch.Tensor
    """int64 [2, E]: row 0 the source (neighbour) position, row 1 the target position."""
    edge_weight: torch.Tensor | None
    """float32 [E] ``(D_i / k_i) / sqrt((D_i + 1)(D_j + 1))``; None without degrees."""
    num_sampled_nodes: list[int]
    """New nodes per hop, length L + 1 (hop 0 = seeds)."""
    num_sampled_edges: list[int]
    """Edges per hop, length L; hop-h edges target hop-h nodes ("union"). In the
    "blocks" layout: edges of block d, which target every node of hops 0..d."""
    degree: torch.Tensor | None
    """float32 global degree of every sampled node; None without degrees."""
    target_ptr: torch.Tensor | None = None
    """int64 [T+1], T = nodes of hops 0..L-1: the edges into target t are
    ``edge_index[:, target_ptr[t]:target_ptr[t+1]]`` (a CSR over targets; the model
    aggregates along it). None when the edges were not built by the sampler. In the
    "blocks" layout: block 0's pointer (T_0 + 1 entries), then block 1's, ..., each
    relative to its block's first edge."""
    layout: str = "union"
    """"union" or "blocks" (module docstring); :meth:`layer_edges` reads either."""
    keys: torch.Tensor | None = None
    """int64 global id of every sampled node (by position), set by the "blocks" samplers:
    with ``batch_seed`` it keys the dropout mask (``csr_ops.relu_dropout``), so a row's
    mask does not depend on its rank or position. None: dropout from torch's generator."""
    batch_seed: int | None = None
    """The batch's sampling seed (set with ``keys``)."""

    @property
    def num_nodes(self) -> int:
        return int(self.node_ids.shape[0])

    @property
    def num_sampled_edges_total(self) -> int:
        return int(sum(self.num_sampled_edges))

    @property
    def num_layers(self) -> int:
        return len(self.num_sampled_edges)

    def nodes_through_hop(self, hop: int) -> int:
        """Number of nodes of hops 0..hop (they are a prefix of ``node_ids``)."""
        return int(sum(self.num_sampled_nodes[: hop + 1]))

    def edges_through_hop(self, hop: int) -> int:
        """Number of edges of hops 0..hop (they are a prefix of ``edge_index``)."""
        return int(sum(self.num_sampled_edges[: hop + 1]))

    def layer_edges(self, i: int, num_layers: int) -> LayerEdges:
        """The sources, targets and edges of layer ``i`` (0 = input layer) of ``num_layers``.

        "union": sources are hops 0..L-i, targets hops 0..L-1-i, edges the prefix of
        hops 0..L-1-i (PyG ``trim_to_layer``). "blocks": block L-1-i alone, whose targets
        are the same hops 0..L-1-i and sources hops 0..L-i. Raises ValueError when the
        subgraph has another number of hops than the model layers.
        """
        if self.num_layers != num_layers:
            raise ValueError(f"subgraph has {self.num_layers} hops but the model {num_layers} layers")
        d = num_layers - 1 - i
        n_src, n_dst = self.nodes_through_hop(d + 1), self.nodes_through_hop(d)
        if self.layout == "union":
            end = self.edges_through_hop(d)
            ptr = None if self.target_ptr is None else self.target_ptr[: n_dst + 1]
            return LayerEdges(n_src, n_dst, slice(0, end), ptr)
        # block d's pointer follows blocks 0..d-1's, of T_b + 1 entries each
        start = sum(self.nodes_through_hop(b) + 1 for b in range(d))
        assert self.target_ptr is not None, "a blocks subgraph always carries its pointers"
        e0 = self.edges_through_hop(d - 1) if d > 0 else 0
        return LayerEdges(n_src, n_dst, slice(e0, e0 + self.num_sampled_edges[d]),
                          self.target_ptr[start:start + n_dst + 1])

    def _map(self, fn) -> SampledSubgraph:
        def opt(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else fn(t)

        # keys stay on the host: the dropout mask is hashed there (csr_ops)
        return replace(self, node_ids=fn(self.node_ids), edge_index=fn(self.edge_index),
                       edge_weight=opt(self.edge_weight), degree=opt(self.degree),
                       target_ptr=opt(self.target_ptr))

    def to(self, device: torch.device | str, non_blocking: bool = False) -> SampledSubgraph:
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> SampledSubgraph:
        return self._map(lambda t: t.pin_memory())


def _check_fanouts(fanouts: list[int]) -> np.ndarray:
    if len(fanouts) == 0 or any(int(f) != f or (f != -1 and f < 1) for f in fanouts):
        raise ValueError(f"fanouts {fanouts}: need >= 1 layer, each fanout >= 1 or -1 (all)")
    return np.asarray(fanouts, dtype=np.int64)


def _check_csr(indptr: np.ndarray, indices: np.ndarray) -> None:
    if indptr.ndim != 1 or indptr.shape[0] < 1 or indices.ndim != 1:
        raise ValueError(f"CSR: indptr must be 1-D of length n+1, got shape {indptr.shape}")
    if indptr[0] != 0 or indptr[-1] != indices.shape[0]:
        raise ValueError(f"CSR: indptr spans [{indptr[0]}, {indptr[-1]}] but indices has "
                         f"{indices.shape[0]} entries")


class NeighborSampler:
    """Uniform k-of-row sampling per hop, without replacement unless ``replace``.

    The CSR is trusted (``partition.store.format.verify_dataset`` checks ids are in range):
    ``indptr`` int64 [n+1]; ``indices`` int32 or int64 [nnz] local ids, used as given (a
    memory-mapped shard stays mapped; other integer dtypes are cast to int64). A fanout of -1 takes the whole row. With ``degree`` (the global undirected degree
    of every local node) each edge also gets its GCN weight; see ``SampledSubgraph``.

    With ``global_ids`` (int64 [n], the global id of every local node) each node's
    neighbours are drawn from a stream keyed by (batch seed, global id, hop), so the
    sample is the same in any partition whose rows are complete and in global-id order
    (the shard format's rows are); without it the local id keys the stream.

    ``layout`` "union" (default, :func:`sample_hops`) or "blocks" (:func:`sample_blocks`,
    layer-wise; the result carries ``keys``, the global ids, for keyed dropout).

    One call at a time per sampler (a lock guards the reusable id map); build one
    sampler per thread to sample in parallel.
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, fanouts: list[int],
                 degree: np.ndarray | None = None, replace: bool = False,
                 global_ids: np.ndarray | None = None, layout: str = "union") -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        self.layout = layout
        self._indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        # int32 column ids (as stored when they fit) are sampled as they are: an int64 copy
        # would double the CSR of every rank (rss_share.py, issue 15)
        self._indices = (np.ascontiguousarray(indices) if np.asarray(indices).dtype in (np.int32, np.int64)
                         else np.ascontiguousarray(indices, dtype=np.int64))
        _check_csr(self._indptr, self._indices)
        self._fanouts = _check_fanouts(list(fanouts))
        self.replace = bool(replace)
        n = self.num_nodes
        self._has_degree = degree is not None
        if degree is None:
            self._degree = np.zeros(0, dtype=np.int64)
        else:
            self._degree = np.ascontiguousarray(degree, dtype=np.int64)
            if self._degree.shape != (n,):
                raise ValueError(f"degree has shape {self._degree.shape}, expected ({n},)")
            if np.any(self._degree < np.diff(self._indptr)):
                raise ValueError("degree: a node's global degree is below its local row length")
        self._has_keys = global_ids is not None
        self._keys = (np.zeros(0, dtype=np.int64) if global_ids is None
                      else np.asarray(global_ids, dtype=np.int64))
        if self._has_keys and self._keys.shape != (n,):
            raise ValueError(f"global_ids has shape {self._keys.shape}, expected ({n},)")
        # Global->position map, all -1 between calls; the kernel resets only what it
        # touched, so a batch costs O(sampled) rather than O(n).
        self._node_map = np.full(n, -1, dtype=np.int64)
        self._lock = threading.Lock()

    @property
    def num_nodes(self) -> int:
        return int(self._indptr.shape[0] - 1)

    @property
    def fanouts(self) -> list[int]:
        return [int(f) for f in self._fanouts]

    @property
    def num_layers(self) -> int:
        return int(self._fanouts.shape[0])

    def sample(self, seeds: np.ndarray, seed: int) -> SampledSubgraph:
        """The sampled L-hop subgraph around ``seeds`` (unique local ids); same seed, same result."""
        seeds = np.ascontiguousarray(seeds, dtype=np.int64)
        if seeds.ndim != 1:
            raise ValueError(f"seeds must be 1-D, got shape {seeds.shape}")
        rng_seed = np.uint64(int(seed) % (1 << 64))
        kernel = sample_hops if self.layout == "union" else sample_blocks
        with self._lock:
            out = kernel(self._indptr, self._indices, seeds, self._fanouts, self.replace,
                         rng_seed, self._node_map, self._degree, self._has_degree,
                         self._keys, self._has_keys)
        status, nodes, edge_index, weight, node_degree, per_hop_nodes, per_hop_edges, ptr = out
        if status != 0:
            what = "is out of range" if status == -1 else "appears twice"
            raise ValueError(f"seeds: a seed {what} (num_nodes={self.num_nodes})")
        return SampledSubgraph(
            node_ids=torch.from_numpy(nodes),
            num_seeds=int(seeds.shape[0]),
            edge_index=torch.from_numpy(edge_index),
            edge_weight=torch.from_numpy(weight) if self._has_degree else None,
            num_sampled_nodes=per_hop_nodes.tolist(),
            num_sampled_edges=per_hop_edges.tolist(),
            degree=torch.from_numpy(node_degree) if self._has_degree else None,
            target_ptr=torch.from_numpy(ptr),
            **self._keyed(nodes, seed),
        )

    def _keyed(self, nodes: np.ndarray, seed: int) -> dict:
        """``keys`` (global ids, else local ids) and ``batch_seed`` for the "blocks" layout."""
        if self.layout != "blocks":
            return {}
        keys = self._keys[nodes] if self._has_keys else nodes
        return {"layout": "blocks", "keys": torch.from_numpy(np.ascontiguousarray(keys)),
                "batch_seed": int(seed)}
