"""Every config value is checked against the range of the place it is used (issue 16).

``dist.timeout_s=.inf`` used to pass the config check and end in an ``OverflowError``
traceback from ``timedelta``; each case here is a value of the right type that the
place using it cannot take. Every float field is tried with NaN, +-inf and a huge
value, every bounded int one past its bound; the largest accepted values are shown to
work where they land (timedelta, gloo, torch, checkpoint names).
"""

from __future__ import annotations

import datetime

import pytest
import torch

from dist_train.config import ranges as R
from dist_train.config.schema import load_config
from dist_train.loop.checkpoint import list_checkpoints, save_checkpoint
from partition.errors import InputError

FLOAT_FIELDS = ["dist.timeout_s", "dist.init_timeout_s", "optim.lr", "optim.weight_decay",
                "optim.gamma", "optim.grad_clip", "model.dropout"]
BOUNDED_INTS = {
    "train.epochs": R.MAX_EPOCHS, "optim.warmup_epochs": R.MAX_EPOCHS,
    "optim.step_size": R.MAX_EPOCHS, "train.seed": R.SEED_MAX,
    "train.max_steps_per_epoch": R.MAX_STEPS_PER_EPOCH, "model.hidden": R.MAX_HIDDEN,
    "dist.threads": R.INT32_MAX, "sampler.batch_size": R.INT64_MAX,
    "sampler.eval_batch_size": R.INT64_MAX, "sampler.prefetch": R.INT64_MAX,
    "train.keep_checkpoints": R.INT64_MAX, "train.checkpoint_every_steps": R.INT64_MAX,
}


def _refused(override: str) -> str:
    with pytest.raises(InputError) as info:
        load_config(None, [override])
    return str(info.value)


@pytest.mark.parametrize("key", FLOAT_FIELDS)
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1e300"])
def test_non_finite_and_huge_floats_are_refused_by_key(key, value):
    message = _refused(f"{key}={value}")
    assert message.startswith(f"{key}: "), message
    assert "\n" not in message


@pytest.mark.parametrize("key, bound", sorted(BOUNDED_INTS.items()))
def test_ints_past_the_range_they_are_used_in_are_refused(key, bound):
    message = _refused(f"{key}={bound + 1}")
    assert message.startswith(f"{key}: {bound + 1} is too large: at most {bound} ("), message
    assert load_config(None, [f"{key}={bound}"])  # the bound itself is accepted


@pytest.mark.parametrize("key", ["sampler.fanouts", "sampler.eval_fanouts"])
def test_fanout_beyond_the_sampler_scratch_is_refused(key):
    assert "at most 4096" in _refused(f"{key}=[5000,5]")
    assert load_config(None, [f"{key}=[4096,-1]"]).sampler.fanouts


def test_timeout_message_names_key_and_range():
    assert _refused("dist.timeout_s=.inf") == (
        "dist.timeout_s: inf is not a finite number in (0, 9.2e+12] "
        "(seconds; gloo keeps timeouts as int64 microseconds)")
    assert _refused("dist.timeout_s=1e20").startswith("dist.timeout_s: 1e+20 is too large: at most 9.2e+12")


@pytest.mark.parametrize("key", ["dist.timeout_s", "dist.init_timeout_s"])
@pytest.mark.parametrize("value", ["1e-9", "0.0009"])
def test_timeout_below_a_millisecond_is_refused(key, value):
    """gloo rounds it to 0 ms and fails its first collective (review of issue 16)."""
    assert _refused(f"{key}={value}").startswith(f"{key}: {float(value)} is too small: at least 0.001")
    assert load_config(None, [f"{key}=0.001"])


def test_largest_timeout_works_in_timedelta_and_gloo():
    """The bound is where gloo stops: 9.2e12 s runs a collective, 9.3e12 s does not."""
    import torch.distributed as dist

    datetime.timedelta(seconds=R.MAX_TIMEOUT_S)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1,
                            timeout=datetime.timedelta(seconds=R.MAX_TIMEOUT_S))
    try:
        t = torch.ones(1)
        dist.all_reduce(t)
        assert t.item() == 1.0
    finally:
        dist.destroy_process_group()
    with pytest.raises(RuntimeError, match="timeout"):
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1,
                                timeout=datetime.timedelta(seconds=9.3e12))


def test_largest_epoch_and_step_are_found_again(tmp_path):
    """Checkpoint names hold 6 digits of epoch and 9 of step: the bounds are what round-trips."""
    save_checkpoint(tmp_path, {"x": 1}, R.MAX_EPOCHS, R.MAX_STEPS_PER_EPOCH)
    (ref,) = list_checkpoints(tmp_path)
    assert (ref.epoch, ref.step) == (R.MAX_EPOCHS, R.MAX_STEPS_PER_EPOCH)
    save_checkpoint(tmp_path, {"x": 1}, R.MAX_EPOCHS + 1, 0)
    assert len(list_checkpoints(tmp_path)) == 1  # a 7-digit epoch is never found again


def test_largest_seed_and_threads_are_taken_by_torch():
    torch.manual_seed(R.SEED_MAX)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(R.INT32_MAX)
        with pytest.raises((ValueError, RuntimeError, OverflowError)):
            torch.set_num_threads(R.INT32_MAX + 1)
    finally:
        torch.set_num_threads(before)
