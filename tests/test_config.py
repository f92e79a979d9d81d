"""Config: precedence, every rejection path by key name, hash stability, shipped configs."""

from __future__ import annotations

import pytest

from dist_train.config.schema import (
    Config,
    ModelConfig,
    SamplerConfig,
    config_hash,
    config_to_dict,
    load_config,
    save_config,
)
from partition.errors import InputError


def _yaml(tmp_path, text: str, name: str = "run.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_yaml_override_precedence(tmp_path):
    path = _yaml(tmp_path, "optim:\n  lr: 0.05\n  weight_decay: 0.0\ntrain:\n  epochs: 7\n")
    cfg = load_config(path, ["optim.lr=0.003", "sampler.fanouts=[10,5]"])
    assert cfg.optim.lr == 0.003  # override beats YAML
    assert cfg.optim.weight_decay == 0.0  # YAML beats default
    assert cfg.train.epochs == 7
    assert cfg.sampler.fanouts == [10, 5]
    assert cfg.model.hidden == ModelConfig().hidden  # untouched default
    assert cfg.sampler.eval_fanouts == [-1, -1]  # filled to the number of layers


def test_value_spellings_coerce(tmp_path):
    cfg = load_config(None, ["optim.lr=1e-3", "optim.grad_clip=1", "train.early_stopping_patience=null",
                             "data.path=on", "sampler.replace=true", "optim.weight_decay=0"])
    assert cfg.optim.lr == pytest.approx(1e-3) and isinstance(cfg.optim.lr, float)
    assert cfg.optim.grad_clip == 1.0 and isinstance(cfg.optim.grad_clip, float)
    assert cfg.train.early_stopping_patience is None
    assert cfg.data.path == "on"  # a path stays verbatim, YAML would have made it True
    assert cfg.sampler.replace is True


@pytest.mark.parametrize("override, key, fragment", [
    ("optim.lr=abc", "optim.lr", "expected float, got 'abc'"),
    ("train.epochs=1.5", "train.epochs", "expected int, got 1.5"),
    ("train.epochs=[3]", "train.epochs", "expected int, got [3]"),
    ("train.epochs=true", "train.epochs", "expected int, got True"),
    ("sampler.fanouts=[10,x]", "sampler.fanouts", "expected a list of int"),
    ("sampler.fanouts=5", "sampler.fanouts", "expected a list of int, got 5"),
    ("model.arch=gat", "model.arch", "one of 'gcn', 'sage'"),
    ("train.max_steps_per_epoch=x", "train.max_steps_per_epoch", "int or null"),
    ("optim.lrr=0.1", "optim.lrr", "unknown key (did you mean optim.lr?)"),
    ("optimizer.lr=0.1", "optimizer.lr", "unknown section"),
    ("sampler.fanouts=[0,5]", "sampler.fanouts", ">= 1 or -1"),
    ("model.dropout=1.0", "model.dropout", "not in [0, 1)"),
    ("optim.lr=-1", "optim.lr", "not > 0"),
    ("sampler.fanouts=[10,5,5]", "model.num_layers", "does not match sampler.fanouts"),
    ("sampler.eval_fanouts=[-1]", "sampler.eval_fanouts", "has 1 layers"),
])
def test_bad_override_names_the_key(override, key, fragment):
    with pytest.raises(InputError) as err:
        load_config(None, [override])
    msg = str(err.value)
    assert msg.startswith(key + ":"), msg
    assert fragment in msg
    assert "\n" not in msg


def test_override_without_equals_sign():
    with pytest.raises(InputError, match="expected key=value"):
        load_config(None, ["optim.lr"])


@pytest.mark.parametrize("text, fragment", [
    ("optim:\n  lrr: 0.1\n", "optim.lrr: unknown key"),
    ("modle:\n  hidden: 4\n", "modle.hidden: unknown section 'modle' (did you mean 'model'?)"),
    ("train:\n  epochs: ten\n", "train.epochs: expected int, got 'ten'"),
    ("optim: 0.1\n", "optim: expected a mapping of keys"),
    ("- 1\n- 2\n", "expected a mapping of sections"),
    ("optim:\n  lr: [0.1\n", "not valid YAML at line"),
    ("model:\n  num_layers: 3\n", "model.num_layers: 3 does not match"),
])
def test_bad_yaml_names_file_and_key(tmp_path, text, fragment):
    path = _yaml(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_config(path, [])
    assert str(err.value).startswith(path + ": "), str(err.value)
    assert fragment in str(err.value)


def test_missing_yaml_file(tmp_path):
    with pytest.raises(InputError, match="cannot read config file"):
        load_config(str(tmp_path / "nope.yaml"), [])


def test_empty_yaml_is_defaults(tmp_path):
    assert load_config(_yaml(tmp_path, "# nothing\n"), []) == Config()


def test_override_fixes_a_yaml_mismatch(tmp_path):
    path = _yaml(tmp_path, "sampler:\n  fanouts: [5, 5, 5]\n")
    assert load_config(path, ["model.num_layers=3"]).model.num_layers == 3


def test_direct_construction_validates():
    with pytest.raises(InputError, match=r"^sampler\.batch_size: 0 is not >= 1"):
        SamplerConfig(batch_size=0)


def test_save_load_round_trip_keeps_hash(tmp_path):
    cfg = load_config(None, ["optim.lr=0.003", "sampler.fanouts=[4,3,2]", "model.num_layers=3",
                             "data.path=/x/y", "optim.grad_clip=2.5"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(str(tmp_path / "config.yaml"), [])
    assert again == cfg
    assert config_hash(again) == config_hash(cfg)


def test_hash_is_stable_and_sensitive():
    base = config_hash(Config())
    assert base == config_hash(load_config(None, []))
    assert len(base) == 64 and int(base, 16) >= 0
    # int-vs-float spelling and an explicit default do not change it ...
    assert config_hash(load_config(None, ["optim.lr=0.01", "train.epochs=10"])) == base
    assert config_hash(load_config(None, ["dist.timeout_s=300"])) == base
    # ... any real change does
    changed = {config_hash(load_config(None, [o])) for o in
               ["optim.lr=0.02", "train.seed=1", "sampler.replace=true", "data.path=d"]}
    assert base not in changed and len(changed) == 4


def test_config_to_dict_is_plain():
    d = config_to_dict(Config())
    assert set(d) == {"data", "sampler", "model", "optim", "train", "dist"}
    assert d["sampler"]["fanouts"] == [15, 10]


@pytest.mark.parametrize("name", ["default.yaml", "cora.yaml", "products.yaml"])
def test_shipped_configs_load(repo_root, name):
    cfg = load_config(str(repo_root / "configs" / name), [])
    assert cfg.model.num_layers == len(cfg.sampler.fanouts)


def test_cora_config_is_the_paper_setup(repo_root):
    cfg = load_config(str(repo_root / "configs" / "cora.yaml"), [])
    assert (cfg.model.arch, cfg.model.hidden, cfg.model.dropout) == ("gcn", 64, 0.5)
    assert (cfg.optim.lr, cfg.optim.weight_decay) == (0.01, 5e-4)
    assert cfg.sampler.fanouts == [-1, -1] and cfg.sampler.batch_size >= 140
