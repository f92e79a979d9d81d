"""Run configuration: nested dataclasses, one per subsystem, under a root :class:`Config`.

Precedence is defaults (here) < YAML file (``--config``) < ``key=value`` overrides on
the command line (``optim.lr=0.003``, ``sampler.fanouts=[10,5]``). Unknown keys and
wrong types are rejected by their dotted name, value checks live in ``__post_init__``,
and the resolved config is what gets saved beside a run and hashed so that every rank
can check it runs the same one. Turning YAML / ``key=value`` text into typed values
is :mod:`dist_train.config.load`; no config library (nanoGPT's configurator and
torchtitan's job config are the models).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from dist_train.config import ranges as R
from dist_train.config.load import ConfigError, mapping_pairs, parse_override, read_yaml
from partition.errors import InputError

__all__ = ["Config", "ConfigError", "DataConfig", "DistConfig", "ModelConfig", "OptimConfig",
           "SamplerConfig", "TrainConfig", "config_hash", "config_to_dict", "load_config",
           "save_config"]


def _check(ok: bool, section: str, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{section}.{name}", message)


@dataclass
class DataConfig:
    section: ClassVar[str] = "data"
    path: str | None = None
    """Dataset directory written by ``giantgcn-partition``; ``--data`` sets it."""


@dataclass
class SamplerConfig:
    section: ClassVar[str] = "sampler"
    fanouts: list[int] = field(default_factory=lambda: [15, 10])
    """Neighbours sampled per layer, outermost hop first; -1 takes all neighbours."""
    batch_size: int = 1024
    """Seed (train) nodes per step on each rank; with ``train.batch_plan=global`` the
    global batch, all ranks together (each batch holds this many on average)."""
    eval_fanouts: list[int] | None = None
    """Fanouts for evaluation; None means all neighbours (-1) at every layer."""
    eval_batch_size: int = 4096
    """Seed nodes per evaluation batch; with every neighbour taken (the default
    ``eval_fanouts``), evaluation runs layer by layer and this is the targets per chunk."""
    prefetch: int = 4
    """Batches sampled ahead by the background thread."""
    replace: bool = False
    """Sample neighbours with replacement."""
    mode: Literal["local", "exact"] = "local"
    """``local``: sample within the rank's parts and their halo (no communication; rows
    truncated at the halo's edge). ``exact``: frontier nodes owned by another rank are
    sampled by their owner and their feature rows fetched from it with all-to-alls, so
    the sample is the one the whole graph gives (issue 15). Any ``--halo-hops`` works; with
    0 each feature row is stored once, plus the ``--cache-budget`` rows."""

    def __post_init__(self) -> None:
        s = self.section
        _check(len(self.fanouts) >= 1, s, "fanouts", "needs at least one layer")
        _check(all(f == -1 or f >= 1 for f in self.fanouts), s, "fanouts",
               f"{self.fanouts}: each fanout must be >= 1 or -1 (all neighbours)")
        if self.eval_fanouts is None:
            self.eval_fanouts = [-1] * len(self.fanouts)
        _check(all(f == -1 or f >= 1 for f in self.eval_fanouts), s, "eval_fanouts",
               f"{self.eval_fanouts}: each fanout must be >= 1 or -1 (all neighbours)")
        _check(len(self.eval_fanouts) == len(self.fanouts), s, "eval_fanouts",
               f"{self.eval_fanouts} has {len(self.eval_fanouts)} layers but sampler.fanouts "
               f"{self.fanouts} has {len(self.fanouts)}")
        for name in ("fanouts", "eval_fanouts"):
            R.at_most(max(getattr(self, name)), R.MAX_FANOUT, f"{s}.{name}",
                      "per fanout: the sampler's scratch grows as its square; -1 takes every neighbour")
        for name in ("batch_size", "eval_batch_size", "prefetch"):
            _check(getattr(self, name) >= 1, s, name, f"{getattr(self, name)} is not >= 1")
            R.at_most(getattr(self, name), R.INT64_MAX, f"{s}.{name}", "a numpy int64 size")


BUILTIN_ARCHS = ("gcn", "sage")
ARCH_SPEC = re.compile(r"(?:[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*|[^:]+\.py):[A-Za-z_]\w*")
"""``package.module:ClassName`` or ``path/to/file.py:ClassName``."""


@dataclass
class ModelConfig:
    section: ClassVar[str] = "model"
    arch: str = "gcn"
    """"gcn" (PyG ``GCNConv``), "sage" (``SAGEConv``), or your own ``torch.nn.Module`` as
    ``package.module:ClassName`` or ``path/to/file.py:ClassName`` (the contract:
    ``dist_train/model/custom.py``, README "Your own model")."""
    hidden: int = 128
    """Hidden channels of every layer but the last."""
    num_layers: int = 2
    """Message-passing layers; must equal ``len(sampler.fanouts)``."""
    dropout: float = 0.5
    """Dropout on the input of every layer."""
    norm: Literal["none", "batch", "layer"] = "none"
    """Normalisation after every hidden layer."""
    gcn_norm: Literal["global", "sampled"] = "global"
    """GCN edge weights: "global" = exact symmetric normalisation with the global degrees
    stored in the shards (scaled for sampling); "sampled" = ``GCNConv``'s own
    normalisation inside the sampled subgraph."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments for your own model's constructor, e.g. ``{heads: 8}``
    (only with ``arch: package.module:ClassName``)."""

    def __post_init__(self) -> None:
        s = self.section
        _check(self.arch in BUILTIN_ARCHS or ARCH_SPEC.fullmatch(self.arch) is not None, s, "arch",
               f"expected one of {', '.join(map(repr, BUILTIN_ARCHS))} or package.module:ClassName, "
               f"got {self.arch!r}")
        _check(not self.kwargs or self.arch not in BUILTIN_ARCHS, s, "kwargs",
               f"{self.kwargs} given, but model.arch={self.arch!r} is built in and takes none "
               "(model.kwargs is for package.module:ClassName models)")
        _check(self.hidden >= 1, s, "hidden", f"{self.hidden} is not >= 1")
        R.at_most(self.hidden, R.MAX_HIDDEN, f"{s}.hidden",
                  "a hidden x hidden float32 weight of 16 GiB, three copies with Adam")
        _check(self.num_layers >= 1, s, "num_layers", f"{self.num_layers} is not >= 1")
        _check(0.0 <= self.dropout < 1.0, s, "dropout", f"{self.dropout} is not in [0, 1)")


ADAM_MAX_LR = 3.4e37
"""float32's largest value over Adam's first-step factor 1 / (1 - beta1) = 10; above it
torch raises an overflow error from inside the optimizer (measured with lr=1e40)."""


@dataclass
class OptimConfig:
    section: ClassVar[str] = "optim"
    lr: float = 0.01
    """Adam learning rate (peak, after warm-up)."""
    weight_decay: float = 5e-4
    """L2 penalty (Adam ``weight_decay``)."""
    schedule: Literal["constant", "cosine", "step"] = "constant"
    """Learning-rate schedule over epochs, stepped once per epoch."""
    warmup_epochs: int = 0
    """Epochs of linear warm-up before the schedule starts."""
    step_size: int = 30
    """Epochs between decays with ``schedule: step``."""
    gamma: float = 0.1
    """Decay factor with ``schedule: step``."""
    grad_clip: float | None = None
    """Clip the global gradient norm to this value; None = no clipping."""

    def __post_init__(self) -> None:
        s = self.section
        R.finite(self.lr, 0, ADAM_MAX_LR, f"{s}.lr", "Adam's first step is 10 x lr in float32")
        _check(self.lr > 0, s, "lr", f"{self.lr} is not > 0")
        _check(self.lr <= ADAM_MAX_LR, s, "lr", f"{self.lr} is too large: Adam's first step is "
               f"10 x lr and must fit in float32 (at most {ADAM_MAX_LR:g})")
        R.finite_in(self.weight_decay, 0, R.FLOAT32_MAX, f"{s}.weight_decay",
                    "it multiplies float32 weights", lo_open=False)
        _check(self.weight_decay >= 0, s, "weight_decay", f"{self.weight_decay} is not >= 0")
        _check(self.warmup_epochs >= 0, s, "warmup_epochs", f"{self.warmup_epochs} is not >= 0")
        R.at_most(self.warmup_epochs, R.MAX_EPOCHS, f"{s}.warmup_epochs", "the most epochs a run has")
        _check(self.step_size >= 1, s, "step_size", f"{self.step_size} is not >= 1")
        R.at_most(self.step_size, R.MAX_EPOCHS, f"{s}.step_size", "the most epochs a run has")
        R.finite_in(self.gamma, 0, 1, f"{s}.gamma", "a decay factor")
        _check(0 < self.gamma <= 1, s, "gamma", f"{self.gamma} is not in (0, 1]")
        if self.grad_clip is not None:
            R.finite_in(self.grad_clip, 0, R.FLOAT32_MAX, f"{s}.grad_clip",
                        "a float32 gradient norm; use null for no clipping")
        _check(self.grad_clip is None or self.grad_clip > 0, s, "grad_clip",
               f"{self.grad_clip} is not > 0 (use null for no clipping)")


@dataclass
class TrainConfig:
    section: ClassVar[str] = "train"
    epochs: int = 10
    """Epochs to train (the total, also when resuming)."""
    seed: int = 0
    """Seed of weights, batch order and sampling: same seed, same run."""
    eval_every: int = 1
    """Evaluate on val/test every this many epochs (and after the last)."""
    checkpoint_every: int = 1
    """Write a checkpoint every this many epochs."""
    checkpoint_every_steps: int | None = None
    """Also write one every this many optimizer steps, mid-epoch, so a killed rank costs
    at most this many steps of every rank's work (an epoch of a giant graph can take
    hours); None = only at epoch ends."""
    keep_checkpoints: int = 3
    """Checkpoints kept on disk; older ones are deleted."""
    early_stopping_patience: int | None = None
    """Stop after this many evaluations without a better val accuracy; None = never."""
    log_every: int = 50
    """Log the training loss every this many steps (rank 0)."""
    max_steps_per_epoch: int | None = None
    """Cap on optimizer steps per epoch (smoke tests); None = a full epoch."""
    plot: bool = True
    """Draw ``RUN_DIR/curves.png`` at the end of the run (rank 0; needs matplotlib, the
    ``plot`` extra: without it the run says so in one line and ends normally)."""
    tensorboard: bool = False
    """Also write the scalars of ``metrics.jsonl``, per step and per epoch, as TensorBoard
    events to ``RUN_DIR/tb/`` (rank 0; needs the ``tensorboard`` extra)."""
    batch_plan: Literal["rank", "global"] = "rank"
    """``rank``: each rank shuffles its own train nodes into batches of
    ``sampler.batch_size``. ``global``: ``sampler.batch_size`` is the global batch; a train
    node's batch is a hash of (seed, epoch, global id), neighbours are sampled layer-wise
    (MFG blocks) and dropout is keyed by global id, so training does not depend on the
    partition or the world size: 8 parts on 2 ranks train the model 1 part on 1 rank does,
    to float rounding (``sampling/batches.py``; README "Partition-invariant training").
    Not with ``model.arch=package.module:ClassName``; not invariant with ``model.norm=batch``."""

    def __post_init__(self) -> None:
        s = self.section
        _check(self.epochs >= 1, s, "epochs", f"{self.epochs} is not >= 1")
        R.at_most(self.epochs, R.MAX_EPOCHS, f"{s}.epochs", "checkpoint names hold 6 digits of epoch")
        _check(self.seed >= 0, s, "seed", f"{self.seed} is not >= 0")
        R.at_most(self.seed, R.SEED_MAX, f"{s}.seed", "batches and sampling use 32 bits of it")
        for name in ("eval_every", "checkpoint_every", "keep_checkpoints", "log_every"):
            _check(getattr(self, name) >= 1, s, name, f"{getattr(self, name)} is not >= 1")
            R.at_most(getattr(self, name), R.INT64_MAX, f"{s}.{name}", "an int64 count")
        for name in ("early_stopping_patience", "max_steps_per_epoch", "checkpoint_every_steps"):
            v = getattr(self, name)
            _check(v is None or v >= 1, s, name, f"{v} is not >= 1 (use null for none)")
            R.at_most(v or 1, R.INT64_MAX, f"{s}.{name}", "an int64 count")
        if self.max_steps_per_epoch is not None:
            R.at_most(self.max_steps_per_epoch, R.MAX_STEPS_PER_EPOCH, f"{s}.max_steps_per_epoch",
                      "checkpoint names hold 9 digits of step")


@dataclass
class DistConfig:
    section: ClassVar[str] = "dist"
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    """Collective backend; "auto" = nccl on GPU, gloo on CPU."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Compute device; "auto" = ``cuda:<local rank>`` when CUDA is available, else CPU."""
    timeout_s: float = 300.0
    """Seconds a collective (and the rendezvous) may wait for the slowest rank."""
    init_timeout_s: float | None = None
    """Seconds ranks wait for each other at start-up (rendezvous), for clusters where a
    rank may start late; None = ``timeout_s``."""
    threads: int = 1
    """torch intra-op threads per rank; 0 = torch's own default (OMP_NUM_THREADS, else every
    core). 1 because a rank's other busy thread is the prefetch thread (sampling, gathering)
    and the model's dense ops are too small to gain: 1 rank on 2 cores ran an epoch in
    0.85 s with 1 thread, 1.4 s with 2 (benchmarks/README.md)."""

    def __post_init__(self) -> None:
        s = self.section
        _check(self.threads >= 0, s, "threads", f"{self.threads} is not >= 0")
        R.at_most(self.threads, R.INT32_MAX, f"{s}.threads", "torch.set_num_threads takes a C int")
        for name in ("timeout_s", "init_timeout_s"):
            v = getattr(self, name)
            if v is None:
                continue
            R.finite_in(v, 0, R.MAX_TIMEOUT_S, f"{s}.{name}",
                        "seconds; gloo keeps timeouts as int64 microseconds")
            _check(v > 0, s, name, f"{v} is not > 0")
            _check(v >= R.MIN_TIMEOUT_S, s, name, f"{v} is too small: at least "
                   f"{R.MIN_TIMEOUT_S:g} (gloo counts timeouts in whole milliseconds)")


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    """Where the dataset is."""
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    """Neighbour sampling."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The GNN."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer and learning-rate schedule."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The loop: epochs, evaluation, checkpoints, seed."""
    dist: DistConfig = field(default_factory=DistConfig)
    """Process group: backend, device, timeouts."""

    def __post_init__(self) -> None:
        n = len(self.sampler.fanouts)
        if self.model.num_layers != n:
            raise ConfigError("model.num_layers", f"{self.model.num_layers} does not match "
                              f"sampler.fanouts {self.sampler.fanouts} ({n} layers); set both")
        if self.train.batch_plan == "global" and ":" in self.model.arch:
            # a user's forward cannot be made to read MFG blocks and keyed dropout
            raise ConfigError("train.batch_plan", f"'global' needs a built-in model.arch (gcn, sage), "
                              f"not {self.model.arch!r}: its layer-wise blocks and keyed dropout "
                              "are the built-in GNN's; use train.batch_plan=rank")


