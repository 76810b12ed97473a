"""Probe a ``synthetic-fig7`` recipe: what Fair-FL+HC (every λ at once) and Fair-FCA (given λ) make of it.

The tool for the open part of Fig. 7 (docs/fig7-fair-flhc.md): finding a generator on which Fair-FL+HC also gives
the paper's five partitions. Fair-FL+HC's warm-up, personalization and cross-evaluation do not depend on λ;
λ only enters D = (1 − λ)Δ + λΨ. So one in-process FL+HC run per seed (≈ 0.2 s with 8 × 1000 samples) gives
Δ and Ψ, and the Ward partition at every λ of a grid is exactly the one ``fair-flhc`` with that λ forms
(``test_fig7.py`` checks this). Fair-FCA needs one full run per λ (≈ 2 s each). ``--population`` adds Fair-FL+HC's
partitions on the clients' exact logistic optima (unlimited data, personalization run to convergence: the
closed form of ``population_models``), the model the tenth session designed ``fairfl_flower/data/fig7_flhc.json`` (``synthetic-fig7-flhc``) on.

    python scripts/fig7_probe.py [--recipe JSON|FILE] [--seeds 0,1,2] [--fca 0,0.8,1] [--set key=value ...]
                                 [--fca-set key=value ...] [--matrices] [--population]

The recipe (default: the ``Fig7Recipe`` defaults, ``synthetic-fig7-fca``'s) is swapped into the dataset
``synthetic-fig7`` in this process. ``synthetic-fig7`` itself, with its Fair-FL+HC settings:
``--recipe fairfl_flower/data/fig7.json --set model=logreg personalize-solver=newton n-train=320000 n-test=200
batch-size=10000000 warmup-rounds=1 normalize-distance=false --fca-set model=logreg cluster-lr=0.001 ifca-restarts=4``.

``--recipe`` takes ``Fig7Recipe`` fields (``fairfl_flower/data/fig7.py``), e.g.
``'{"shift_angle": 45, "balanced": true, "offsets": {"7": [0.5, -0.6]}}'`` or, in 3-D,
``'{"dimensions": 3, "azimuths": {"6": 0, "7": 120, "8": 240}}'``; ``--set`` takes run-config keys
(``batch-size=64``, ``normalize-distance=false``, ``warmup-rounds=3``, ``model=logreg``) for both algorithms,
unless ``--fca-set`` gives Fair-FCA its own (FL+HC-only knobs in ``--set``, ``model=logreg`` in both). Prints, per
seed, the λ at which the partition changes, with ``*`` on the paper's five; ``--matrices`` adds Δ and Ψ (client
order 1..8).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
from scipy.special import logit, ndtr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from experiments.plots import canonical_partition, members_partition, partition_text  # noqa: E402
from experiments.report import FIG7_IN_ORDER  # noqa: E402
from fairfl_flower.config import ConfigError, RunConfig  # noqa: E402
from fairfl_flower.data import DATASETS, clear_cache  # noqa: E402
from fairfl_flower.data.fig7 import NAMES, Fig7, Fig7Recipe  # noqa: E402
from strategies.flhc import distance_matrix, fairness_distances, hierarchical_clusters, model_distances  # noqa: E402
from tests.inprocess import run_inprocess, set_task_identity  # noqa: E402

PAPER = [canonical_partition([str(c) for c in part] for part in p) for p in FIG7_IN_ORDER]


def use_recipe(recipe: Fig7Recipe) -> None:
    """Make ``synthetic-fig7`` draw from ``recipe`` in this process (and forget data drawn before)."""
    DATASETS.get("synthetic-fig7").recipe = recipe
    clear_cache()


def load_recipe(arg: str) -> Fig7Recipe:
    """A recipe from ``--recipe``: Fig7Recipe fields as JSON text, or the path of a ``.json`` file holding them."""
    return Fig7Recipe.from_file(arg) if arg.endswith(".json") else Fig7Recipe.from_mapping(json.loads(arg))


def _quiet_run(cfg: RunConfig):
    with contextlib.redirect_stdout(io.StringIO()):
        return run_inprocess(cfg)[0]


def flhc_matrices(seed: int, **overrides) -> tuple[np.ndarray, np.ndarray, RunConfig]:
    """Δ and Ψ of one FL+HC run (warm-up + the clustering round only), rows/columns in client order 1..8."""
    cfg = RunConfig.defaults(strategy="flhc", dataset="synthetic-fig7", seed=seed, **{"eval-every": 1000, **overrides})
    cfg = cfg.replace(num_server_rounds=cfg.warmup_rounds + 1)
    strategy = _quiet_run(cfg)
    order = np.argsort([NAMES.index(n) for n in strategy.members])  # partition order -> client order
    return strategy.delta[np.ix_(order, order)], strategy.psi[np.ix_(order, order)], cfg


def flhc_partitions(delta: np.ndarray, psi: np.ndarray, cfg: RunConfig, lams) -> dict[float, tuple]:
    """The partition Fair-FL+HC forms at each λ from one run's Δ and Ψ."""
    out = {}
    for lam in lams:
        labels = hierarchical_clusters(distance_matrix(delta, psi, lam), cfg.distance_threshold, cfg.linkage)
        out[float(lam)] = members_partition(dict(zip(NAMES, labels, strict=True)))
    return out


