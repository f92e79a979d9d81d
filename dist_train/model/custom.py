"""Your own GNN: ``model.arch=package.module:ClassName`` (or ``path/to/file.py:ClassName``).

The contract, in one place (README "Your own model" points here):

**Constructor.** giantgcn calls ``ClassName(in_dim=F, out_dim=C, **keys)``: ``in_dim`` is
the feature width of the dataset, ``out_dim`` its number of classes, and ``keys`` are
the ``model.*`` keys the constructor names among ``hidden``, ``num_layers`` (=
``len(sampler.fanouts)``), ``dropout``, ``norm``, ``gcn_norm`` (all of them if it takes
``**kwargs``), plus every entry of ``model.kwargs`` (``model.kwargs={heads: 8}``). PyG's
names are understood too: ``in_channels`` / ``num_features`` for ``in_dim``,
``out_channels`` / ``num_classes`` for ``out_dim``, ``hidden_channels`` for ``hidden``.
Weights are drawn after ``torch.manual_seed(train.seed)`` on every rank.

**Forward**, chosen by the name of its second parameter:

- ``forward(x, sub)``: ``x`` float32 ``[sub.num_nodes, in_dim]``, row i the features of
  local node ``sub.node_ids[i]``; ``sub`` the
  :class:`~dist_train.sampling.sampler.SampledSubgraph` (``edge_index`` int64 ``[2, E]``
  source -> target in subgraph ids, seeds first, nodes and edges ordered by hop,
  ``edge_weight`` the GCN weights from global degrees). Returns ``[sub.num_seeds, out_dim]``
  logits of the seeds.
- ``forward(x, edge_index)`` (PyG style, e.g. a stack of ``GATConv``): it sees the whole
  sampled subgraph and returns ``[sub.num_nodes, out_dim]``; the seeds' rows are the
  first ``sub.num_seeds`` (PyG ``NeighborLoader``'s ``out[:batch_size]``).

**Evaluation.** With every neighbour taken (``sampler.eval_fanouts`` all -1, the default)
a model that defines ``layerwise_exact = True``, ``num_layers`` and ``layer(i, x, sub)``
(layer i alone, from ``x`` to ``sub``'s seeds, as :class:`~dist_train.model.models.GNN`
does) is evaluated layer by layer (``dist_train.model.layerwise``); any other model is
evaluated on full-neighbourhood sampled batches: the same accuracy, more time and memory.

Errors in the user's class (import, constructor, forward signature, a forward that
raises or returns the wrong shape) are one :class:`InputError` line naming the class;
:func:`probe_model` finds the forward errors at start-up, on every rank, before training.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dist_train.sampling.sampler import NeighborSampler, SampledSubgraph
from partition.errors import InputError

MODEL_KEYS = ("hidden", "num_layers", "dropout", "norm", "gcn_norm")
"""``model.*`` keys a user's constructor may name."""


def is_custom(arch: str) -> bool:
    """True for ``package.module:ClassName`` / ``file.py:ClassName`` (built-ins have no colon)."""
    return ":" in arch


def _fail(spec: str, what: str) -> InputError:
    return InputError(f"model.arch: {spec}: {what}")


