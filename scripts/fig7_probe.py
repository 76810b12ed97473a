"""Probe a ``synthetic-fig7`` recipe: what Fair-FL+HC (every λ at once) and Fair-FCA (given λ) make of it.

The tool for the open part of Fig. 7 (docs/fig7-fair-flhc.md): finding a generator on which Fair-FL+HC also gives
the paper's five partitions. Fair-FL+HC's warm-up, personalization and cross-evaluation do not depend on λ;
λ only enters D = (1 − λ)Δ + λΨ. So one in-process FL+HC run per seed (≈ 0.2 s with 8 × 1000 samples) gives
Δ and Ψ, and the Ward partition at every λ of a grid is exactly the one ``fair-flhc`` with that λ forms
(``test_fig7.py`` checks this). Fair-FCA needs one full run per λ (≈ 2 s each).

    python scripts/fig7_probe.py [--recipe JSON|FILE] [--seeds 0,1,2] [--fca 0,0.8,1] [--set key=value ...]
                                 [--fca-set key=value ...] [--matrices]

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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from experiments.plots import canonical_partition, members_partition, partition_text  # noqa: E402
from experiments.report import FIG7_IN_ORDER  # noqa: E402
from fairfl_flower.config import ConfigError, RunConfig  # noqa: E402
from fairfl_flower.data import DATASETS, clear_cache  # noqa: E402
from fairfl_flower.data.fig7 import NAMES, Fig7Recipe  # noqa: E402
from strategies.flhc import distance_matrix, hierarchical_clusters  # noqa: E402
from tests.inprocess import run_inprocess, set_task_identity  # noqa: E402

PAPER = [canonical_partition([str(c) for c in part] for part in p) for p in FIG7_IN_ORDER]


def use_recipe(recipe: Fig7Recipe) -> None:
    """Make ``synthetic-fig7`` draw from ``recipe`` in this process (and forget data drawn before)."""
    DATASETS.get("synthetic-fig7").recipe = recipe
    clear_cache()


def load_recipe(arg: str) -> Fig7Recipe:
    """A recipe from ``--recipe``: Fig7Recipe fields as JSON text, or the path of a ``.json`` file holding them."""
    return Fig7Recipe.from_mapping(json.loads(Path(arg).read_text() if arg.endswith(".json") else arg))


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
