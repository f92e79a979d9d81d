"""Users' model classes that break the contract of ``dist_train/model/custom.py``, one way each.

Named by README's bad-input table as ``BROKEN_MODELS_PY:ClassName`` (a file path, as a
user outside the project would give it) and by ``tests/test_custom_model.py``.
"""

from __future__ import annotations

import torch
from torch import nn


class OneArgForward(nn.Module):
    """forward takes no graph at all."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class WrongWidth(nn.Module):
    """Returns one column too few: out_dim - 1 logits per seed."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, out_dim - 1)

    def forward(self, x: torch.Tensor, sub) -> torch.Tensor:  # noqa: ANN001 - any subgraph
        return self.lin(x[: sub.num_seeds])


class AllRows(nn.Module):
    """A (x, sub) model that forgets to keep only the seeds' rows."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor, sub) -> torch.Tensor:  # noqa: ANN001
        return self.lin(x)


class NeedsHeads(nn.Module):
    """Its constructor needs an argument giantgcn has no key for (model.kwargs would give it)."""

    def __init__(self, in_dim: int, out_dim: int, heads: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim, out_dim * heads)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class RaisesInForward(nn.Module):
    """Its forward multiplies by a weight of the wrong width."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(in_dim + 1, out_dim)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


NOT_A_MODULE = 3
