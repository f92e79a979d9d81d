"""``sampler.mode=exact`` in the trainer on real gloo ranks (issue 15): the batches the
prefetch thread builds with all-to-alls equal the whole graph's sample and rows, and a
run trains with its exchange figures in metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from dist_helpers import run_ranks
from test_train import SMALL, N, write_parts

from dist_train import cli
from dist_train.config.schema import load_config
from dist_train.data.exact_graph import load_exact_graph
from dist_train.data.shards import load_local_graph
from dist_train.loop.trainer import Trainer
from dist_train.runtime.env import World
from dist_train.sampling.sampler import NeighborSampler

FANOUTS = [5, 4]


def _exact_trainer(rank: int, world_size: int, data: str, run_dir: str, extra: list[str]) -> Trainer:
    cfg = load_config(None, [f"data.path={data}", *SMALL, "sampler.mode=exact",
                             f"sampler.fanouts=[{FANOUTS[0]},{FANOUTS[1]}]", *extra])
    world = World(rank, world_size, rank, world_size, "127.0.0.1", 0, "test")
    graph, manifest, _ = cli.prepare_rank(cfg, world)
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return Trainer(cfg, graph, int(manifest["num_classes"]), rank, world_size, torch.device("cpu"),
                   Path(run_dir))


def _compare_batches(rank: int, world_size: int, data: str, whole: str, run_dir: str) -> dict:
    trainer = _exact_trainer(rank, world_size, data, run_dir, ["sampler.eval_fanouts=[-1,-1]"])
    g = trainer.graph
    one = load_local_graph(whole, [0])
    ref = NeighborSampler(one.indptr, one.indices, FANOUTS, degree=one.degree, global_ids=one.global_ids)
    same = []
    for step in range(3):
        seeds = np.asarray(g.train_idx[: 5 + 9 * rank + step])  # uneven on purpose
        batch = trainer.exact(seeds, 100 + step, torch.device("cpu"))
        want = ref.sample(np.asarray(g.global_ids)[seeds], 100 + step)  # one part: local == global
        same.append(np.array_equal(batch.subgraph.edge_index.numpy(), want.edge_index.numpy())
                    and np.array_equal(batch.subgraph.edge_weight.numpy(), want.edge_weight.numpy())
                    and np.array_equal(batch.x.numpy(), np.asarray(one.x)[want.node_ids.numpy()])
                    and np.array_equal(batch.y.numpy(), np.asarray(one.y)[want.node_ids.numpy()[: seeds.size]]))
    return {"same": same, "record": trainer.exact.epoch_record(3), "eval": trainer.evaluate()}


def _evaluate_whole(rank: int, world_size: int, whole: str, run_dir: str) -> dict:
    cfg = load_config(None, [f"data.path={whole}", *SMALL, "sampler.eval_fanouts=[-1,-1]",
                             f"sampler.fanouts=[{FANOUTS[0]},{FANOUTS[1]}]"])
    graph, manifest, _ = cli.prepare_rank(cfg, World(0, 1, 0, 1, "127.0.0.1", 0, "test"))
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    trainer = Trainer(cfg, graph, int(manifest["num_classes"]), 0, 1, torch.device("cpu"), Path(run_dir))
    return trainer.evaluate()  # the same initial weights as every rank above (train.seed)


@pytest.mark.multiproc
@pytest.mark.slow
def test_exact_batches_equal_the_whole_graph(tmp_path):
    train = np.arange(0, N, 2)  # features stored once plus a 10% cache: the setting of issue 15
    data = write_parts(tmp_path / "p4", [300, 600, 900], train, hops=0, cache_budget=0.1)
    whole = write_parts(tmp_path / "p1", [N], train, hops=0)
    out = run_ranks(_compare_batches, 2, str(data), str(whole), str(tmp_path / "run"), timeout=240)
    (one,) = run_ranks(_evaluate_whole, 1, str(whole), str(tmp_path / "one"), timeout=120)
    assert out[0]["eval"] == out[1]["eval"]  # all-reduced
    for key in ("val_acc", "test_acc", "num_val", "num_test"):  # exact eval = the whole graph's
        assert out[0]["eval"][key] == pytest.approx(one[key], abs=1.5 / one["num_test"])
    for r in out:
        assert all(r["same"]), r["same"]
        rec = r["record"]  # sampling requests and rows crossed ranks; the cache served some
        assert rec["exchange_bytes_per_step"] > 0 and rec["remote_rows"] > 0 and rec["cache_hits"] > 0


def _fit(rank: int, world_size: int, data: str, run_dir: str) -> dict:
    trainer = _exact_trainer(rank, world_size, data, run_dir, ["train.epochs=2"])
    final = trainer.fit()
    # numpy, not a tensor: a tensor crosses the result queue as a file descriptor that is
    # gone once the rank exits
    return {"final": final, "params": torch.cat([p.detach().flatten() for p in trainer.model.parameters()]).numpy()}


@pytest.mark.multiproc
@pytest.mark.slow
def test_an_exact_run_trains_and_records_its_exchange(tmp_path):
    data = write_parts(tmp_path / "p4", [250, 600, 800], np.arange(0, N, 3), hops=1)
    out = run_ranks(_fit, 2, str(data), str(tmp_path / "run"), timeout=300)
    assert np.array_equal(out[0]["params"], out[1]["params"])  # DDP kept the ranks identical
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if "epoch" in r and "train_loss" in r]
    assert len(epochs) == 2 and all(r["exchange_bytes_per_step"] > 0 for r in epochs)
    assert out[0]["final"]["epochs_run"] == 2


@pytest.mark.parametrize("ranks", [[[0, 1, 2, 3]], [[0, 2], [1, 3]], [[0], [1, 2], [3]]])
def test_exact_graph_holds_rows_once_plus_the_cache_and_knows_owners(tmp_path, ranks):
    data = write_parts(tmp_path / "h0", [300, 600, 900], np.arange(0, N, 3), hops=0, cache_budget=0.1)
    node_part = np.load(data / "node_part.npy")  # the test may read it; a rank never does
    whole = load_local_graph(str(write_parts(tmp_path / "p1", [N], np.arange(0, N, 3), hops=0)), [0])
    book = np.empty(4, dtype=np.int64)
    for r, ps in enumerate(ranks):
        book[ps] = r
    for r, ps in enumerate(ranks):
        g = load_exact_graph(str(data), ps, r, ranks)
        ids = np.asarray(g.global_ids)
        assert np.array_equal(g.owner, book[node_part[ids]])
        assert np.array_equal(g.x, np.asarray(whole.x)[ids[: g.x.shape[0]]])
        cached = g.x.shape[0] - g.num_inner
        assert cached <= sum(int(0.1 * np.sum(node_part == p)) for p in ps)
        assert (cached > 0) == (len(ranks) > 1)  # a rank holding every part has no boundary
        for v in range(g.num_inner):  # every inner row complete, in global-id order
            row = ids[g.indices[g.indptr[v]:g.indptr[v + 1]]]
            u = ids[v]
            assert np.array_equal(row, whole.indices[whole.indptr[u]:whole.indptr[u + 1]])


def _mappings_after_eval(rank: int, world_size: int, data: str, run_dir: str) -> dict:
    trainer = _exact_trainer(rank, world_size, data, run_dir, ["sampler.eval_fanouts=[-1,-1]"])
    trainer.evaluate()
    part = trainer.graph.part_ids[0]
    x_file = str(Path(data).resolve() / f"part-{part:05d}" / "x.npy")
    with open("/proc/self/maps") as f:
        maps = sum(line.rstrip().endswith(x_file) for line in f)
    return {"maps": maps, "same": trainer.eval_parts.parts[0] is trainer.graph.stored[0]}


@pytest.mark.multiproc
def test_exact_eval_reuses_the_rank_s_mapped_part(tmp_path):
    """One part per rank: the layer-wise evaluation reads the part the rank trains on, not a
    second mapping of its files (each mapped page would count twice in RSS: rss_share.py
    measured the run's share at 6.2 with it)."""
    data = write_parts(tmp_path / "p2", [N // 2], np.arange(0, N, 2), hops=0, cache_budget=0.1)
    for r in run_ranks(_mappings_after_eval, 2, str(data), str(tmp_path / "run"), timeout=240):
        assert r["same"] and r["maps"] == 1, r
