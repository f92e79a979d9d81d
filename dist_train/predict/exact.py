"""Exact full-neighbourhood inference across ranks, one layer at a time (issue 11).

Each rank computes layer l for its own (inner) nodes, part by part in chunks of targets.
A target's row is complete in its part's shard at every halo depth (FORMAT.md), so a
chunk is a 1-hop subgraph taking every neighbour (the sampler with fanout -1, the same
edge weights and self loops as training). Its sources' layer l-1 rows come from their
owners: ``dist_train.sampling.fetch.fetch_rows`` asks each owner rank for the global ids
it owns in one all-to-all and gets the rows back in a second (``dist_train.exchange``).
Owners are read from the shard (``halo_part.npy`` and the O(P) part-to-rank plan),
never from an O(N) map. The result is one process's forward pass on the whole graph,
for any number of parts and any halo depth (DGL's and PyG's layer-wise ``inference``
recipe, made distributed).

Memory per rank: one layer's outputs for its own nodes (read by owners), the previous
layer's (served to others), and one chunk's boundary rows.

Lockstep: every rank makes the same number of ``fetch_rows`` calls per layer (the
maximum over ranks of its chunk count; a rank without work asks for nothing), so the
collectives never wait on a rank that has left the loop.

Resumable: with a :class:`LayerFiles` store a finished (layer, part) is written to disk
and, on a rerun, loaded instead of recomputed; owners still serve rows from it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dist_train.runtime import process_group as pg
from dist_train.sampling.exact import AllToAll
from dist_train.sampling.fetch import FetchStats, RowStore, fetch_rows
from dist_train.sampling.sampler import NeighborSampler
from partition.store.format import Partition
from partition.store.npy_stream import sha256_file


@dataclass
class RankParts:
    """A rank's parts as stored (inner rows complete) and where every part lives."""

    parts: list[Partition]
    part_rank: np.ndarray
    """int64 [P]: the rank holding each part (the partition book, O(P))."""
    rank: int
    world_size: int


def rank_parts(data_dir: str | Path, rank: int, world_size: int,
               loaded: list[Partition] | None = None) -> RankParts:
    """This rank's parts under the training plan (``assign_parts`` on the manifest's train
    counts), memory-mapped; DatasetError / InputError as ``load_partition`` and ``assign_parts``.

    ``loaded``: parts already open (``LocalGraph.stored``), used instead of mapping the
    same files again when they are this rank's parts (a second mapping counts every page
    twice in RSS)."""
    from dist_train.data.shards import assign_parts
    from partition import load_manifest, load_partition

    manifest = load_manifest(data_dir)
    plan = assign_parts([int(p["num_train"]) for p in manifest["parts"]], world_size)
    part_rank = np.empty(manifest["num_parts"], dtype=np.int64)
    for r, ps in enumerate(plan):
        part_rank[ps] = r
    if loaded is not None and [p.part_id for p in loaded] == list(plan[rank]):
        return RankParts(list(loaded), part_rank, rank, world_size)
    return RankParts([load_partition(data_dir, p) for p in plan[rank]], part_rank, rank, world_size)


class OwnNodes:
    """The rank's inner nodes over all its parts, sorted by global id (the rows it serves)."""

    def __init__(self, parts: list[Partition]) -> None:
        inner = [np.asarray(p.global_ids[:p.num_inner]) for p in parts]
        self.gids = np.sort(np.concatenate(inner)) if inner else np.empty(0, dtype=np.int64)
        self.part_pos = [np.searchsorted(self.gids, g) for g in inner]
        """int64 [num_inner of part k]: row of each of part k's inner nodes."""

    @property
    def count(self) -> int:
        return int(self.gids.shape[0])

    def features(self, parts: list[Partition], block: int = 1 << 16) -> np.ndarray:
        """[count, F]: the own nodes' stored features in ``gids`` order. One part's inner rows
        are already in that order: they are returned as stored (memory-mapped, the stored
        dtype; ``fetch_rows`` casts what it gathers to float32), so evaluation adds no copy
        of the rank's features. Several parts: float32, copied block by block."""
        if len(parts) == 1:
            return parts[0].x[: parts[0].num_inner]
        out = np.empty((self.count, parts[0].x.shape[1]), dtype=np.float32)
        for p, pos in zip(parts, self.part_pos, strict=True):
            for lo in range(0, p.num_inner, block):
                hi = min(lo + block, p.num_inner)  # x also holds the stored halo rows
                out[pos[lo:hi]] = np.asarray(p.x[lo:hi], dtype=np.float32)
        return out


