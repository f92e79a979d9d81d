"""Process group: collectives on real gloo ranks, disagreement and missing-rank errors."""

from __future__ import annotations

import time

import pytest
import torch
import torch.distributed as dist
from dist_helpers import RankFailure, run_ranks

from dist_train.runtime import process_group as pg
from dist_train.runtime.env import World, discover_world, free_port
from partition.errors import InputError


def _collectives(rank: int, world_size: int) -> dict:
    t = torch.tensor([rank + 1.0, 2.0])
    same = pg.all_reduce_sum(t)
    return {
        "tensor": t.tolist(), "in_place": same is t,
        "float": pg.all_reduce_sum(rank + 0.5),
        "list": pg.all_reduce_sum([rank, 1]),
        "max": pg.all_reduce_max(10 * rank + 3),
        "bcast": pg.broadcast_object({"from": rank} if rank == 1 else None, src=1),
        "backend": dist.get_backend(), "world": dist.get_world_size(),
    }


@pytest.mark.multiproc
def test_collectives_on_two_ranks():
    out = run_ranks(_collectives, 2)
    for r in out:
        assert r["tensor"] == [3.0, 4.0] and r["in_place"]
        assert r["float"] == 2.0 and r["list"] == [1.0, 2.0]
        assert r["max"] == 13
        assert r["bcast"] == {"from": 1}
        assert (r["backend"], r["world"]) == ("gloo", 2)


def _agreement(rank: int, world_size: int) -> tuple[str | None, str | None]:
    pg.check_same_across_ranks("config hash", "abc123")  # agreeing: no error
    pg.barrier()
    try:
        pg.check_same_across_ranks("manifest sha256", "aaaa" if rank == 0 else "bbbb")
    except RuntimeError as err:
        return None, str(err)
    return "no error", None


@pytest.mark.multiproc
def test_check_same_across_ranks_names_the_values():
    for ok, msg in run_ranks(_agreement, 2):
        assert ok is None  # both ranks raise, not just one
        assert "manifest sha256" in msg
        assert "'aaaa' on rank 0" in msg and "'bbbb' on rank 1" in msg


def _fails_on_rank_one(rank: int, world_size: int) -> int:
    if rank == 1:
        raise ValueError("boom from the test")
    return rank


def _hangs_on_rank_zero(rank: int, world_size: int) -> int:
    if rank == 0:
        time.sleep(60)
    return rank


@pytest.mark.multiproc
def test_run_ranks_reports_the_failing_rank():
    with pytest.raises(RankFailure) as err:
        run_ranks(_fails_on_rank_one, 2)
    assert "rank 1 raised" in str(err.value) and "ValueError: boom from the test" in str(err.value)


@pytest.mark.multiproc
def test_run_ranks_times_out_and_names_the_hung_rank():
    start = time.monotonic()
    with pytest.raises(RankFailure, match=r"rank 0 timed out"):
        run_ranks(_hangs_on_rank_zero, 2, timeout=5)
    assert time.monotonic() - start < 20


@pytest.mark.multiproc
@pytest.mark.parametrize("present_rank", [0, 1], ids=["rank1-missing", "rank0-missing"])
def test_missing_rank_fails_within_timeout(present_rank):
    port = free_port()
    world = World(present_rank, 2, present_rank, 2, "127.0.0.1", port, "test")
    start = time.monotonic()
    with pytest.raises(RuntimeError) as err:
        pg.init_distributed(world, device="cpu", timeout_s=4)
    elapsed = time.monotonic() - start
    msg = str(err.value)
    assert f"127.0.0.1:{port}" in msg and "expected 2 ranks" in msg, msg
    assert 3 <= elapsed < 15, elapsed
    assert not dist.is_initialized()


def _tcp_rank_one(port: int, results) -> None:
    world = World(1, 2, 1, 2, "127.0.0.1", port, "test")
    with pg.distributed(world, device="cpu", timeout_s=30):
        results.put(pg.all_reduce_sum(2.0))


@pytest.mark.multiproc
def test_tcp_rendezvous_with_late_rank_zero():
    # the production path (tcp://addr:port), rank 1 polling before rank 0 listens
    ctx = torch.multiprocessing.get_context("spawn")
    results, port = ctx.Queue(), free_port()
    child = ctx.Process(target=_tcp_rank_one, args=(port, results), daemon=True)
    child.start()
    try:
        time.sleep(1.0)
        with pg.distributed(World(0, 2, 0, 2, "127.0.0.1", port, "test"), device="cpu", timeout_s=30):
            assert pg.all_reduce_sum(1.0) == 3.0
        assert results.get(timeout=30) == 3.0
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()


def test_single_process_group_and_teardown():
    world = discover_world({})
    with pg.distributed(world, device="cpu") as device:
        assert device == torch.device("cpu")
        assert dist.is_initialized() and dist.get_world_size() == 1 and dist.get_backend() == "gloo"
        assert pg.all_reduce_max(7) == 7
        pg.check_same_across_ranks("x", "y")
    assert not dist.is_initialized()
    pg.destroy_distributed()  # twice is fine


def test_distributed_tears_down_on_error():
    with pytest.raises(KeyError), pg.distributed(discover_world({}), device="cpu"):
        raise KeyError("inside")
    assert not dist.is_initialized()


def test_second_init_is_refused():
    world = discover_world({})
    pg.init_distributed(world, device="cpu")
    with pytest.raises(RuntimeError, match="already exists"):
        pg.init_distributed(world, device="cpu")


def test_backend_follows_device():
    cpu = torch.device("cpu")
    assert pg.pick_backend("auto", cpu) == "gloo"
    assert pg.pick_backend("auto", torch.device("cuda", 0)) == "nccl"
    with pytest.raises(InputError, match="dist.backend: nccl needs CUDA"):
        pg.pick_backend("nccl", cpu)
    assert pg.pick_device("cpu", 3) == cpu


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_requested_without_gpu():
    with pytest.raises(InputError, match="dist.device: 'cuda' requested"):
        pg.pick_device("cuda", 0)
    assert pg.pick_device("auto", 0) == torch.device("cpu")
