"""giantgcn distributed trainer: world discovery, process group, shard loading, sampling, training."""