def partition_changes(parts: dict[float, tuple]) -> list[tuple[float, tuple]]:
    """(λ, partition) wherever the partition differs from the one at the λ before: the sequence in λ order."""
    out = []
    for lam, p in parts.items():
        if not out or out[-1][1] != p:
            out.append((lam, p))
    return out


def population_models(recipe: Fig7Recipe) -> np.ndarray:
    """Each client's logistic-regression optimum on its own distribution (n → ∞), rows in client order 1..8, columns
    (w, group weight, bias) as ``flatten`` orders a logreg model. Exact: within a group both classes are Gaussian with
    one diagonal covariance diag(σ²) (σ per feature with ``axis_scales``), so the log-odds are w·x + b_g with
    w = (μ[g,1] − μ[g,0]) / σ² (the same in both groups for every Fig. 7 client) and
    b_g = −Σ (μ[g,1]² − μ[g,0]²) / (2σ²) + logit P(y=1|g); the group column gf·κ·g
    carries b_1 − b_0. Fair-FL+HC's personalized models approach these when personalization runs to convergence
    (full batch, enough epochs) on many samples; ``mirrored`` data remove the intercepts' own sampling noise."""
    ds, rows = Fig7(recipe), []
    for name in NAMES:
        spec = ds.spec(name)
        m, var = spec.means, spec.sigma ** 2
        w = (m[0, 1] - m[0, 0]) / var
        if not np.allclose(w, (m[1, 1] - m[1, 0]) / var):
            raise ValueError(f"client {name}: the two groups have different rules; no closed-form optimum")
        b = [-np.sum((m[g, 1] ** 2 - m[g, 0] ** 2) / (2 * var)) + logit(spec.label_rate[g]) for g in (0, 1)]
        rows.append(np.concatenate([w, [(b[1] - b[0]) / (recipe.group_feature * recipe.feature_scale), b[0]]]))
    return np.array(rows)


def population_sp_gap(theta: np.ndarray, spec, group_column: float) -> float:
    """The SP gap of the logreg ``theta`` (hard predictions) on the distribution ``spec`` (n → ∞)."""
    w, c, b = theta[:-2], theta[-2], theta[-1]
    scale = np.linalg.norm(spec.sigma * w)
    rate = [sum(p_y * ndtr((w @ spec.means[g, y] + c * group_column * g + b) / scale)
                for y, p_y in ((1, spec.label_rate[g]), (0, 1 - spec.label_rate[g]))) for g in (0, 1)]
    return abs(rate[0] - rate[1])


