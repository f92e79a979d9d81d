"""GCN and GraphSAGE over a ``SampledSubgraph``, built from PyG's ``GCNConv`` / ``SAGEConv``.

Layer trimming (PyG ``trim_to_layer``): nodes and edges come ordered by hop, so layer
i of L only needs the nodes of hops 0..L-i and the edges of hops 0..L-1-i, and its
output is needed only for hops 0..L-1-i. Cutting by plain slicing means the last
layer touches only the edges into the seeds: most of the work of an untrimmed pass
is on outer hops whose outputs are never used. In the "blocks" layout (layer-wise MFG
sampling, ``train.batch_plan=global``) layer i reads block L-1-i alone; either way the
slices come from :meth:`SampledSubgraph.layer_edges`, the one place that knows layouts.
A "blocks" subgraph also carries the global ids that key dropout
(``csr_ops.relu_dropout``), so a seed's logits depend on nothing but its own neighbourhood.

GCN normalisation ("global", the default): ``GCNConv`` normalises by degrees inside
the sampled subgraph, which biases every node whose neighbours were subsampled. The
sampler instead weights edge j->i by ``(D_i/k_i) / sqrt((D_i+1)(D_j+1))`` with the
global degrees D stored in the shards, and this module adds the self loop
``1/(D_i+1)``: an unbiased estimate of full-graph GCN, exact when every neighbour is
taken. "sampled" keeps PyG's own normalisation inside the (trimmed) subgraph.

Speed ("global" GCN): the layer keeps ``GCNConv``'s parameters (``lin``, ``bias``; same
state dict) but runs the propagation as one fused CSR pass along the sampler's
``target_ptr`` (``dist_train.model.csr_ops``), and in the cheaper order: ``(A X) W`` when the
layer widens (aggregate the narrow input, then transform only the targets), ``A (X W)``
when it narrows. ``A (X W) = (A X) W``, so the result is the same.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from dist_train.model.csr_ops import csr_aggregate, relu_dropout
from dist_train.model.custom import build_custom_model, is_custom
from dist_train.sampling.sampler import LayerEdges, SampledSubgraph

ARCHS = ("gcn", "sage")
NORMS = ("none", "batch", "layer")
GCN_NORMS = ("global", "sampled")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(allowed)}")


def _make_norm(kind: str, dim: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(dim)
    if kind == "layer":
        return nn.LayerNorm(dim)
    return nn.Identity()


class GNN(nn.Module):
    """``num_layers`` convolutions; ReLU, optional norm and dropout between them.

    ``trim`` (default True) is the fast path; False runs every layer on the whole
    subgraph (same seed logits for SAGE and global-GCN; kept for tests).
    """

    def __init__(self, arch: str, in_dim: int, hidden: int, num_classes: int, num_layers: int,
                 dropout: float, norm: str = "none", gcn_norm: str = "global",
                 trim: bool = True) -> None:
        super().__init__()
        _check_choice("arch", arch, ARCHS)
        _check_choice("norm", norm, NORMS)
        _check_choice("gcn_norm", gcn_norm, GCN_NORMS)
        if num_layers < 1:
            raise ValueError(f"num_layers: {num_layers} is not >= 1")
        self.arch, self.gcn_norm, self.dropout, self.trim = arch, gcn_norm, dropout, trim
        dims = [in_dim] + [hidden] * (num_layers - 1) + [num_classes]
        self.convs = nn.ModuleList(self._make_conv(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.norms = nn.ModuleList(_make_norm(norm, hidden) for _ in range(num_layers - 1))

    def _make_conv(self, in_dim: int, out_dim: int) -> nn.Module:
        # PyG is imported only where its layers run: it costs ~110 MiB of RSS per rank
        if self.arch == "sage":
            from torch_geometric.nn import SAGEConv

            return SAGEConv(in_dim, out_dim, aggr="mean")
        if self.gcn_norm == "global":
            return GlobalGCNLayer(in_dim, out_dim)
        from torch_geometric.nn import GCNConv

        return GCNConv(in_dim, out_dim)

    @property
    def num_layers(self) -> int:
        return len(self.convs)

    def forward(self, x: torch.Tensor, sub: SampledSubgraph) -> torch.Tensor:
        """Logits of the seeds, ``[sub.num_seeds, num_classes]``; ``x`` is aligned with ``sub.node_ids``."""
        L = self.num_layers
        if sub.num_layers != L:
            raise ValueError(f"subgraph has {sub.num_layers} hops but the model {L} layers")
        self._check_weights(sub)
        for i in range(L):
            if self.trim or sub.layout == "blocks":  # a block is already its layer's edges
                le = sub.layer_edges(i, L)
            else:
                n = sub.num_nodes
                le = LayerEdges(n, n, slice(0, sub.num_sampled_edges_total), None)
            x = self._step(i, x[: le.num_src], sub, le)
        return x[: sub.num_seeds]

    def _check_weights(self, sub: SampledSubgraph) -> None:
        if self.arch == "gcn" and self.gcn_norm == "global" and sub.edge_weight is None:
            raise ValueError("gcn_norm='global' needs edge weights: give the sampler the degrees")

    @property
    def layerwise_exact(self) -> bool:
        """True when a layer's output at a node depends only on that node's row and its
        neighbours' inputs, so layers can be evaluated one at a time over the whole graph
        (``dist_train.model.layerwise``). PyG's "sampled" GCN normalises by subgraph degrees."""
        return self.arch == "sage" or self.gcn_norm == "global"

    def layer(self, i: int, x: torch.Tensor, sub: SampledSubgraph) -> torch.Tensor:
        """Layer ``i`` alone, from ``x`` (aligned with ``sub.node_ids``) to ``sub``'s seeds,
        over all of ``sub``'s edges (a 1-hop subgraph); norm and ReLU follow as in
        ``forward``, dropout only when training."""
        self._check_weights(sub)
        le = LayerEdges(sub.num_nodes, sub.num_seeds, slice(0, sub.num_sampled_edges_total),
                        None if sub.target_ptr is None else sub.target_ptr[: sub.num_seeds + 1])
        return self._step(i, x, sub, le)

    def _step(self, i: int, x: torch.Tensor, sub: SampledSubgraph, le: LayerEdges) -> torch.Tensor:
        """Layer ``i``'s convolution, then (between layers) norm, ReLU and dropout."""
        x = self._conv(self.convs[i], x, sub, le)
        if i < self.num_layers - 1:
            keys = None if sub.keys is None else sub.keys[: le.num_dst]
            x = relu_dropout(self.norms[i](x), self.dropout, self.training, keys, sub.batch_seed, i)
        return x

    def _conv(self, conv: nn.Module, x: torch.Tensor, sub: SampledSubgraph,
              le: LayerEdges) -> torch.Tensor:
        """One layer from ``x`` (source nodes) to the first ``le.num_dst`` nodes over ``le.edges``."""
        n_dst = le.num_dst
        edge_index = sub.edge_index[:, le.edges]
        if self.arch == "sage":
            return conv((x, x[:n_dst]), edge_index)  # bipartite: lin_r only on the targets
        if self.gcn_norm == "sampled":
            return conv(x, edge_index)[:n_dst]
        assert sub.edge_weight is not None and sub.degree is not None
        ptr = _target_ptr(le, edge_index, n_dst)
        # self loop 1/(D_i + 1) as a diagonal term of the same pass
        args = (ptr, edge_index[0], sub.edge_weight[le.edges], 1.0 / (sub.degree[:n_dst] + 1.0))
        if conv.in_channels <= conv.out_channels:
            out = conv.lin(csr_aggregate(x, *args))
        else:
            out = csr_aggregate(conv.lin(x), *args)
        return out if conv.bias is None else out + conv.bias


