"""Sampling: the batch plan (seed nodes per step), the neighbour sampler and the background prefetcher."""