SECTIONS: dict[str, type] = {
    "data": DataConfig, "sampler": SamplerConfig, "model": ModelConfig,
    "optim": OptimConfig, "train": TrainConfig, "dist": DistConfig,
}


def load_config(yaml_path: str | Path | None, overrides: Sequence[str] = (),
                base: Mapping[str, Any] | None = None) -> Config:
    """Defaults < ``base`` < YAML file < ``key=value`` overrides. Raises InputError naming the key.

    ``base`` is a nested ``{section: {key: value}}`` mapping (the Python API's config dict,
    or ``config_to_dict`` of a ``Config``), checked exactly like a YAML file.
    """
    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    origin: dict[str, str] = {}  # dotted key -> where its value came from, for messages
    sources = [("config", mapping_pairs(base, "config", SECTIONS) if base is not None else [])]
    if yaml_path:
        sources.append((str(yaml_path), read_yaml(str(yaml_path), SECTIONS)))
    for where, pairs in sources:
        for key, value in pairs:
            section, name = key.split(".")
            values[section][name] = value
            origin[key] = where
    for item in overrides:
        key, value = parse_override(item, SECTIONS)
        section, name = key.split(".")
        values[section][name] = value
        origin[key] = "command line"
    try:
        return Config(**{s: cls(**values[s]) for s, cls in SECTIONS.items()})
    except ConfigError as err:
        if origin.get(err.key, "command line") != "command line":
            raise InputError(f"{origin[err.key]}: {err}") from None
        raise


def config_to_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    """The resolved config as plain nested dicts (what YAML and the hash see)."""
    return asdict(cfg)


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML; ``load_config(path, [])`` gives it back."""
    text = "# resolved giantgcn run config (defaults < YAML < key=value)\n"
    text += yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp-config")
    try:
        tmp.write_text(text)
        tmp.replace(p)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not leave a half-written config behind
        raise


def config_hash(cfg: Config) -> str:
    """sha256 of the resolved config, independent of key order and of int-vs-float spelling."""
    blob = json.dumps(config_to_dict(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()
