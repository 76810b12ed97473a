"""Federated datasets, found by name.

A dataset is an object with two methods (see :class:`Dataset`):

* ``client_names(cfg)`` — the clients of the federation, in their canonical order; partition id ``i``
  of a Flower node is client ``client_names(cfg)[i]``.
* ``load_client(cfg, index, seed)`` — the :class:`ClientData` of one client, reading only what that
  client needs. The same ``(cfg, index, seed)`` always gives the same arrays.

Groups are encoded ``g = 0`` for group *a* (male / White) and ``g = 1`` for group *b* (female /
non-White); labels ``y`` are 0/1.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from fairfl_flower.registry import Registry

if TYPE_CHECKING:
    from fairfl_flower.config import RunConfig


class DataError(ValueError):
    """Data that is missing, too small or malformed; the message says how to fix it."""


@dataclass(frozen=True)
class ClientData:
    """One client's local data, ready for training: float32 features, float32 0/1 labels, int8 groups."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    g_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    g_test: np.ndarray

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y, g = (getattr(self, f"{k}_{split}") for k in "xyg")
            if not (len(x) == len(y) == len(g)) or x.ndim != 2:
                raise DataError(f"client {self.name}: inconsistent {split} arrays {x.shape}, {y.shape}, {g.shape}")
            if x.dtype != np.float32 or y.dtype != np.float32 or g.dtype != np.int8:
                raise DataError(f"client {self.name}: {split} arrays must be float32, float32, int8")

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])

    @classmethod
    def from_arrays(cls, name: str, x_train, y_train, g_train, x_test, y_test, g_test) -> ClientData:
        """Build with the canonical dtypes (C-contiguous, so batches slice fast)."""

        def fx(a):
            return np.ascontiguousarray(a, dtype=np.float32)

        def fg(a):
            return np.ascontiguousarray(a, dtype=np.int8)

        return cls(name, fx(x_train), fx(y_train), fg(g_train), fx(x_test), fx(y_test), fg(g_test))


class Dataset(Protocol):
    def client_names(self, cfg: RunConfig) -> list[str]: ...

    def load_client(self, cfg: RunConfig, index: int, seed: int) -> ClientData: ...


DATASETS: Registry[Dataset] = Registry("dataset")

# The in-process cache of prepared partitions: a simulated client (a Ray actor) keeps its tensors across
# rounds and across the runs of a sweep. Keyed by everything that changes the arrays.
_CACHE: OrderedDict[tuple, ClientData] = OrderedDict()
_CACHE_SIZE = 64


def data_key(cfg: RunConfig, seed: int) -> tuple:
    """The config fields that determine a partition (training hyper-parameters do not)."""
    fields = (
        "dataset", "n_train", "n_test", "data_dir", "acs_task", "acs_year", "acs_horizon", "attribute",
        "states", "scaled_states", "scale_factor", "short_state", "adult_split", "dirichlet_alpha",
        "adult_test_fraction", "synthetic_clients", "synthetic_dim", "synthetic_shift", "synthetic_sigma",
    )
    return tuple(getattr(cfg, f) for f in fields) + (seed,)


def clear_cache() -> None:
    """Forget every prepared partition (needed after changing a generator in place, e.g. a Fig. 7 recipe)."""
    _CACHE.clear()


def client_names(cfg: RunConfig) -> list[str]:
    return DATASETS.get(cfg.dataset).client_names(cfg)


def load_partition(cfg: RunConfig, partition_id: int, seed: int) -> ClientData:
    """Client ``partition_id`` of the configured dataset, prepared once per process."""
    names = client_names(cfg)
    if not 0 <= partition_id < len(names):
        raise DataError(
            f"partition-id {partition_id} is out of range: dataset {cfg.dataset!r} has {len(names)} clients "
            f"(0..{len(names) - 1})"
        )
    key = data_key(cfg, seed) + (partition_id,)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    data = DATASETS.get(cfg.dataset).load_client(cfg, partition_id, seed)
    _CACHE[key] = data
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return data


def composition(data: ClientData, split: str = "train") -> np.ndarray:
    """Fraction of the client's samples in each (group, label) cell: array[g, y], summing to 1."""
    g = getattr(data, f"g_{split}").astype(np.int64)
    y = getattr(data, f"y_{split}").astype(np.int64)
    counts = np.bincount(2 * g + y, minlength=4).reshape(2, 2).astype(float)
    return counts / max(counts.sum(), 1.0)


# Register the built-in datasets (each module registers itself on import).
from fairfl_flower.data import synthetic  # noqa: E402,F401

from fairfl_flower.data import acs, adult, csvdir  # noqa: E402,F401  # isort: skip
from fairfl_flower.data import fig7  # noqa: E402,F401  # isort: skip