class LayerFiles:
    """``DIR/layer-{l}/part-{p:05d}.npy``: one finished layer of one part, float32
    [num_inner, width] in the part's inner order, with ``part-{p:05d}.npy.sha256`` beside
    it (the file's sha256, hex). Written to a temporary name, fsynced and renamed, the
    checksum last, so a file is reused only when it is complete and unchanged: a killed
    rank's half file, or a saved file corrupted in place with its shape intact (issue 11
    review), is recomputed, never served to the other ranks."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.reused = 0
        """How many (layer, part) results :meth:`load` returned (not recomputed)."""

    def path(self, layer: int, part_id: int) -> Path:
        return self.root / f"layer-{layer}" / f"part-{part_id:05d}.npy"

    @staticmethod
    def _digest_path(path: Path) -> Path:
        return path.with_name(path.name + ".sha256")

    def load(self, layer: int, part_id: int, shape: tuple[int, int]) -> np.ndarray | None:
        """The saved rows, or None when absent, of another shape, or not matching the
        sha256 saved with them (then recomputed). Reads the file once to hash it."""
        path = self.path(layer, part_id)
        try:
            want = self._digest_path(path).read_text().strip()
            if sha256_file(path) != want:
                return None
            a = np.load(path, mmap_mode="r")
        except (OSError, ValueError):
            return None
        if a.shape != shape or a.dtype != np.float32:
            return None
        self.reused += 1
        return a

    def save(self, layer: int, part_id: int, rows: np.ndarray) -> None:
        path = self.path(layer, part_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._digest_path(path).unlink(missing_ok=True)  # no stale checksum vouches for the new file
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(rows, dtype=np.float32))
            f.flush()
            os.fsync(f.fileno())
        digest = sha256_file(tmp)
        os.replace(tmp, path)
        dtmp = tmp.with_name(tmp.name + ".sha256")
        with open(dtmp, "w") as f:
            f.write(digest + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(dtmp, self._digest_path(path))


def exact_capable(model: torch.nn.Module) -> bool:
    """The built-in ``GNN`` with a layer-wise exact layer (SAGE, "global" GCN); a user's
    model (``model/custom.py``) is evaluated by its own paths."""
    from dist_train.model.models import GNN

    return isinstance(model, GNN) and model.layerwise_exact


def _out_width(model: torch.nn.Module, layer: int) -> int:
    return int(model.convs[layer].out_channels)


def _owners(part: Partition, local: np.ndarray, rank: int, part_rank: np.ndarray) -> np.ndarray:
    """int64 rank owning each local id of ``part`` (inner: this rank; halo: from halo_part)."""
    out = np.full(local.shape[0], rank, dtype=np.int64)
    halo = local >= part.num_inner
    out[halo] = part_rank[np.asarray(part.halo_part)[local[halo] - part.num_inner]]
    return out


@dataclass
class _Chunk:
    k: int
    lo: int
    hi: int


def _plan(shard: RankParts, own: OwnNodes, layer: int, width: int, h: np.ndarray,
          files: LayerFiles | None, chunk: int) -> list[_Chunk]:
    """Chunks still to compute; saved parts are loaded into ``h`` instead."""
    todo = []
    for k, part in enumerate(shard.parts):
        saved = files.load(layer, part.part_id, (part.num_inner, width)) if files else None
        if saved is not None:
            h[own.part_pos[k]] = saved
            continue
        todo += [_Chunk(k, lo, min(lo + chunk, part.num_inner)) for lo in range(0, part.num_inner, chunk)]
    return todo


@torch.no_grad()
def exact_layers(model: torch.nn.Module, shard: RankParts, exchange: AllToAll, chunk: int,
                 device: torch.device, files: LayerFiles | None = None,
                 on_chunk: Callable[[int], None] | None = None) -> tuple[OwnNodes, list[np.ndarray], FetchStats]:
    """(own nodes, ``outs``, exchange counts): ``outs[l]`` float32 [own.count, width_l] is
    layer l's output (after its ReLU/norm; the last one is the logits) for the rank's own
    nodes in ``own.gids`` order. Only the last two layers' outputs are kept (earlier
    entries are None): the embeddings and the logits.

    ``model`` must be ``layerwise_exact`` (SAGE, "global" GCN); ValueError otherwise.
    ``on_chunk(n)`` is told of every n targets computed (progress bars).
    """
    if not exact_capable(model):
        raise ValueError("exact inference needs a layer-wise exact model (sage, or gcn with gcn_norm=global)")
    model.eval()
    own = OwnNodes(shard.parts)
    samplers = [NeighborSampler(p.indptr, p.indices, [-1], degree=p.degree, global_ids=p.global_ids)
                for p in shard.parts]
    prev = own.features(shard.parts) if shard.parts else np.empty((0, model.convs[0].in_channels), np.float32)
    outs: list = []
    stats = FetchStats()
    for layer in range(model.num_layers):
        width = _out_width(model, layer)
        h = np.empty((own.count, width), dtype=np.float32)
        todo = _plan(shard, own, layer, width, h, files, chunk)
        store = RowStore(shard.rank, own.gids, own.count, own.count, prev)
        remaining = [sum(c.k == k for c in todo) for k in range(len(shard.parts))]
        for i in range(pg.all_reduce_max(len(todo))):
            if i >= len(todo):  # nothing left here: still answer the others' requests
                fetch_rows(store, exchange, shard.world_size, np.empty(0, np.int64), np.empty(0, np.int64))
                continue
            c = todo[i]
            part = shard.parts[c.k]
            sub = samplers[c.k].sample(np.arange(c.lo, c.hi, dtype=np.int64), seed=0)
            local = sub.node_ids.numpy()
            gids = np.asarray(part.global_ids)[local]
            rows, st = fetch_rows(store, exchange, shard.world_size, gids,
                                  _owners(part, local, shard.rank, shard.part_rank))
            stats.add(st)
            y = model.layer(layer, torch.from_numpy(rows).to(device), sub.to(device))
            h[own.part_pos[c.k][c.lo:c.hi]] = y.float().cpu().numpy()
            remaining[c.k] -= 1
            if remaining[c.k] == 0 and files is not None:
                files.save(layer, part.part_id, h[own.part_pos[c.k]])
            if on_chunk is not None:
                on_chunk(c.hi - c.lo)
        outs.append(h)
        if layer >= 2:
            outs[layer - 2] = None  # neither embeddings nor logits: free it
        prev = h
    return own, outs, stats
