"""The run configuration: read once from Flower's run config, validated, typed.

Defaults live in one place, ``[tool.flwr.app.config]`` of ``pyproject.toml`` (documented there and in
the README). ``RunConfig.from_mapping`` turns that flat, kebab-case mapping into a frozen dataclass and
raises :class:`ConfigError` with a message naming the key, the value and the valid range or names.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A run-config value that is missing, of the wrong type, or out of range."""


Check = Callable[[Any], "str | None"]  # returns an error text, or None when the value is fine


def _range(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Check:
    def check(v: Any) -> str | None:
        below = lo is not None and (v <= lo if lo_open else v < lo)
        above = hi is not None and v > hi
        if below or above:
            left = "(" if lo_open else "["
            return f"must be in {left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        return None

    return check


def _one_of(*choices: str) -> Check:
    def check(v: Any) -> str | None:
        return None if v in choices else f"must be one of: {', '.join(choices)}"

    return check


def _registered(registry_getter: Callable[[], Any]) -> Check:
    def check(v: Any) -> str | None:
        registry = registry_getter()
        return None if v in registry else f"unknown {registry.kind}; valid {registry.kind} names: {', '.join(registry.names())}"

    return check


def _strategies() -> Any:
    from strategies import STRATEGIES

    return STRATEGIES


def _datasets() -> Any:
    from fairfl_flower.data import DATASETS

    return DATASETS


def _metrics() -> Any:
    from fairfl_flower.fairness import METRICS

    return METRICS


def key(check: Check | None = None) -> Any:
    return field(metadata={"check": check})


@dataclass(frozen=True)
class RunConfig:
    """Every run-config key, as a typed field; the key is the field name with '-' for '_'
    (``lam`` is the key ``lambda``)."""

    # --- what to run ---
    strategy: str = key(_registered(_strategies))
    dataset: str = key(_registered(_datasets))
    num_server_rounds: int = key(_range(1))
    seed: int = key(_range(0))
    eval_every: int = key(_range(1))
    output_dir: str = key()
    run_name: str = key()
    fairness_metric: str = key(_registered(_metrics))
    sweep: str = key()
    handshake_timeout: float = key(_range(0, lo_open=True))
    round_timeout: float = key(_range(0, lo_open=True))
    # --- model and local training ---
    model: str = key(_one_of("mlp", "logreg"))  # fairfl_flower.model.MODELS (not imported: torch)
    hidden: int = key(_range(1))
    lr: float = key(_range(0, lo_open=True))
    local_epochs: int = key(_range(1))
    batch_size: int = key(_range(1))
    cluster_lr: float = key(_range(0, lo_open=True))
    cluster_local_epochs: int = key(_range(1))
    # --- data ---
    n_train: int = key(_range(1))
    n_test: int = key(_range(1))
    data_dir: str = key()
    download: bool = key()
    acs_task: str = key(_one_of("ACSIncome", "ACSEmployment", "ACSPublicCoverage"))
    acs_year: str = key()
    acs_horizon: str = key(_one_of("1-Year", "5-Year"))
    attribute: str = key(_one_of("sex", "race"))
    states: str = key()
    scaled_states: str = key()
    scale_factor: float = key(_range(0, lo_open=True))
    short_state: str = key(_one_of("fail", "use-available"))
    adult_split: str = key(_one_of("race-skewed", "dirichlet"))
    dirichlet_alpha: float = key(_range(0, lo_open=True))
    adult_test_fraction: float = key(_range(0, 1, lo_open=True))
    synthetic_clients: int = key(_range(2))
    synthetic_dim: int = key(_range(1))
    synthetic_shift: float = key()
    synthetic_sigma: float = key(_range(0, lo_open=True))
    # --- clustered FL (IFCA / Fair-FCA, FL+HC / Fair-FL+HC, CFL) ---
    num_clusters: int = key(_range(1))
    ifca_restarts: int = key(_range(1))
    lam: float = key(_range(0, 1))
    warmup_rounds: int = key(_range(0))
    personalize_epochs: int = key(_range(1))
    personalize_solver: str = key(_one_of("sgd", "newton"))
    distance_threshold: float = key(_range(0, lo_open=True))
    normalize_distance: bool = key()
    linkage: str = key(_one_of("ward", "average", "complete", "single"))
    cfl_eps1: float = key(_range(0))
    cfl_eps2: float = key(_range(0))
    cfl_warmup: int = key(_range(0))
    # --- personalization and fair-FL baselines ---
    maml_alpha: float = key(_range(0, lo_open=True))
    maml_beta: float = key(_range(0, lo_open=True))
    maml_order: str = key(_one_of("first", "hessian-free"))
    finetune_epochs: int = key(_range(0))
    finetune_lr: float = key(_range(0, lo_open=True))
    proximal_mu: float = key(_range(0))
    fedprox_deploy: str = key(_one_of("local", "global"))
    fairfed_beta: float = key(_range(0))

    # ------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> RunConfig:
        """Validate a flat kebab-case mapping (Flower's ``context.run_config``)."""
        known = {_key_of(f): f for f in dataclasses.fields(cls)}
        unknown = sorted(set(mapping) - set(known))
        if unknown:
            raise ConfigError(f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}")
        missing = sorted(set(known) - set(mapping))
        if missing:
            raise ConfigError(f"missing config key(s): {', '.join(missing)}")
        values = {}
        for name, f in known.items():
            value = _coerce(name, mapping[name], f.type)
            check = f.metadata.get("check")
            if check is not None and (problem := check(value)) is not None:
                raise ConfigError(f"config key {name}={value!r}: {problem}")
            values[f.name] = value
        if values["personalize_solver"] == "newton" and values["model"] != "logreg":
            raise ConfigError('config key personalize-solver="newton" fits the logistic regression only; '
                              'set model="logreg", or personalize-solver="sgd"')
        return cls(**values)

    @classmethod
    def defaults(cls, **overrides: Any) -> RunConfig:
        """The pyproject defaults, with overrides given as field names (``lam=0.5``) or keys."""
        mapping = dict(default_mapping())
        for k, v in overrides.items():
            mapping[_key_of_name(k) if k in _FIELD_NAMES else k] = v
        return cls.from_mapping(mapping)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed, validated again."""
        mapping = self.to_mapping()
        for k, v in changes.items():
            mapping[_key_of_name(k) if k in _FIELD_NAMES else k] = v
        return RunConfig.from_mapping(mapping)

    def to_mapping(self) -> dict[str, Any]:
        return {_key_of(f): getattr(self, f.name) for f in dataclasses.fields(self)}

    def resolve_output_dir(self) -> Path:
        return resolve_path(self.output_dir)


_FIELD_NAMES = {f.name for f in dataclasses.fields(RunConfig)}


def _key_of_name(name: str) -> str:
    return "lambda" if name == "lam" else name.replace("_", "-")


def _key_of(f: dataclasses.Field) -> str:
    return _key_of_name(f.name)


def _coerce(name: str, value: Any, typ: Any) -> Any:
    typ = {"int": int, "float": float, "str": str, "bool": bool}.get(typ, typ)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ConfigError(f"config key {name}={value!r}: must be true or false")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"config key {name}={value!r}: must be a whole number")
        return int(value)
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {name}={value!r}: must be a number")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f'config key {name}={value!r}: must be a string (quote it: {name}="...")')
    return value


@cache
def default_mapping() -> dict[str, Any]:
    """``[tool.flwr.app.config]`` of the project's pyproject.toml."""
    with open(PROJECT_ROOT / "pyproject.toml", "rb") as fh:
        return dict(tomllib.load(fh)["tool"]["flwr"]["app"]["config"])


def resolve_path(text: str) -> Path:
    """An absolute path for a path-valued config key (``output-dir``, ``data-dir``). The ServerApp and the
    simulated clients run wherever the SuperLink was started, so a relative path is taken against
    ``$FAIRFL_ROOT`` (``scripts/env.sh`` sets it to the project folder), else the working directory."""
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = Path(os.environ.get("FAIRFL_ROOT", os.getcwd())) / path
    return path.resolve()


def parse_name_list(text: str) -> list[str]:
    """'AK, HI ,MA' -> ['AK', 'HI', 'MA'] ('' -> [])."""
    return [part.strip() for part in text.split(",") if part.strip()]
