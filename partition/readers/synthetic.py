"""The built-in synthetic graph: heavy-tailed, homophilous, with real communities.

Every node has a class and a place on a latent ring (its "geography"). Nodes of one
class sit on that class's own copy of the ring in a random order, so node ids carry no
structure. Each node ``u`` sends ``Poisson(w_u * degree / 2)`` edges, ``w_u`` drawn
from a Pareto law (heavy-tailed degrees). An edge goes to u's own class with
probability ``homophily``, else to another class; then, with probability
``local`` (default 0.85), to a node of that class near u on the ring (a window), else to a
node of that class chosen anywhere in proportion to its weight (hubs attract edges).

The ring is what makes partitioning matter: METIS can cut it into arcs and lose only the
long-range edges, while a random partition cuts almost everything. Homophily and
feature noise are set so that a 2-layer GCN clearly beats an MLP without reaching
100%, so a bad partition can cost accuracy (``benchmarks/synthetic_check.py``).

Generation is deterministic and chunked: chunk ``j`` of edges or features is drawn
from ``np.random.default_rng([seed, stream, j])``, so ``edge_chunks`` regenerates each
chunk on every pass and holds nothing per edge between chunks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import numpy as np

from partition.errors import InputError
from partition.readers.source_graph import SourceGraph

NODE_CHUNK = 1 << 17
"""Nodes per generated chunk; part of the graph's definition (changing it changes the graph)."""
WINDOW = 16
"""Half-width, in same-class ring slots, of a low-degree node's local neighbourhood."""
PARETO_EXPONENT = 2.5
"""Exponent of the density of node weights: P(w) ~ w^-2.5 (finite mean, heavy tail)."""
CLASS_SKEW = 0.5
"""Class sizes proportional to (c + 1)^-0.5: mildly imbalanced, as in real data."""

# Streams of the per-chunk generators; distinct so that no two draws share a sequence.
_LAYOUT, _EDGES, _CENTROIDS, _FEATURES, _SPLIT = range(5)


@dataclass(frozen=True)
class SyntheticSpec:
    """Parameters of the synthetic graph; the defaults are the issue-4 benchmark graph."""

    nodes: int = 100_000
    degree: float = 18.0
    """Target mean undirected degree (before duplicate edges are merged)."""
    classes: int = 16
    features: int = 64
    homophily: float = 0.35
    """Share of edges whose two ends have the same class."""
    noise: float = 4.5
    """Standard deviation of the Gaussian feature noise around the class centroid."""
    local: float = 0.85
    """Share of edges that stay near their source on the latent ring: how partitionable the
    graph is. The default is harsher than real graphs (64-part METIS cut 23% at 10^6
    nodes); 0.96 comes close to ogbn-products' published 13.5% (12.6%)."""
    seed: int = 0
    train: float = 0.6
    val: float = 0.2
    test: float = -1.0
    """Split fractions. ``test`` < 0 (the default) gives the test split every other node;
    ``test`` >= 0 leaves the nodes of no split out of every split, as ogbn-papers100M
    leaves 98.6% of its nodes (their labels are generated but never read)."""

    def __post_init__(self) -> None:
        checks = [
            ("classes", self.classes >= 2, "must be >= 2"),
            ("nodes", self.nodes >= self.classes, f"must be >= classes ({self.classes})"),
            ("degree", 0 < self.degree <= self.nodes - 1, f"must be in (0, nodes-1={self.nodes - 1}]"),
            ("features", self.features >= 1, "must be >= 1"),
            ("homophily", 0.0 <= self.homophily <= 1.0, "must be in [0, 1]"),
            ("local", 0.0 <= self.local <= 1.0, "must be in [0, 1]"),
            ("noise", self.noise >= 0.0, "must be >= 0"),
            ("seed", self.seed >= 0, "must be >= 0"),
            ("train", 0.0 < self.train < 1.0, "must be in (0, 1)"),
            ("val", 0.0 <= self.val < 1.0, "must be in [0, 1)"),
            ("val", self.train + self.val < 1.0, "train + val must be < 1 (test gets the rest)"),
            ("test", self.test < 0 or self.train + self.val + self.test <= 1.0,
             "train + val + test must be <= 1"),
            ("test", self.test < 0 or self.test * self.nodes >= 0.5,
             f"must leave at least one test node of {self.nodes} (or be omitted: the rest)"),
        ]
        for key, ok, why in checks:
            if not ok:
                raise InputError(f"--input synthetic: {key}={getattr(self, key)} {why}")