def population_matrices(recipe: Fig7Recipe, normalize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Δ (÷ its largest entry when ``normalize``) and the SP Ψ of Eq. (2) between the clients' optima
    (``population_models``), client order 1..8: what Fair-FL+HC with converged personalization sees on unlimited data."""
    theta = population_models(recipe)
    specs = [Fig7(recipe).spec(n) for n in NAMES]
    column = recipe.group_feature * recipe.feature_scale
    gaps = np.array([[population_sp_gap(theta[i], specs[j], column) for i in range(len(NAMES))] for j in range(len(NAMES))])
    return model_distances(theta, normalize), fairness_distances(gaps)


def fca_partition(lam: float, seed: int, **overrides) -> tuple:
    cfg = RunConfig.defaults(strategy="fair-fca", dataset="synthetic-fig7", seed=seed, lam=lam,
                             **{"eval-every": 1000, **overrides})
    return members_partition(_quiet_run(cfg).members)


def _value(text: str):
    """A ``--set`` value: JSON where it parses (64, 0.5, false), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _overrides(pairs: list[str]) -> dict:
    """``KEY=VALUE`` strings as run-config overrides, checked against ``RunConfig`` (ConfigError if bad)."""
    out = {k: _value(v) for k, v in (kv.split("=", 1) for kv in pairs)}
    RunConfig.defaults(dataset="synthetic-fig7", **out)
    return out


def _text(p: tuple) -> str:
    return partition_text(p) + (" *" if p in PAPER else "")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--recipe", default="{}", help="Fig7Recipe fields as JSON, or a JSON file")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--fca", default="", help="comma-separated λ for Fair-FCA runs")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="run-config overrides")
    ap.add_argument("--fca-set", nargs="*", default=None, metavar="KEY=VALUE",
                    help="run-config overrides for the Fair-FCA runs only (default: those of --set)")
    ap.add_argument("--step", type=float, default=0.01, help="λ grid step for Fair-FL+HC")
    ap.add_argument("--matrices", action="store_true")
    ap.add_argument("--population", action="store_true",
                    help="first print Fair-FL+HC's partitions on the clients' exact optima (n → ∞, converged personalization)")
    a = ap.parse_args(argv)
    set_task_identity()
    try:
        use_recipe(load_recipe(a.recipe))
        overrides = _overrides(a.set)
        fca_overrides = overrides if a.fca_set is None else _overrides(a.fca_set)
    except (ValueError, TypeError, OSError, ConfigError) as exc:
        ap.error(str(exc))
    lams = np.round(np.arange(0.0, 1.0 + 1e-9, a.step), 6)
    np.set_printoptions(precision=3, suppress=True, linewidth=150)
    if a.population:
        cfg = RunConfig.defaults(dataset="synthetic-fig7", **overrides)
        if cfg.fairness_metric != "sp" or cfg.model != "logreg":
            ap.error("--population computes the SP gap of logistic regressions: needs model=logreg, fairness-metric=sp")
        delta, psi = population_matrices(DATASETS.get("synthetic-fig7").recipe, cfg.normalize_distance)
        changes = [f"λ≥{lam:g}: {_text(p)}" for lam, p in partition_changes(flhc_partitions(delta, psi, cfg, lams))]
        print("population  fair-flhc:  " + "   ".join(changes), flush=True)
        if a.matrices:
            print("Δ\n", delta, "\nΨ\n", psi, sep="")
    for seed in (int(s) for s in a.seeds.split(",")):
        delta, psi, cfg = flhc_matrices(seed, **overrides)
        parts = flhc_partitions(delta, psi, cfg, lams)
        changes = [f"λ≥{lam:g}: {_text(p)}" for lam, p in partition_changes(parts)]
        found = len({p for p in parts.values() if p in PAPER})
        print(f"seed {seed}  fair-flhc ({found}/5 of the paper's):  " + "   ".join(changes), flush=True)
        if a.matrices:
            print("Δ\n", delta, "\nΨ\n", psi, sep="")
        if a.fca:
            res = [f"λ={float(x):g}: {_text(fca_partition(float(x), seed, **fca_overrides))}" for x in a.fca.split(",")]
            print(f"seed {seed}  fair-fca:  " + "   ".join(res), flush=True)


if __name__ == "__main__":
    main()