class GlobalGCNLayer(nn.Module):
    """``GCNConv``'s parameters (``lin.weight``, ``bias``) without PyG's message passing.

    The "global" GCN only uses them (``GNN._conv`` propagates along the CSR), so this
    layer is a drop-in with the same state dict and, for the same torch seed, the same
    initial weights: PyG's ``GCNConv`` draws its glorot weights twice (once when its
    ``Linear`` is built, once in its own ``reset_parameters``), and so does this.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.lin = nn.utils.skip_init(nn.Linear, in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        bound = math.sqrt(6.0 / (in_channels + out_channels))
        with torch.no_grad():
            for _ in range(2):
                self.lin.weight.uniform_(-bound, bound)


def _target_ptr(le: LayerEdges, edge_index: torch.Tensor, n_dst: int) -> torch.Tensor:
    """Row pointer of the layer's ``n_dst`` targets over its ``edge_index`` (grouped by target)."""
    if le.target_ptr is not None:
        return le.target_ptr
    targets = torch.arange(n_dst + 1, device=edge_index.device)
    return torch.searchsorted(edge_index[1].contiguous(), targets)


def build_model(arch: str, in_dim: int, hidden: int, num_classes: int, num_layers: int,
                dropout: float, norm: str = "none", gcn_norm: str = "global",
                kwargs: dict[str, Any] | None = None) -> nn.Module:
    """A ``GNN``, or the user's class for ``arch="package.module:ClassName"``
    (``dist_train.model.custom``); forward ``(x, sub) -> [sub.num_seeds, num_classes]`` logits.

    ``kwargs`` (``model.kwargs``) go to a user's constructor only. Parameters depend only
    on the torch RNG state (call ``torch.manual_seed`` first). Raises InputError for a
    user's class that cannot be imported or built.
    """
    if is_custom(arch):
        keys = {"hidden": hidden, "num_layers": num_layers, "dropout": dropout, "norm": norm,
                "gcn_norm": gcn_norm}
        return build_custom_model(arch, in_dim, num_classes, keys, dict(kwargs or {}))
    return GNN(arch, in_dim, hidden, num_classes, num_layers, dropout, norm, gcn_norm)
