"""Synthetic Gaussian clients (SPEC §5.4, §6.1).

Each client draws samples ``(x, y, g)``: group ``g = a`` with probability ``group_rate``, label
``y = 1`` with probability ``label_rate[g]``, and features ``x | g, y ~ N(means[g, y], sigma² I)``.
Everything about a client is in a :class:`GaussianClient`; :func:`sample` draws from it with a seed.

The default federation (dataset ``synthetic``) has two client types, as in the paper's Gaussian model:
type ◇ (even client index) with the class means of SPEC §6 (μ_a¹=7, μ_a⁰=4, μ_b¹=6, μ_b⁰=3 along the first
feature, centred), and type □ (odd index) with every mean moved by ``synthetic-shift`` along that
feature. Group *b* sits one unit below group *a*, so a shared threshold treats the groups differently:
the local fairness gaps are real. Per-client group and label rates and small mean perturbations are drawn
from the run's seed.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from fairfl_flower.data import DATASETS, ClientData


@dataclass(frozen=True)
class GaussianClient:
    means: np.ndarray  # shape (2 groups, 2 labels, dim)
    sigma: float | np.ndarray  # one standard deviation, or one per feature (axis-aligned)
    group_rate: float  # P(g = a)
    label_rate: tuple[float, float]  # P(y = 1 | g = a), P(y = 1 | g = b)


def sample(spec: GaussianClient, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n samples (x, y, g) from one client's distribution."""
    g = (rng.random(n) >= spec.group_rate).astype(np.int8)  # 0 = a with prob. group_rate
    p1 = np.where(g == 0, spec.label_rate[0], spec.label_rate[1])
    y = (rng.random(n) < p1).astype(np.int64)
    return _features(spec, g, y, rng)


def balanced_sample(spec: GaussianClient, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`sample`, but the (group, label) cell counts are exactly n·P(g)·P(y|g) (largest remainders),
    rows shuffled: no sampling imbalance between the groups' label rates, the floor of every SP gap on finite data."""
    p_g = np.array([spec.group_rate, 1.0 - spec.group_rate])
    p_y1 = np.asarray(spec.label_rate, dtype=float)
    share = np.array([[p_g[g] * (1 - p_y1[g]), p_g[g] * p_y1[g]] for g in (0, 1)]).ravel() * n
    counts = np.floor(share).astype(int)
    counts[np.argsort(-(share - counts))[: n - counts.sum()]] += 1
    cells = np.repeat(np.arange(4), counts)[rng.permutation(n)]
    return _features(spec, (cells // 2).astype(np.int8), (cells % 2).astype(np.int64), rng)


def mirrored_sample(spec: GaussianClient, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`balanced_sample`, with antithetic pairs: in each group g, the i-th (g, y=0) sample is the i-th
    (g, y=1) sample mirrored through the group's centre (μ[g,0] + μ[g,1]) / 2, i.e. μ[g,0] − σε where the
    label-1 sample is μ[g,1] + σε (cells of unequal size draw their extra samples independently). Each cell keeps
    its Gaussian distribution. With equal label counts the data are point-symmetric per group, so the logistic
    regression fitted to them has intercept −w·(centre of g) in each group exactly: its bias and group weight
    carry no sampling noise of their own, only that of the feature weights w."""
    x, y, g = balanced_sample(spec, n, rng)
    for grp in (0, 1):
        pos, neg = (np.flatnonzero((g == grp) & (y == label)) for label in (1, 0))
        m = min(len(pos), len(neg))
        centre = (spec.means[grp, 0] + spec.means[grp, 1]) / 2
        x[neg[:m]] = (2 * centre - x[pos[:m]].astype(np.float64)).astype(np.float32)
    return x, y, g


def _features(spec: GaussianClient, g: np.ndarray, y: np.ndarray, rng: np.random.Generator):
    x = spec.means[g, y] + spec.sigma * rng.standard_normal((len(y), spec.means.shape[-1]))
    return x.astype(np.float32), y.astype(np.float32), g


def client_rng(seed: int, name: str, purpose: str) -> np.random.Generator:
    """A generator that depends on the seed and the client's name only (never on node ids or order)."""
    return np.random.default_rng([seed, zlib.crc32(f"{name}/{purpose}".encode())])


def make_client_data(name: str, spec: GaussianClient, n_train: int, n_test: int, seed: int) -> ClientData:
    rng = client_rng(seed, name, "samples")
    train = sample(spec, n_train, rng)
    test = sample(spec, n_test, rng)
    return ClientData.from_arrays(name, *train, *test)


class TwoTypeGaussian:
    """Dataset ``synthetic``: ``synthetic-clients`` Gaussian clients of two types (see module doc)."""

    # Class means along the first feature, SPEC §6 Table 4 row 1: (μa1, μa0, μb1, μb0) = (7, 4, 6, 3), centred on 5.
    BASE = np.array([[4.0 - 5.0, 7.0 - 5.0], [3.0 - 5.0, 6.0 - 5.0]])  # [g, y]

    def client_names(self, cfg) -> list[str]:
        return [f"client-{i:02d}" for i in range(cfg.synthetic_clients)]

    def spec(self, cfg, index: int, seed: int) -> GaussianClient:
        name = self.client_names(cfg)[index]
        rng = client_rng(seed, name, "spec")
        means = np.zeros((2, 2, cfg.synthetic_dim))
        means[:, :, 0] = self.BASE + (cfg.synthetic_shift if index % 2 else 0.0)
        # the remaining features carry a weaker, group-independent label signal
        means[:, 1, 1:] += 0.5
        means[:, 0, 1:] -= 0.5
        means += rng.normal(0.0, 0.1, size=means.shape)
        return GaussianClient(
            means=means,
            sigma=cfg.synthetic_sigma,
            group_rate=float(rng.uniform(0.3, 0.7)),
            label_rate=(float(rng.uniform(0.4, 0.7)), float(rng.uniform(0.3, 0.6))),
        )

    def load_client(self, cfg, index: int, seed: int) -> ClientData:
        name = self.client_names(cfg)[index]
        return make_client_data(name, self.spec(cfg, index, seed), cfg.n_train, cfg.n_test, seed)


DATASETS.register("synthetic")(TwoTypeGaussian())
