"""``model.arch=package.module:ClassName``: a user's ``torch.nn.Module`` (dist_train/model/custom.py).

Unit tests of the contract (constructor arguments, forward styles, one-line errors), a
model written outside the project trained in-process, and the shipped GAT example
(PyG ``GATConv``) on 2 gloo ranks. The broken classes live in ``tests/broken_models.py``;
README's bad-input table runs them through the CLI too.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from dist_helpers import run_ranks
from fault_helpers import REPO, TINY, make_dataset
from torch import nn

from dist_train import train
from dist_train.config.schema import load_config
from dist_train.model.custom import (
    EdgeIndexAdapter,
    build_custom_model,
    constructor_kwargs,
    load_model_class,
    probe_model,
)
from dist_train.sampling.sampler import NeighborSampler
from partition.errors import InputError

BROKEN = Path(__file__).with_name("broken_models.py")
GAT = f"{REPO / 'examples' / 'gat.py'}:GAT"
KEYS = {"hidden": 8, "num_layers": 2, "dropout": 0.0, "norm": "none", "gcn_norm": "global"}
RUN = {"sampler": {"batch_size": 32, "fanouts": [5, 5], "prefetch": 2},
       "model": {"hidden": 16}, "train": {"epochs": 4, "log_every": 1000, "plot": False}}

# A user's model, written outside the project: native (x, sub) style, mean of each seed's
# sampled neighbours (hop-1 edges point into the seeds) next to its own features.
OUTSIDE = textwrap.dedent('''
    import torch
    from torch import nn

    class MeanNeighbours(nn.Module):
        def __init__(self, in_dim, out_dim, hidden, dropout=0.0, **unused):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2 * in_dim, hidden), nn.ReLU(),
                                     nn.Dropout(dropout), nn.Linear(hidden, out_dim))

        def forward(self, x, sub):
            n = sub.num_seeds
            src, dst = sub.edge_index[:, : sub.num_sampled_edges[0]]
            agg = torch.zeros(n, x.shape[1]).index_add_(0, dst, x[src])
            deg = torch.bincount(dst, minlength=n).clamp(min=1).unsqueeze(1)
            return self.net(torch.cat([x[:n], agg / deg], dim=1))
''')


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("custom") / "ds", TINY, parts=2)


def _small_graph(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 30
    src, dst = rng.integers(0, n, 120), rng.integers(0, n, 120)
    a = np.zeros((n, n), bool)
    a[src, dst] = a[dst, src] = True
    np.fill_diagonal(a, False)
    indptr = np.concatenate([[0], np.cumsum(a.sum(1))]).astype(np.int64)
    return indptr, np.nonzero(a)[1].astype(np.int64), rng.standard_normal((n, 6)).astype(np.float32)


def test_the_constructor_gets_in_out_dims_the_keys_it_names_and_model_kwargs():
    class Named(nn.Module):
        def __init__(self, in_dim, out_dim, hidden, heads=1):
            super().__init__()

    class Anything(nn.Module):
        def __init__(self, in_dim, out_dim, **rest):
            super().__init__()

    got = constructor_kwargs("m:Named", Named, 6, 3, KEYS, {"heads": 4})
    assert got == {"in_dim": 6, "out_dim": 3, "hidden": 8, "heads": 4}
    assert constructor_kwargs("m:Anything", Anything, 6, 3, KEYS, {}) == {"in_dim": 6, "out_dim": 3, **KEYS}
    with pytest.raises(InputError, match=r"^model\.arch: m:Named: model\.kwargs \['layers'\] are not "):
        constructor_kwargs("m:Named", Named, 6, 3, KEYS, {"layers": 2})


def test_the_constructor_may_use_pyg_names_for_the_dimensions():
    class PygNamed(nn.Module):
        def __init__(self, in_channels, hidden_channels, out_channels, num_layers=2):
            super().__init__()

    class Example(nn.Module):
        def __init__(self, num_features, num_classes):
            super().__init__()

    got = constructor_kwargs("m:P", PygNamed, 6, 3, KEYS, {})
    assert got == {"in_channels": 6, "hidden_channels": 8, "out_channels": 3, "num_layers": 2}
    assert constructor_kwargs("m:E", Example, 6, 3, KEYS, {}) == {"num_features": 6, "num_classes": 3}


@pytest.mark.parametrize("cls, message", [
    ("OneArgForward", r"OneArgForward\.forward\(x\) must take \(x, sub\) or \(x, edge_index\)$"),
    ("NeedsHeads", r"NeedsHeads\.__init__ needs heads, which giantgcn does not pass: give it a default "
                   r"or set model\.kwargs=\{heads: \.\.\.\}$"),
    ("NOT_A_MODULE", r"NOT_A_MODULE is not a torch\.nn\.Module subclass$"),
    ("Missing", r"the module has no attribute 'Missing'$"),
])
def test_a_class_that_cannot_be_built_is_one_line_naming_it(cls, message):
    spec = f"{BROKEN}:{cls}"
    with pytest.raises(InputError, match=rf"^model\.arch: {spec}: {message}"):
        build_custom_model(spec, 6, 3, KEYS, {})


def test_an_import_error_is_one_line_naming_the_module(tmp_path):
    bad = tmp_path / "user_net.py"
    bad.write_text("import torch\nraise RuntimeError('half-written\\nfile')\n")
    with pytest.raises(InputError, match=rf"^model\.arch: {bad}:Net: cannot import {bad} "
                                         r"\(RuntimeError: half-written file\)$"):
        load_model_class(f"{bad}:Net")
    with pytest.raises(InputError, match=r"cannot import no_such_pkg_x\.m \(ModuleNotFoundError"):
        load_model_class("no_such_pkg_x.m:Net")


@pytest.mark.parametrize("cls, message", [
    ("WrongWidth", r"forward returned float32 \(4, 3\) for 4 seeds; expected float logits \(4, 4\)"),
    ("AllRows", r"forward returned float32 \(\d+, 4\) for 4 seeds; .*return the first sub\.num_seeds rows"),
    ("RaisesInForward", r"forward raised RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
])
def test_a_forward_that_fails_or_returns_the_wrong_shape_is_found_by_the_probe(cls, message):
    indptr, indices, x = _small_graph()
    spec = f"{BROKEN}:{cls}"
    model = build_custom_model(spec, 6, 4, KEYS, {})
    with pytest.raises(InputError, match=rf"^model\.arch: {spec}: {message}"):
        probe_model(model, spec, x, indptr, indices, None, [3, 3], np.arange(4), 4)


@pytest.mark.slow  # imports PyG (~5 s)
def test_a_pyg_style_model_sees_the_whole_subgraph_and_keeps_its_own_state_dict():
    indptr, indices, x = _small_graph()
    torch.manual_seed(0)
    model = build_custom_model(GAT, 6, 4, KEYS, {"heads": 2})
    assert isinstance(model, EdgeIndexAdapter)
    assert set(model.state_dict()) == set(model.inner.state_dict())  # no "inner." prefix
    sub = NeighborSampler(indptr, indices, [-1, -1]).sample(np.arange(5), seed=0)
    feats = torch.from_numpy(x[sub.node_ids.numpy()])
    model.eval()
    out = model(feats, sub)
    assert out.shape == (5, 4)
    assert torch.equal(out, model.inner(feats, sub.edge_index)[:5])
    probe_model(model, GAT, x, indptr, indices, None, [3, 3], np.arange(4), 4)  # passes


def test_config_takes_a_class_spec_and_still_refuses_unknown_built_ins():
    cfg = load_config(None, [f"model.arch={GAT}", "model.kwargs={heads: 8}"])
    assert cfg.model.arch == GAT and cfg.model.kwargs == {"heads": 8}
    with pytest.raises(InputError, match=r"^model\.arch: expected one of 'gcn', 'sage' or "
                                         r"package\.module:ClassName, got 'gat'$"):
        load_config(None, ["model.arch=gat"])
    with pytest.raises(InputError, match=r"^model\.kwargs: .*built in and takes none"):
        load_config(None, ["model.kwargs={heads: 8}"])


@pytest.mark.slow
def test_a_model_written_outside_the_project_trains(data, tmp_path, monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "SLURM_PROCID", "PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "my_gnn.py").write_text(OUTSIDE)
    monkeypatch.syspath_prepend(str(tmp_path / "elsewhere"))  # installed like any package
    final = train(RUN, data=data, run_dir=tmp_path / "run", overrides=["model.arch=my_gnn:MeanNeighbours"])
    losses = [json.loads(line)["train_loss"] for line in (tmp_path / "run" / "metrics.jsonl").open()
              if '"event"' not in line]
    assert losses[-1] < losses[0] and final["epochs_run"] == 4
    assert final["val_acc"] > 0.35  # 4 balanced classes: chance is 0.25


def _train_gat(rank: int, world_size: int, data: str, run_dir: str) -> dict:
    final = train(RUN, data=data, run_dir=run_dir, overrides=[f"model.arch={GAT}", "model.kwargs={heads: 2}"])
    return {"final": final}


@pytest.mark.multiproc
@pytest.mark.slow
def test_the_gat_example_trains_on_two_ranks(data, tmp_path):
    r0, r1 = run_ranks(_train_gat, 2, str(data), str(tmp_path / "run"), timeout=240)
    keys = ("best_epoch", "val_acc", "test_acc", "total_steps")
    assert {k: r0["final"][k] for k in keys} == {k: r1["final"][k] for k in keys}
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    losses = [r["train_loss"] for r in records if r.get("event") is None]
    assert losses[-1] < losses[0]
    saved = torch.load(tmp_path / "run" / "model.pt", weights_only=False)
    gat = load_model_class(GAT)(in_dim=16, out_dim=4, hidden=16, heads=2)
    gat.load_state_dict(saved["model"])  # model.pt loads straight into the user's class


def test_a_user_model_raising_mid_training_is_one_line_naming_the_class():
    """Review of issue 14: a forward that raises after the probe passed (step 3) was a traceback."""
    from dist_train.model.custom import user_model_failure
    from partition.errors import InputError

    err = user_model_failure("mymods:Step3", ValueError("boom"), 0, 3)
    assert isinstance(err, InputError)
    assert str(err) == "model.arch: mymods:Step3: forward/backward raised ValueError: boom at epoch 0 step 3"
    builtin = ValueError("ours")
    assert user_model_failure("gcn", builtin, 0, 3) is builtin  # our own bugs keep their traceback
