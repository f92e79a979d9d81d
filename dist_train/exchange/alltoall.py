"""An all-to-all of variable-length numpy arrays over one ``torch.distributed`` group.

Why not ``dist.all_to_all`` on a list of tensors: the receiver must know every incoming
length first. So one call is two collectives, the same on every rank whatever it sends
(lockstep: ranks that take equal steps can never wait on a rank that skipped one):
``all_to_all_single`` of the row counts (int64 [W]), then of the payload, flattened, with
those counts as split sizes. SALIENT++ moves its features the same way over NCCL.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.distributed as dist


class Exchange:
    """``exchange(send) -> recv``: ``send[r]`` goes to rank r; ``recv[r]`` came from rank r.

    Every array of one call has the same dtype and the same trailing shape (rows of width
    F, or scalars), on every rank; lengths may differ and may be 0. ``group`` is the
    process group (the default one when None; a background thread needs its own, made
    with ``dist.new_group`` on every rank, so its collectives never interleave with DDP's).
    Tensors travel on ``device`` (a GPU for nccl). ``bytes_sent`` / ``bytes_received``
    count payload bytes to and from other ranks (not to itself), for benchmarks.
    Raises ``ValueError`` on a list of the wrong length or mixed dtypes / shapes.
    """

    def __init__(self, group: dist.ProcessGroup | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.group = group
        self.device = torch.device(device)
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self.bytes_sent = 0
        self.bytes_received = 0
        self.calls = 0

    def __call__(self, send: Sequence[np.ndarray]) -> list[np.ndarray]:
        if len(send) != self.world_size:
            raise ValueError(f"exchange: {len(send)} arrays for {self.world_size} ranks")
        arrays = [np.ascontiguousarray(a) for a in send]
        dtype, tail = arrays[0].dtype, arrays[0].shape[1:]
        if any(a.dtype != dtype or a.shape[1:] != tail for a in arrays):
            raise ValueError("exchange: arrays of one call need one dtype and one row shape")
        width = int(np.prod(tail, dtype=np.int64))
        counts = torch.tensor([a.shape[0] for a in arrays], dtype=torch.int64)
        incoming = torch.empty_like(counts)
        self._a2a(incoming, counts, None, None)
        out_rows = incoming.tolist()
        flat = torch.from_numpy(np.concatenate([a.reshape(-1) for a in arrays]))
        recv = torch.empty(sum(out_rows) * width, dtype=flat.dtype)
        self._a2a(recv, flat, [n * width for n in out_rows], [int(n) * width for n in counts])
        self.calls += 1
        item = dtype.itemsize * width
        self.bytes_sent += item * int(counts.sum() - counts[self.rank])
        self.bytes_received += item * (sum(out_rows) - out_rows[self.rank])
        parts = np.split(recv.numpy(), np.cumsum([n * width for n in out_rows])[:-1])
        return [p.reshape((-1, *tail)) for p in parts]

    def any_true(self, flag: bool) -> bool:
        """Whether ``flag`` is True on any rank of the group: one all-reduce (MAX) of one
        int32 on the group's device. Lockstep like ``__call__``: every rank calls it."""
        t = torch.tensor([int(flag)], dtype=torch.int32, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.group)
        return bool(t.item())

    def _a2a(self, out: torch.Tensor, inp: torch.Tensor, out_split: list[int] | None,
             in_split: list[int] | None) -> None:
        if self.device.type == "cpu":
            dist.all_to_all_single(out, inp, out_split, in_split, group=self.group)
            return
        dev_out = torch.empty(out.shape, dtype=out.dtype, device=self.device)
        dist.all_to_all_single(dev_out, inp.to(self.device), out_split, in_split, group=self.group)
        out.copy_(dev_out.cpu())