_INT_KEYS = {"nodes", "classes", "features", "seed"}


def _parse_number(key: str, text: str) -> int | float:
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise InputError(f"--input synthetic: {key}={text!r} is not a number") from None
    if not np.isfinite(value):
        raise InputError(f"--input synthetic: {key}={text!r} is not finite")
    if key in _INT_KEYS:
        if value != int(value):
            raise InputError(f"--input synthetic: {key}={text!r} is not an integer")
        return int(value)
    return value


def parse_synthetic_spec(text: str) -> SyntheticSpec:
    """``"nodes=1e6,degree=20,seed=3"`` -> SyntheticSpec; every key optional, "" = defaults."""
    known = {f.name for f in fields(SyntheticSpec)}
    values: dict[str, int | float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep:
            raise InputError(f"--input synthetic: {item!r} is not key=value")
        if key not in known:
            raise InputError(f"--input synthetic: unknown key {key!r} (known: {', '.join(sorted(known))})")
        if key in values:
            raise InputError(f"--input synthetic: key {key!r} given twice")
        values[key] = _parse_number(key, raw.strip())
    return SyntheticSpec(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Layout:
    """Where every node sits: classes in contiguous blocks of ``order``, ring order inside."""

    y: np.ndarray  # int64[N] class of each node
    order: np.ndarray  # int64[N] node ids by (class, ring slot)
    slot: np.ndarray  # int64[N] inverse of order
    start: np.ndarray  # int64[C] first index in order of each class
    size: np.ndarray  # int64[C] nodes per class
    weight: np.ndarray  # float64[N] Pareto weight of each node (mean 1)
    cum_weight: np.ndarray  # float64[N+1] cumulative weight along order


def _class_sizes(nodes: int, classes: int) -> np.ndarray:
    share = (np.arange(classes) + 1.0) ** -CLASS_SKEW
    size = np.maximum(1, np.floor(share / share.sum() * nodes)).astype(np.int64)
    size[0] += nodes - size.sum()  # rounding remainder to the largest class
    return size


def _layout(spec: SyntheticSpec) -> _Layout:
    rng = np.random.default_rng([spec.seed, _LAYOUT])
    size = _class_sizes(spec.nodes, spec.classes)
    start = np.concatenate(([0], np.cumsum(size)[:-1])).astype(np.int64)
    order = rng.permutation(spec.nodes).astype(np.int64)
    slot = np.empty_like(order)
    slot[order] = np.arange(spec.nodes, dtype=np.int64)
    y = np.repeat(np.arange(spec.classes, dtype=np.int64), size)[slot]
    weight = (1.0 - rng.random(spec.nodes)) ** (-1.0 / (PARETO_EXPONENT - 1.0))
    weight /= weight.mean()
    cum_weight = np.concatenate(([0.0], np.cumsum(weight[order])))
    return _Layout(y, order, slot, start, size, weight, cum_weight)


def _chunk_edges(spec: SyntheticSpec, lay: _Layout, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([spec.seed, _EDGES, chunk])
    lo, hi = chunk * NODE_CHUNK, min(spec.nodes, (chunk + 1) * NODE_CHUNK)
    out_degree = rng.poisson(lay.weight[lo:hi] * (spec.degree / 2.0))
    src = np.repeat(np.arange(lo, hi, dtype=np.int64), out_degree)
    m = src.shape[0]
    own = lay.y[src]
    other = (own + rng.integers(1, spec.classes, m)) % spec.classes
    target = np.where(rng.random(m) < spec.homophily, own, other)
    t_start, t_size = lay.start[target], lay.size[target]
    # Local: the slot of the same ring position in the target class, plus a window offset
    # that widens with the source's degree so hubs do not pile edges onto a few slots.
    ring_pos = (lay.slot[src] - lay.start[own]) / lay.size[own]
    half = WINDOW + np.repeat(out_degree, out_degree)
    step = rng.integers(1, half + 1) * rng.choice(np.array([-1, 1]), m)
    local = t_start + (np.floor(ring_pos * t_size).astype(np.int64) + step) % t_size
    # Long range: anywhere in the target class, in proportion to weight. Only the edges
    # that go far (1 - local of them) are searched, their queries in sorted order: random
    # binary searches over the N-long cumulative weights were ~all of the generation time
    # at 2.5·10^7 nodes. The draws (and so the graph) are those of searching every edge.
    u = rng.random(m)
    far = np.flatnonzero(rng.random(m) >= spec.local)
    t_start, t_size = t_start[far], t_size[far]
    w_lo, w_hi = lay.cum_weight[t_start], lay.cum_weight[t_start + t_size]
    query = w_lo + u[far] * (w_hi - w_lo)
    order = np.argsort(query, kind="stable")
    pick = np.empty(far.shape[0], dtype=np.int64)
    pick[order] = np.searchsorted(lay.cum_weight, query[order], side="right") - 1
    local[far] = np.clip(pick, t_start, t_start + t_size - 1)
    dst = lay.order[local]
    return src, dst


def _features(spec: SyntheticSpec, y: np.ndarray) -> np.ndarray:
    centroids = np.random.default_rng([spec.seed, _CENTROIDS]).standard_normal(
        (spec.classes, spec.features)).astype(np.float32)
    x = np.empty((spec.nodes, spec.features), dtype=np.float32)
    for chunk, lo in enumerate(range(0, spec.nodes, NODE_CHUNK)):
        hi = min(spec.nodes, lo + NODE_CHUNK)
        rng = np.random.default_rng([spec.seed, _FEATURES, chunk])
        x[lo:hi] = rng.standard_normal((hi - lo, spec.features), dtype=np.float32)
        x[lo:hi] *= np.float32(spec.noise)
        x[lo:hi] += centroids[y[lo:hi]]
    return x


def _splits(spec: SyntheticSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = np.random.default_rng([spec.seed, _SPLIT]).permutation(spec.nodes).astype(np.int64)
    n_train = int(round(spec.train * spec.nodes))
    n_val = int(round(spec.val * spec.nodes))
    end = spec.nodes if spec.test < 0 else min(spec.nodes, n_train + n_val + int(round(spec.test * spec.nodes)))
    cut = perm[:n_train], perm[n_train:n_train + n_val], perm[n_train + n_val:end]
    return tuple(np.sort(part) for part in cut)  # type: ignore[return-value]


def make_synthetic(spec: SyntheticSpec, name: str | None = None) -> SourceGraph:
    """Build the graph of ``spec``; edges are regenerated chunk by chunk on each pass."""
    lay = _layout(spec)
    num_chunks = -(-spec.nodes // NODE_CHUNK)

    def edge_chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for chunk in range(num_chunks):
            yield _chunk_edges(spec, lay, chunk)

    train_idx, val_idx, test_idx = _splits(spec)
    return SourceGraph(
        name=name or f"synthetic:{','.join(f'{f.name}={getattr(spec, f.name)}' for f in fields(spec))}",
        num_nodes=spec.nodes, edge_chunks=edge_chunks, x=_features(spec, lay.y), y=lay.y,
        num_classes=spec.classes, train_idx=train_idx, val_idx=val_idx, test_idx=test_idx,
    )
