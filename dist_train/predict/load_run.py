"""What ``giantgcn-predict`` takes from a run directory: its resolved config and weights.

A run directory (``giantgcn-train --out RUN``) holds ``config.yaml`` (the resolved config),
``model.pt`` (final and best weights, written when training ends) and ``checkpoints/``
(``ckpt-eEEEEEE-sSSSSSSSS.pt`` with a ``.sha256`` sidecar, carrying the dataset's manifest
id and graph id). Every mismatch is one line naming the flag: a run that is not one, a
checkpoint that is missing or damaged, weights of another model shape, a dataset that is
not the run's.

A dataset is the run's when its manifest id is the one the run trained on, or when it is
another partitioning of the same graph (equal graph ids, FORMAT.md): part count, method,
halo depth and cache budget change how the work is spread over ranks, not what the exact
layer-wise prediction computes, so a run trained on 8 parts predicts on 2.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from dist_train.config.schema import Config, load_config
from dist_train.loop.checkpoint import checkpoint_dir, list_checkpoints
from dist_train.model.models import build_model
from partition.errors import InputError
from partition.store.identity import dataset_id, manifest_graph_id
from partition.wording import counted


@dataclass
class RunWeights:
    """The model to apply and where its weights came from."""

    cfg: Config
    model: torch.nn.Module
    source: Path
    """The file the weights were read from."""
    which: str
    """``best`` (best validation epoch), ``final`` or ``checkpoint``."""
    sha256: str
    """Of the weights file: the prediction manifest names it."""
    note: str | None = None
    """A line for the user when --data is another partitioning of the run's graph."""


def manifest_id(data_dir: str | Path) -> str:
    """The id training records for a dataset: its content id (16 hex digits,
    :func:`partition.store.identity.dataset_id`), so an identical re-partition is the same."""
    return dataset_id(json.loads(Path(data_dir, "manifest.json").read_text()))


def _trained_on(ident: dict) -> str | None:
    # "dataset" since issue 16; older checkpoints kept the manifest's bytes hash as "manifest"
    value = ident.get("dataset") or ident.get("manifest")
    return str(value) if value else None


def _trained_on_graph(ident: dict) -> str | None:
    """The run's graph id; None in runs trained before giantgcn recorded one."""
    value = ident.get("graph")
    return str(value) if value else None


def _read(path: Path, flag: str) -> tuple[dict, str]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{flag} {path}: cannot read ({err.strerror or err})") from None
    digest = hashlib.sha256(data).hexdigest()
    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file() and sidecar.read_text().strip() != digest:
        raise InputError(f"{flag} {path}: sha256 does not match {sidecar.name} (damaged checkpoint)")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a damaged file
        raise InputError(f"{flag} {path}: not a giantgcn checkpoint ({type(err).__name__})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise InputError(f"{flag} {path}: not a giantgcn checkpoint (no model weights)")
    return state, digest


def _weights_file(run: Path, checkpoint: str | None) -> tuple[Path, str]:
    if checkpoint:
        path = checkpoint_dir(run) / checkpoint
        if not path.is_file():
            names = ", ".join(r.path.name for r in list_checkpoints(run)) or "none"
            raise InputError(f"--checkpoint {checkpoint}: no such file in {checkpoint_dir(run)} "
                             f"(checkpoints there: {names})")
        return path, "--checkpoint"
    path = run / "model.pt"
    if not path.is_file():
        raise InputError(f"--run {run}: no model.pt (training has not finished); name a checkpoint "
                         "with --checkpoint")
    return path, "--run"


def _run_identity(run: Path) -> dict | None:
    """The ``identity`` of the run's newest checkpoint that names a dataset (None if none does)."""
    for ref in reversed(list_checkpoints(run)):
        try:
            state = torch.load(ref.path, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 - a damaged older checkpoint: try the previous
            continue
        ident = state.get("identity") if isinstance(state, dict) else None
        if isinstance(ident, dict) and _trained_on(ident):
            return ident
    return None


def check_dataset(run: Path, data_dir: str | Path, manifest: dict, ident: dict | None) -> str | None:
    """Whether ``--data`` may be scored with a run that trained on ``ident`` (its checkpoint's
    ``identity``; None when the run records none, then anything is accepted as before).

    Returns None for the run's own dataset, a line saying so for another partitioning of
    its graph (equal graph ids); raises InputError, one line, when neither matches.
    """
    trained_on = _trained_on(ident) if ident else None
    here = manifest_id(data_dir)
    if not trained_on or trained_on == here:
        return None
    graph, run_graph = manifest_graph_id(manifest), _trained_on_graph(ident or {})
    if graph and graph == run_graph:
        return (f"--data {data_dir}: another partitioning ({counted(int(manifest['num_parts']), 'part')}) "
                f"of the graph run {run} was trained on (graph id {graph}); predicting on it")
    if graph and run_graph:
        why = f"nor the same graph (graph id {graph}, the run's {run_graph})"
    elif run_graph:
        why = "and it has no graph id (written before giantgcn recorded one): re-partition it to compare graphs"
    else:
        why = "and the run records no graph id (trained before giantgcn recorded one)"
    raise InputError(f"--data {data_dir}: not the dataset run {run} was trained on (manifest id "
                     f"{here}, the run's {trained_on}), {why}")


def load_run(run: str | Path, checkpoint: str | None, data_dir: str | Path, manifest: dict) -> RunWeights:
    """The run's model with the weights to apply; InputError naming ``--run``,
    ``--checkpoint`` or ``--data`` when they do not fit together."""
    run = Path(run)
    if not run.is_dir():
        raise InputError(f"--run {run}: no such run directory")
    if not (run / "config.yaml").is_file():
        raise InputError(f"--run {run}: not a giantgcn run (no config.yaml)")
    cfg = load_config(run / "config.yaml", [f"data.path={data_dir}"])
    path, flag = _weights_file(run, checkpoint)
    state, digest = _read(path, flag)
    weights, which = state["model"], "checkpoint" if checkpoint else "final"
    if not checkpoint and state.get("best_model") is not None:
        weights, which = state["best_model"], "best"
    m = cfg.model
    model = build_model(m.arch, int(manifest["num_features"]), m.hidden, int(manifest["num_classes"]),
                        m.num_layers, m.dropout, m.norm, m.gcn_norm, m.kwargs)
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        first = next((ln.strip() for ln in str(err).splitlines()[1:] if ln.strip()), str(err))
        raise InputError(f"{flag} {path}: weights of another model shape or dataset ({first})") from None
    ident = state.get("identity") if isinstance(state.get("identity"), dict) else None
    if not (ident and _trained_on(ident)):  # model.pt of an older giantgcn: ask the checkpoints
        ident = _run_identity(run)
    note = check_dataset(run, data_dir, manifest, ident)
    return RunWeights(cfg=cfg, model=model, source=path, which=which, sha256=digest, note=note)
