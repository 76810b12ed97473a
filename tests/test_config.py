"""The run config: pyproject defaults, typed parsing, clear errors."""

import tomllib

import pytest

from fairfl_flower.config import PROJECT_ROOT, ConfigError, RunConfig


def test_defaults_parse_and_every_field_has_a_documented_key():
    cfg = RunConfig.defaults()
    assert cfg.strategy == "fedavg" and cfg.dataset == "synthetic" and cfg.lam == 0.0
    text = (PROJECT_ROOT / "pyproject.toml").read_text()
    for key in cfg.to_mapping():
        line = next(ln for ln in text.splitlines() if ln.startswith(f"{key} ="))
        assert "#" in line, f"config key {key} has no comment in pyproject.toml"
    readme = (PROJECT_ROOT / "README.md").read_text()
    missing = [k for k in cfg.to_mapping() if f"`{k}`" not in readme]
    assert not missing, f"README does not document: {missing}"


def test_unknown_strategy_lists_valid_names():
    with pytest.raises(ConfigError, match=r"strategy='nope'.*fedavg.*standalone"):
        RunConfig.defaults(strategy="nope")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"dataset": "mnist"}, "valid dataset names"),
        ({"fairness-metric": "dp"}, "valid fairness metric names"),
        ({"lambda": 1.5}, r"lambda=1.5: must be in \[0, 1\]"),
        ({"lr": 0.0}, r"lr=0.0: must be in \(0"),
        ({"num-server-rounds": 2.5}, "whole number"),
        ({"attribute": "age"}, "must be one of: sex, race"),
        ({"download": "maybe"}, "true or false"),
        ({"seed": "1"}, "must be a whole number"),
        ({"personalize-solver": "lbfgs"}, "must be one of: sgd, newton"),
        ({"personalize-solver": "newton"}, 'fits the logistic regression only; set model="logreg"'),
    ],
)
def test_bad_values_are_refused_with_the_valid_range(overrides, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.defaults(**overrides)


def test_unknown_and_missing_keys():
    mapping = RunConfig.defaults().to_mapping()
    with pytest.raises(ConfigError, match="unknown config key.*colour"):
        RunConfig.from_mapping({**mapping, "colour": "red"})
    del mapping["seed"]
    with pytest.raises(ConfigError, match="missing config key.*seed"):
        RunConfig.from_mapping(mapping)


def test_replace_validates_and_keeps_other_fields():
    cfg = RunConfig.defaults().replace(lam=0.5, seed=3)
    assert (cfg.lam, cfg.seed, cfg.strategy) == (0.5, 3, "fedavg")
    with pytest.raises(ConfigError):
        cfg.replace(lam=-1)


def test_pyproject_flower_components_point_at_the_apps():
    with open(PROJECT_ROOT / "pyproject.toml", "rb") as fh:
        comps = tomllib.load(fh)["tool"]["flwr"]["app"]["components"]
    assert comps == {"serverapp": "fairfl_flower.server_app:app", "clientapp": "fairfl_flower.client_app:app"}