def _raised(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"


def user_model_failure(arch: str, err: Exception, epoch: int, step: int) -> Exception:
    """What a training step's exception becomes: one line naming a user's class.

    A user's model (``arch`` is ``module:ClassName``) that raises in forward/backward after
    the start-up probe passed gives InputError (exit 2) naming the class, the position and
    the error; a communication failure, or any error of the built-in models, is returned
    unchanged (the trainer's own handling names a lost rank). Review of issue 14.
    """
    from dist_train.runtime import process_group as pg  # the trainer imports us: no cycle

    if not is_custom(arch) or (isinstance(err, RuntimeError) and pg.is_comm_failure(err)):
        return err
    return _fail(arch, f"forward/backward raised {_raised(err)} at epoch {epoch} step {step}")


def _import_module(spec: str, module: str) -> Any:
    try:
        if module.endswith(".py"):
            path = Path(module)
            if not path.is_file():
                raise _fail(spec, f"{module}: no such file")
            name = f"giantgcn_user_model_{path.stem}"
            loader_spec = importlib.util.spec_from_file_location(name, path)
            assert loader_spec is not None and loader_spec.loader is not None
            mod = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = mod  # dataclasses and pickling look classes up here
            loader_spec.loader.exec_module(mod)
            return mod
        return importlib.import_module(module)
    except InputError:
        raise
    except BaseException as err:  # noqa: BLE001 - whatever the user's module raises on import
        if isinstance(err, KeyboardInterrupt):
            raise
        raise _fail(spec, f"cannot import {module} ({_raised(err)})") from None


def load_model_class(spec: str) -> type[nn.Module]:
    """The class named by ``spec``. Raises InputError naming it when it cannot be had."""
    module, _, name = spec.rpartition(":")
    cls = getattr(_import_module(spec, module), name, None)
    if cls is None:
        raise _fail(spec, f"the module has no attribute {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise _fail(spec, f"{name} is not a torch.nn.Module subclass")
    return cls


ALIASES = {"in_dim": ("in_channels", "num_features"), "out_dim": ("out_channels", "num_classes"),
           "hidden": ("hidden_channels",)}
"""Other names a constructor may use for the dimensions, as PyG's models and examples do."""


def constructor_kwargs(spec: str, cls: type, in_dim: int, out_dim: int, keys: dict[str, Any],
                       extra: dict[str, Any]) -> dict[str, Any]:
    """What ``cls(...)`` is called with: ``in_dim``, ``out_dim`` (or their PyG names, see
    :data:`ALIASES`), the model keys it names (all with ``**kwargs``), and ``extra``.

    Raises InputError naming the class for a required argument nothing provides and for a
    ``model.kwargs`` entry it does not take.
    """
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    offered = {"in_dim": in_dim, "out_dim": out_dim, **keys}
    offered |= {alias: offered[name] for name, names in ALIASES.items() for alias in names}
    given = {k: v for k, v in offered.items() if k in params}
    if takes_any:
        given |= {"in_dim": in_dim, "out_dim": out_dim, **keys}
    unknown = [k for k in extra if not takes_any and k not in params]
    if unknown:
        raise _fail(spec, f"model.kwargs {unknown} are not arguments of {cls.__name__}.__init__")
    given |= extra
    missing = [n for n, p in params.items() if n != "self" and p.default is inspect.Parameter.empty
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in given]
    if missing:
        raise _fail(spec, f"{cls.__name__}.__init__ needs {', '.join(missing)}, which giantgcn does "
                    f"not pass: give it a default or set model.kwargs={{{missing[0]}: ...}}")
    return given


class EdgeIndexAdapter(nn.Module):
    """A PyG-style ``forward(x, edge_index)`` model behind the ``forward(x, sub)`` interface.

    Its state dict is the wrapped model's own (no ``inner.`` prefix), so ``model.pt``
    loads straight into the user's class.
    """

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, sub: SampledSubgraph) -> torch.Tensor:
        """float32 ``[sub.num_seeds, out_dim]``: the seeds' rows of the model's output."""
        return self.inner(x, sub.edge_index)[: sub.num_seeds]

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self.inner.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:  # type: ignore[override]
        return self.inner.load_state_dict(state_dict, strict=strict, assign=assign)


def _forward_style(spec: str, cls: type) -> str:
    """"sub" or "edge_index", from the name of forward's second parameter."""
    params = [p for n, p in inspect.signature(cls.forward).parameters.items() if n != "self"]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in params if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(positional) < 2 or len(required) > 2:
        shown = ", ".join(p.name for p in params)
        raise _fail(spec, f"{cls.__name__}.forward({shown}) must take (x, sub) or (x, edge_index)")
    return "edge_index" if positional[1].name == "edge_index" else "sub"


def build_custom_model(spec: str, in_dim: int, out_dim: int, keys: dict[str, Any],
                       extra: dict[str, Any]) -> nn.Module:
    """The user's model, behind ``forward(x, sub) -> [num_seeds, out_dim]``. Raises InputError."""
    cls = load_model_class(spec)
    style = _forward_style(spec, cls)
    kwargs = constructor_kwargs(spec, cls, in_dim, out_dim, keys, extra)
    try:
        model = cls(**kwargs)
    except Exception as err:  # noqa: BLE001 - the user's constructor: any error, one line
        raise _fail(spec, f"{cls.__name__}({', '.join(kwargs)}) raised {_raised(err)}") from None
    return EdgeIndexAdapter(model) if style == "edge_index" else model


def probe_model(model: nn.Module, spec: str, x: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
                degree: np.ndarray | None, fanouts: list[int], seeds: np.ndarray,
                num_classes: int) -> None:
    """One forward on a small sample of this rank's graph: errors now, not at step 1.

    ``seeds`` are a few local node ids; the output must be finite-shaped float logits
    ``[len(seeds), num_classes]``. Raises InputError naming the class otherwise.
    """
    if seeds.shape[0] == 0:
        return
    sub = NeighborSampler(indptr, indices, fanouts, degree=degree).sample(seeds, seed=0)
    feats = torch.from_numpy(np.ascontiguousarray(x[sub.node_ids.numpy()], dtype=np.float32))
    pyg = isinstance(model, EdgeIndexAdapter)
    net = model.inner if pyg else model
    model.eval()
    try:
        with torch.no_grad():
            out = net(feats, sub.edge_index) if pyg else net(feats, sub)
    except Exception as err:  # noqa: BLE001 - the user's forward: any error, one line
        raise _fail(spec, f"forward raised {_raised(err)}") from None
    finally:
        model.train()
    rows, what = (sub.num_nodes, "node of the subgraph") if pyg else (sub.num_seeds, "seed")
    want = (rows, num_classes)
    if not isinstance(out, torch.Tensor):
        raise _fail(spec, f"forward returned {type(out).__name__}, not a tensor of logits {want}")
    if tuple(out.shape) != want or not out.is_floating_point():
        hint = ""
        if not pyg and out.ndim == 2 and out.shape[0] == sub.num_nodes != rows:
            hint = ("; it gave every node of the subgraph: return the first sub.num_seeds rows, "
                    "or name forward's second parameter edge_index (PyG style)")
        raise _fail(spec, f"forward returned {str(out.dtype).replace('torch.', '')} {tuple(out.shape)} "
                    f"for {rows} {what}s; expected float logits {want}, one row per {what} and one "
                    f"column per class (out_dim){hint}")
