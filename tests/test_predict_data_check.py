"""Which --data a run may score: its own dataset, or another partitioning of its graph; an old
run or dataset (no graph id) is judged by the dataset id alone, as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dist_train.api import run_identity
from dist_train.config.schema import Config
from dist_train.predict.load_run import check_dataset, manifest_id
from partition.errors import InputError


def _dataset(root: Path, name: str, num_parts: int, graph: str | None) -> tuple[Path, dict]:
    manifest = {"format_version": 2, "num_nodes": 10, "num_parts": num_parts, "method": "metis"}
    if graph:
        manifest["graph_id"] = graph
    d = root / name
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d, manifest


def test_the_run_s_own_dataset_and_a_run_without_identity_are_accepted_silently(tmp_path):
    d, m = _dataset(tmp_path, "ds", 4, "g1")
    assert check_dataset(tmp_path / "run", d, m, {"dataset": manifest_id(d), "graph": "g1"}) is None
    assert check_dataset(tmp_path / "run", d, m, None) is None


@pytest.mark.parametrize("parts,count", [(1, "1 part"), (3, "3 parts")])
def test_another_partitioning_of_the_run_s_graph_is_accepted_with_one_line(tmp_path, parts, count):
    _, _ = _dataset(tmp_path, "trained", 8, "g1")
    trained = {"dataset": manifest_id(tmp_path / "trained"), "graph": "g1"}
    d, m = _dataset(tmp_path, "other", parts, "g1")
    note = check_dataset(tmp_path / "run", d, m, trained)
    assert note == (f"--data {d}: another partitioning ({count}) of the graph run {tmp_path / 'run'} "
                    "was trained on (graph id g1); predicting on it")


@pytest.mark.parametrize("run_graph,data_graph,why", [
    ("g1", "g2", "nor the same graph (graph id g2, the run's g1)"),
    (None, "g1", "the run records no graph id"),
    ("g1", None, "it has no graph id (written before giantgcn recorded one)")])
def test_neither_id_matching_is_refused_in_one_line(tmp_path, run_graph, data_graph, why):
    d, m = _dataset(tmp_path, "ds", 2, data_graph)
    trained = {"dataset": "0123456789abcdef"} | ({"graph": run_graph} if run_graph else {})
    with pytest.raises(InputError) as err:
        check_dataset(tmp_path / "run", d, m, trained)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"--data {d}: not the dataset run {tmp_path / 'run'} was "
                                                f"trained on (manifest id {manifest_id(d)}, the run's "
                                                "0123456789abcdef)")
    assert why in text


def test_checkpoints_record_the_graph_id_only_when_the_dataset_has_one():
    cfg = Config()
    assert run_identity({"graph_id": "g1"}, "d1", cfg)["graph"] == "g1"
    assert set(run_identity({}, "d1", cfg)) == {"dataset", "config"}
