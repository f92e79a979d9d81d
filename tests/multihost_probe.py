"""One DDP step across simulated hosts, then every rank's parameters (tests/test_multihost.py).

``torchrun ... -m multihost_probe OUT``: joins the process group exactly as the trainer does
(the same interface choice, ``dist_train.netsetup.InterfaceSetter``), takes one optimizer step of
a small DDP model on rank-dependent inputs, all-gathers every rank's parameters and writes
``OUT/rank<r>.json`` with them, the host name and the interface variables it ran with.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from dist_train.cli import setup_logging
from dist_train.netsetup import InterfaceSetter
from dist_train.runtime import process_group as pg
from dist_train.runtime.env import discover_world_from_os


def main(out: str) -> int:
    world = discover_world_from_os()
    setup_logging(world.rank)
    with pg.distributed(world, device="cpu", timeout_s=60, before_init=InterfaceSetter(world, 60)):
        torch.manual_seed(0)
        model = DistributedDataParallel(torch.nn.Linear(4, 3))
        before = torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.full((8, 4), float(world.rank + 1))  # different data per rank: gradients differ
        model(x).pow(2).sum().backward()
        opt.step()
        after = torch.cat([p.detach().flatten() for p in model.parameters()]).tolist()
        every: list = [None] * world.world_size
        dist.all_gather_object(every, after)
        del model, opt
        gc.collect()  # DDP's reducer must go before the process group (gloo aborts otherwise)
    record = {"rank": world.rank, "host": socket.gethostname(), "before": before, "after": after,
              "every_rank": every, "master_addr": world.master_addr,
              "ifname": {v: os.environ.get(v) for v in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME")}}
    Path(out, f"rank{world.rank}.json").write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
