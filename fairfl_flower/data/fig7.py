"""The 8-client federations of the paper's Fig. 7 (SPEC §5.4), clients "1".."8": one generator, three recipes.

* ``synthetic-fig7`` (recipe ``fig7.json``): the Fig. 7 dataset. On it both Fair-FCA (k = 2, with
  ``FIG7_FCA_SETTINGS``) and Fair-FL+HC (Ward, threshold 0.35, with ``FIG7_FLHC_SETTINGS``) give the paper's five
  partitions, at ``FIG7_FCA_LAMBDAS`` and ``FIG7_FLHC_LAMBDAS`` (measured below).
* ``synthetic-fig7-fca`` (the ``Fig7Recipe`` defaults): the first design, for Fair-FCA with default settings.
* ``synthetic-fig7-flhc`` (recipe ``fig7_flhc.json``): the tenth session's design, for Fair-FL+HC alone.

Every client draws x | (g, y) ~ N(±separation · u, σ² I) in 2-D (+ for y = 1, − for y = 0), with balanced
groups and labels, and appends its group g ∈ {0, 1} as a third feature (× ``group_feature``), so that a
model can compensate a group-dependent shift. The properties P1–P3 of SPEC §5.4, as the defaults realise them:

* P1 — clients 1, 3 label along the opposite direction u = −u₀ (``angle_13`` = 180°): every model that
  suits the other six is wrong for them, so loss-based assignment separates them (λ = 0).
* P2 — clients 2, 5 share the six's rule u₀ but their group b is moved by ``shift`` against it: a model fitted
  to the mixture has a large SP gap on them, a model fitted to {2, 5} learns the group feature and cuts it.
* P3 — clients 4, 6, 7, 8 have group-independent distributions. They differ in ``separations`` (2.0, 1.4,
  1.0, 0.7) and their rules are rotated by ``angles`` (0°, 10°, 20°, 30°) so that they are not copies: the
  less separable a client, the smaller its loss advantage from the {2, 5}-side model and the larger the SP
  gap that model's group weight causes on it, so as λ grows they leave {2, 5} one at a time, in the order
  8, 7, 6, 4 — the paper's three intermediate partitions.
* Clients 1, 2, 3, 5 hold ``sizes`` = 3× ``n-train`` / ``n-test`` samples, so that the two cluster models are
  dominated by them and one client's move does not drag the next one along (no cascade).
* ``offsets``, ``shift_angle`` and ``balanced`` (exact (group, label) cell counts) are off by default: knobs for
  the search of a recipe on which Fair-FL+HC also gives the five partitions (``scripts/fig7_probe.py``). Only
  the part of the shift along the rule (``shift`` · cos ``shift_angle``) moves x1-aligned cluster models, so a
  perpendicular part barely changes Fair-FCA but grades Fair-FL+HC's Ψ (docs/fig7-fair-flhc.md).
* ``dimensions = 3`` (off by default) adds a third feature: a client's rule then sits at polar angle ``angles``
  (``angle_13``) from x1 and is turned by ``azimuths`` about x1, and 2 and 5's shift by ``shift_azimuth``. The
  2-D federation is its azimuth-0 slice. With ``angle_13`` = 180° Fair-FCA's two cluster models lie along
  x1, so turning 6, 7, 8 about it keeps the order in which Fair-FCA moves them while spreading their models
  apart for FL+HC (measured in docs/fig7-fair-flhc.md).
* ``feature_scale`` = κ (1 by default) draws κ·x and κ·``group_feature``·g: the same federation on another
  scale. With every learning rate divided by κ², SGD follows the same path with parameters divided by κ (up to
  the initial model), so Fair-FL+HC's raw model distances (``normalize-distance = false``) shrink by κ while Ψ
  stays: the knob that puts raw Δ on the scale of the 0.35 threshold without changing what the models predict.
* ``mirrored`` (off by default; implies balanced cells) draws antithetic pairs: each label-0 sample is a label-1
  sample mirrored through its group's centre (``synthetic.mirrored_sample``). The fitted logistic regression's
  intercepts are then exact functions of its feature weights, so with ``feature_scale`` they carry no sampling
  noise of their own (docs/fig7-fair-flhc.md, tenth session).
* ``draw_seed`` (None by default: the run's seed) fixes the data draw, so that runs with different seeds share
  one federation, as they would a real dataset, and differ only in training (initial models, batch order).
* ``private_axes`` (off by default) gives each listed client (of 1/3, 4, 6, 7, 8; 1 and 3 share one) a feature of its
  own: features x1 and one per axis; a listed client's rule is cos(angle)·x1 + sin(angle)·(its axis), 2 and 5 shift
  along x1. With ``axis_scales`` (one per feature, multiplying means and σ) every satellite's arm in Fair-FL+HC's
  model space gets its own length, while what a converged model can predict, and so every loss and gap, stays the
  same (docs/fig7-fair-flhc.md, twelfth session; ``docs/fig7-private-axes.json``, ``fig7.json``).

``fig7.json`` (docs/fig7-fair-flhc.md, twelfth and thirteenth sessions) keeps P1–P3 but gives 6, 7, 8 and {1, 3}
``private_axes`` with ``axis_scales`` (each satellite's distance in Fair-FL+HC's model space set on its own),
a group column × 28.6, ``mirrored`` samples, and 2, 5 at 6× ``n-train``. Measured over seeds 0–9:

* Fair-FCA (logistic regression, ``cluster-lr`` 0.001, 4 IFCA restarts): the paper's partition at λ = 0, 0.83,
  0.89, 0.95, 1 on 10, 9, 9, 10, 9 seeds (all five on 7). With one start λ = 1 fails on 7 seeds in 10 (the
  ×28.6 group column makes one random initial model fairer for everyone; the other cluster stays empty).
* Fair-FL+HC (logistic regression, each client's exact optimum by ``personalize-solver = "newton"``,
  320,000 samples per client, raw Δ): all five, at λ = 0, 0.1, 0.22, 0.36, 1, on every seed (common windows
  [0, 0.045), [0.07, 0.13), [0.195, 0.265), [0.32, 0.4), [0.44, 1]). Exact personalization makes the outcome a
  function of the data draw alone, and what remains is sampling noise: with 160,000 samples 8 seeds in 10 give
  all five, with 40,000 seven.

``synthetic-fig7-fca`` (``FCA_ONLY_LAMBDAS``): Fair-FCA gives the five at λ = 0, 0.8, 0.85, 0.88, 1 (modal over
seeds 0–4). Fair-FL+HC gives three clusters {1,3} | {2,5} | {4,6,7,8} at λ = 0 and none of the intermediate
partitions: 4, 6, 7, 8 are closer to one another, in both Δ and Ψ, than to either side.
``synthetic-fig7-flhc`` (``FLHC_ONLY_SETTINGS``): Fair-FL+HC gives the five at ``FLHC_ONLY_LAMBDAS`` whatever
the training seed; Fair-FCA fails on it (weak signals leave IFCA's random initial models in poor basins).

Per-client randomness depends on the seed and the client's name only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from fairfl_flower.data import DATASETS, ClientData
from fairfl_flower.data.synthetic import GaussianClient, balanced_sample, client_rng, mirrored_sample, sample

NAMES = [str(i) for i in range(1, 9)]

Partition = tuple[tuple[str, ...], tuple[str, ...]]

# The paper's five partitions (client names), in increasing λ: {1,3} | rest, then 8, 7, 6 and 4 leave {2,5}.
FIG7_PARTITIONS: tuple[Partition, ...] = (
    (("1", "3"), ("2", "4", "5", "6", "7", "8")),
    (("1", "3", "8"), ("2", "4", "5", "6", "7")),
    (("1", "3", "7", "8"), ("2", "4", "5", "6")),
    (("1", "3", "6", "7", "8"), ("2", "4", "5")),
    (("1", "3", "4", "6", "7", "8"), ("2", "5")),
)


def _at(*lams: float) -> dict[float, Partition]:
    return dict(zip(lams, FIG7_PARTITIONS, strict=True))


# ``synthetic-fig7`` (recipe ``fig7.json``): one generator, both algorithms. Each runs with its own settings (the
# paper states none for the synthetic study) and gives the five partitions at its own λ (modal over seeds 0-9).
FIG7_RECIPE_FILE = Path(__file__).with_name("fig7.json")
FIG7_FCA_SETTINGS: dict = {"model": "logreg", "cluster-lr": 0.001, "ifca-restarts": 4}
FIG7_FCA_LAMBDAS = _at(0.0, 0.83, 0.89, 0.95, 1.0)
FIG7_FLHC_SETTINGS: dict = {"model": "logreg", "n-train": 320000, "n-test": 200, "batch-size": 10_000_000,
                            "warmup-rounds": 1, "personalize-solver": "newton", "normalize-distance": False,
                            "cluster-lr": 0.005}  # full batch on the ×19, ×28.6 features: stable below ≈ 0.01
FIG7_FLHC_LAMBDAS = _at(0.0, 0.1, 0.22, 0.36, 1.0)

# ``synthetic-fig7-fca`` (the ``Fig7Recipe`` defaults, the first design): Fair-FCA's five with default settings.
FCA_ONLY_LAMBDAS = _at(0.0, 0.8, 0.85, 0.88, 1.0)

# ``synthetic-fig7-flhc`` (recipe ``fig7_flhc.json``, the tenth session's): Fair-FL+HC's five with its settings
# (personalization runs to each client's own optimum: full batch, 1500 epochs).
FLHC_ONLY_RECIPE_FILE = Path(__file__).with_name("fig7_flhc.json")
FLHC_ONLY_SETTINGS: dict = {"model": "logreg", "n-train": 40000, "n-test": 200, "batch-size": 10_000_000,
                            "warmup-rounds": 2, "personalize-epochs": 1500, "cluster-lr": 0.08,
                            "normalize-distance": False}
FLHC_ONLY_LAMBDAS = _at(0.0, 0.2, 0.36, 0.46, 1.0)


@dataclass(frozen=True)
class Fig7Recipe:
    separation: float = 1.0  # class means at ±separation along the client's rule direction
    separations: dict = field(default_factory=lambda: {"4": 2.0, "6": 1.4, "7": 1.0, "8": 0.7})  # per client
    angles: dict = field(default_factory=lambda: {"6": 10.0, "7": 20.0, "8": 30.0})  # rule rotations, degrees
    sigma: float = 1.0
    shift: float = 1.5  # clients 2, 5: group b moved by -shift along the rule direction (turned by shift_angle)
    shift_angle: float = 0.0  # degrees between the rule of 2, 5 and the direction of their group shift
    angle_13: float = 180.0  # clients 1, 3: rule direction, degrees from the other six's
    offsets: dict = field(default_factory=dict)  # per client: a 2-vector added to all four (group, label) means
    group_feature: float = 1.0  # the group g ∈ {0, 1} appended as a feature, times this
    sizes: dict = field(default_factory=lambda: {"1": 3.0, "2": 3.0, "3": 3.0, "5": 3.0})  # × n-train / n-test
    group_rate: float = 0.5
    label_rate: float = 0.5
    balanced: bool = False  # draw exactly n·P(g)·P(y|g) samples per (group, label) cell instead of Bernoulli draws
    mirrored: bool = False  # balanced, with each label-0 sample the mirror image of a label-1 one (mirrored_sample)
    dimensions: int = 2  # 2, or 3: rules may then leave the x1-x2 plane (azimuths); offsets are 3-vectors
    azimuths: dict = field(default_factory=dict)  # per client, degrees: the rule turned about x1 (3-D only)
    shift_azimuth: float = 0.0  # degrees: the shift direction of 2, 5 turned about x1 (3-D only)
    feature_scale: float = 1.0  # every feature, the group column included, times this (see the module doc)
    draw_seed: int | None = None  # the seed of the data draw; None: the run's seed (see the module doc)
    private_axes: list = field(default_factory=list)  # clients whose rule leaves x1 along an axis of its own
    axis_scales: list = field(default_factory=list)  # per feature (group column excluded): times this; [] = all 1

    @classmethod
    def from_file(cls, path: str | Path) -> Fig7Recipe:
        """A recipe from a JSON file of its fields (``fig7.json``, ``docs/fig7-*.json``)."""
        return cls.from_mapping(json.loads(Path(path).read_text()))

    @classmethod
    def from_mapping(cls, values: dict) -> Fig7Recipe:
        """A recipe from plain values (e.g. JSON), unknown keys refused with the valid ones listed."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - valid)
        if unknown:
            raise ValueError(f"unknown Fig7Recipe keys {unknown}; valid: {sorted(valid)}")
        return cls(**values)

    def __post_init__(self) -> None:
        if self.draw_seed is not None and (isinstance(self.draw_seed, bool) or not isinstance(self.draw_seed, int)
                                           or self.draw_seed < 0):
            raise ValueError(f"Fig7Recipe.draw_seed must be an integer >= 0 or None, got {self.draw_seed!r}")
        if not self.feature_scale > 0:
            raise ValueError(f"Fig7Recipe.feature_scale must be > 0, got {self.feature_scale!r}")
        if self.dimensions not in (2, 3):
            raise ValueError(f"Fig7Recipe.dimensions must be 2 or 3, got {self.dimensions!r}")
        if self.dimensions == 2 and (self.azimuths or self.shift_azimuth):
            raise ValueError("Fig7Recipe: azimuths and shift_azimuth turn rules out of the plane; set dimensions = 3")
        if self.private_axes:
            bad = sorted(set(self.private_axes) - set(PRIVATE_AXIS_CLIENTS))
            if bad:
                raise ValueError(f"Fig7Recipe.private_axes: {bad} cannot have an axis; valid: {PRIVATE_AXIS_CLIENTS}")
            if self.dimensions != 2 or self.azimuths or self.shift_azimuth or self.shift_angle:
                raise ValueError("Fig7Recipe: private_axes replace the shared x2 (and x3); leave dimensions = 2 and "
                                 "azimuths, shift_azimuth and shift_angle unset")
            for name in ("1", "3", *sorted(self.angles)):
                angle = self.angle_13 if name in ("1", "3") else self.angles[name]
                if name not in self.private_axes and np.sin(np.deg2rad(angle)) ** 2 > 1e-24:
                    raise ValueError(f"Fig7Recipe: client {name}'s rule leaves x1 (angle {angle}°) but it has no "
                                     f"axis; add it to private_axes")
        features = self.num_features()
        if self.axis_scales and (len(self.axis_scales) != features or not all(a > 0 for a in self.axis_scales)):
            raise ValueError(f"Fig7Recipe.axis_scales must be {features} positive values (one per feature), "
                             f"got {self.axis_scales!r}")
        named = set(self.azimuths) | set(self.offsets) | set(self.separations) | set(self.angles) | set(self.sizes)
        unknown = sorted(named - set(NAMES))
        if unknown:
            raise ValueError(f"Fig7Recipe: unknown clients {unknown}; clients are {NAMES}")
        for name, off in self.offsets.items():
            if len(off) != features:
                raise ValueError(f"Fig7Recipe.offsets[{name!r}] has {len(off)} values; the recipe has {features} "
                                 f"features")

    def axes(self) -> list[str]:
        """The clients owning each feature after x1 when ``private_axes`` is set (1 and 3 share one), else []."""
        out: list[str] = []
        for name in self.private_axes:
            owner = "1" if name in ("1", "3") else name
            if owner not in out:
                out.append(owner)
        return out

    def num_features(self) -> int:
        """Features before the group column: ``dimensions``, or x1 plus one per private axis."""
        return 1 + len(self.axes()) if self.private_axes else self.dimensions


