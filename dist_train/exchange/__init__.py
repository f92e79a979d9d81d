"""Cross-rank exchange: the one module that moves rows between ranks (issues 11 and 15).

Exact sampling, exact layer-wise evaluation and prediction all send each rank's requests
to the owners of the rows and get the rows back with :class:`Exchange`, an all-to-all of
numpy arrays over ``torch.distributed`` (gloo or nccl; no RPC, no extra ports).
"""

from dist_train.exchange.alltoall import Exchange

__all__ = ["Exchange"]
