"""A graph attention network (Veličković et al., ICLR 2018) from PyG's ``GATConv``, plugged
into giantgcn as a user's own model:

    giantgcn-train --data data/cora-4 --config configs/cora.yaml \\
        model.arch=examples/gat.py:GAT model.kwargs='{heads: 8}'

(``model.arch=examples.gat:GAT`` works too where the repository root is on ``sys.path``,
e.g. ``torchrun ... -m dist_train`` started from it.)

The contract it follows is ``dist_train/model/custom.py``'s: the constructor takes
``in_dim`` / ``out_dim`` and the ``model.*`` keys it names (``hidden``, ``num_layers``,
``dropout``) plus ``model.kwargs`` (``heads``); ``forward(x, edge_index)`` is PyG style, so
giantgcn gives it the whole sampled subgraph and keeps the seeds' rows. Evaluation falls
back to full-neighbourhood sampled batches (attention is not layer-wise exact here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GATConv


class GAT(nn.Module):
    """``num_layers`` ``GATConv`` layers: ``heads`` concatenated heads of ``hidden // heads``
    channels each between layers (ELU, dropout), one averaged head at the output.

    ``x``: float32 ``[num_nodes, in_dim]``; ``edge_index``: int64 ``[2, num_edges]``
    (source, target); returns float32 ``[num_nodes, out_dim]`` logits.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 64, num_layers: int = 2,
                 dropout: float = 0.5, heads: int = 4) -> None:
        super().__init__()
        if heads < 1:
            raise ValueError(f"heads: {heads} is not >= 1")
        per_head = max(1, hidden // heads)
        dims = [in_dim] + [per_head * heads] * (num_layers - 1)
        self.convs = nn.ModuleList(GATConv(d, per_head, heads=heads, dropout=dropout) for d in dims[:-1])
        self.convs.append(GATConv(dims[-1], out_dim, heads=1, concat=False, dropout=dropout))
        self.dropout = dropout

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = F.elu(x)
        return x
