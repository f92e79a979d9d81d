"""Counts in user-facing lines are singular for one ("1 part", "1 rank"), and an error every
rank agreed on is printed by rank 0 alone (a line per rank under torchrun said it W times)."""

from __future__ import annotations

import pytest

from dist_train.predict import cli as predict_cli
from partition.cli import main as partition_main
from partition.errors import AgreedError, InputError, reported_here
from partition.wording import counted


@pytest.mark.parametrize("n,want", [(0, "0 parts"), (1, "1 part"), (2, "2 parts"), (1500, "1,500 parts")])
def test_counted_is_singular_for_one(n, want):
    assert counted(n, "part") == want


def test_counted_takes_an_irregular_plural():
    assert counted(1, "entry", "entries") == "1 entry" and counted(3, "entry", "entries") == "3 entries"


def _prediction_manifest(num_nodes: int) -> dict:
    return {"dataset": {"num_nodes": num_nodes}, "weights": {"which": "best", "file": "/r/model.pt"},
            "reused": [0, 2], "files": {"predictions.npy": {"dtype": "<i4", "shape": [num_nodes]}}}


def test_the_prediction_summary_counts_ranks_and_nodes_in_the_singular():
    line = predict_cli.summary(predict_cli.Path("/p"), _prediction_manifest(1), 2.0, 1)
    assert "scored 1 node in" in line and "1 rank)" in line and "(s)" not in line
    line = predict_cli.summary(predict_cli.Path("/p"), _prediction_manifest(1500), 2.0, 2)
    assert "scored 1,500 nodes in" in line and "2 ranks)" in line


def test_the_partitioner_summary_and_verify_say_1_part_and_1_hop(tmp_path, capsys):
    out = tmp_path / "ds"
    code = partition_main(["--input", "synthetic:nodes=400,features=4,classes=3", "--num-parts", "1",
                           "--out", str(out), "--quiet"])
    stdout = capsys.readouterr().out
    assert code == 0 and "halo 1 hop" in stdout and f"wrote {out}: 1 part, " in stdout, stdout
    assert "parts," not in stdout and "hop(s)" not in stdout
    assert partition_main(["--verify", str(out)]) == 0
    assert f"{out}: OK (1 part, 400 nodes" in capsys.readouterr().out


def test_an_agreed_error_is_printed_by_rank_0_only(monkeypatch, capsys):
    for reporter in (False, True):
        def failing(args, reporter=reporter):
            raise AgreedError("rank 0: --data d: bad (and 1 more rank failed)", reporter=reporter)

        monkeypatch.setattr(predict_cli, "run", failing)
        code = predict_cli.main(["--data", "d", "--run", "r", "--out", "o"])
        err = capsys.readouterr().err
        assert code == 2 and err == ("giantgcn-predict: error: rank 0: --data d: bad (and 1 more rank "
                                     "failed)\n" if reporter else "")
    assert reported_here(InputError("a rank's own error")) and not reported_here(AgreedError("x", False))


def test_one_unlabelled_split_node_and_one_empty_part_are_singular():
    import numpy as np

    from partition.progress import _balance_warnings
    from partition.readers.splits import check_split_labels

    y = np.array([0, 1, -1, 2, 1], dtype=np.int64)
    with pytest.raises(InputError, match="1 node of the train split has no label"):
        check_split_labels(y, [np.array([0, 2])], ["train"], "src")
    parts = [{"part_id": p, "num_inner": 0 if p == 1 else 10, "num_train": 1, "degree_sum": 5}
             for p in range(4)]
    lines = _balance_warnings({"parts": parts, "num_parts": 4, "node_imbalance": 1.0,
                               "edge_imbalance": 1.0, "train_imbalance": 1.0})
    assert any("1 of 4 parts has no inner node" in ln for ln in lines), lines