PRIVATE_AXIS_CLIENTS = ["1", "3", "4", "6", "7", "8"]


def _direction(deg: float, azimuth: float = 0.0, dimensions: int = 2) -> np.ndarray:
    """The unit vector at ``deg`` from x1, its x2-x3 part turned by ``azimuth`` about x1; the first ``dimensions``
    coordinates (in 2-D the azimuth is 0, so the plane's vector exactly)."""
    rad, az = np.deg2rad(deg), np.deg2rad(azimuth)
    return np.array([np.cos(rad), np.sin(rad) * np.cos(az), np.sin(rad) * np.sin(az)])[:dimensions]


class Fig7:
    def __init__(self, recipe: Fig7Recipe | None = None) -> None:
        self.recipe = recipe or Fig7Recipe()

    def client_names(self, cfg) -> list[str]:
        return list(NAMES)

    def spec(self, name: str) -> GaussianClient:
        r = self.recipe
        angle = r.angle_13 if name in ("1", "3") else r.angles.get(name, 0.0)
        features = r.num_features()
        if r.private_axes:
            u = np.zeros(features)
            u[0] = np.cos(np.deg2rad(angle))
            owner = "1" if name in ("1", "3") else name
            if owner in r.axes():
                u[1 + r.axes().index(owner)] = np.sin(np.deg2rad(angle))
        else:
            u = _direction(angle, r.azimuths.get(name, 0.0), r.dimensions)
        sep = r.separations.get(name, r.separation)
        means = np.zeros((2, 2, features))  # [group, label, feature]
        means[:, 1] = sep * u
        means[:, 0] = -sep * u
        if name in r.offsets:
            means += np.asarray(r.offsets[name], dtype=float)
        if name in ("2", "5"):
            if r.private_axes:
                means[1, :, 0] -= r.shift * np.cos(np.deg2rad(angle))
            else:
                means[1, :] -= r.shift * _direction(angle + r.shift_angle, r.shift_azimuth, r.dimensions)
        scale = r.feature_scale * (np.asarray(r.axis_scales, dtype=float) if r.axis_scales else 1.0)
        sigma = r.sigma * scale
        return GaussianClient(means=means * scale, sigma=sigma if np.ndim(sigma) else float(sigma),
                              group_rate=r.group_rate, label_rate=(r.label_rate, r.label_rate))

    def load_client(self, cfg, index: int, seed: int) -> ClientData:
        name = NAMES[index]
        spec = self.spec(name)
        rng = client_rng(seed if self.recipe.draw_seed is None else self.recipe.draw_seed, name, "fig7")
        scale = self.recipe.sizes.get(name, 1.0)
        draw = mirrored_sample if self.recipe.mirrored else balanced_sample if self.recipe.balanced else sample
        parts = []
        for n in (int(round(cfg.n_train * scale)), int(round(cfg.n_test * scale))):
            x, y, g = draw(spec, n, rng)
            group = self.recipe.group_feature * self.recipe.feature_scale * g[:, None].astype(np.float32)
            x = np.hstack([x, group])
            parts += [x, y, g]
        return ClientData.from_arrays(name, *parts)


def fig7_recipe() -> Fig7Recipe:
    """The recipe of ``synthetic-fig7`` (``fig7.json``)."""
    return Fig7Recipe.from_file(FIG7_RECIPE_FILE)


def flhc_recipe() -> Fig7Recipe:
    """The recipe of ``synthetic-fig7-flhc`` (``fig7_flhc.json``)."""
    return Fig7Recipe.from_file(FLHC_ONLY_RECIPE_FILE)


DATASETS.register("synthetic-fig7")(Fig7(fig7_recipe()))
DATASETS.register("synthetic-fig7-fca")(Fig7())
DATASETS.register("synthetic-fig7-flhc")(Fig7(flhc_recipe()))
