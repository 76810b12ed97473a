"""Fig. 7 (SPEC §5.4, §7 claim 6): the 8-client federations (``synthetic-fig7``, on which both algorithms give the
paper's five partitions; ``synthetic-fig7-fca`` and ``synthetic-fig7-flhc``, the single-algorithm designs), the
partitions Fair-FCA and Fair-FL+HC give on them in process, the fig7 sweeps under the real Ray simulation, and
the research recipes of docs/fig7-fair-flhc.md."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.plots import canonical_partition, final_results, members_partition
from experiments.report import FIG7_EXPECTED
from fairfl_flower.config import RunConfig
from fairfl_flower.data import DATASETS, load_partition
from fairfl_flower.data.fig7 import (
    FCA_ONLY_LAMBDAS,
    FIG7_FCA_LAMBDAS,
    FIG7_FCA_SETTINGS,
    FIG7_FLHC_LAMBDAS,
    FIG7_FLHC_SETTINGS,
    FIG7_PARTITIONS,
    FLHC_ONLY_LAMBDAS,
    FLHC_ONLY_RECIPE_FILE,
    FLHC_ONLY_SETTINGS,
    NAMES,
    fig7_recipe,
    flhc_recipe,
)
from fairfl_flower.fairness import METRICS, GroupCounts
from tests.flwr_sim import Simulation
from tests.inprocess import run_inprocess

LAMBDA1 = canonical_partition(FIG7_PARTITIONS[-1])
ROOT = Path(__file__).resolve().parent.parent
FINE_LAMS = np.round(np.arange(0.0, 1.0 + 1e-9, 0.01), 6)  # Fair-FL+HC's λ grid in the research-recipe tests


@pytest.mark.parametrize("documented", [FIG7_FCA_LAMBDAS, FIG7_FLHC_LAMBDAS, FCA_ONLY_LAMBDAS, FLHC_ONLY_LAMBDAS],
                         ids=["synthetic-fig7 fair-fca", "synthetic-fig7 fair-flhc", "synthetic-fig7-fca", "synthetic-fig7-flhc"])
def test_the_documented_partitions_are_the_papers(documented):
    """Issue #4: {1,3}|{2,4,5,6,7,8} at λ=0, {2,5}|rest at λ=1, and the three intermediate ones between, in the
    order of SPEC §7 (the largest intermediate λ gives {2,4,5} | {1,3,6,7,8})."""
    def names(p):
        return canonical_partition([str(i) for i in c] for c in p)

    parts = [canonical_partition(p) for p in documented.values()]
    assert parts[0] == names(FIG7_EXPECTED["lambda0"]) and parts[-1] == names(FIG7_EXPECTED["lambda1"])
    assert parts[1:-1] == [names(p) for p in FIG7_EXPECTED["intermediate"]]
    assert list(documented) == sorted(documented) and all(0 <= v <= 1 for v in documented)


@pytest.mark.parametrize("dataset", ["synthetic-fig7", "synthetic-fig7-fca"])
def test_generator_has_the_properties_p1_to_p3(dataset):
    cfg = RunConfig.defaults(dataset=dataset, n_train=4000, n_test=10)
    ds = DATASETS.get(dataset)
    assert ds.client_names(cfg) == NAMES == [str(i) for i in range(1, 9)]
    spec = {n: ds.spec(n) for n in NAMES}
    for n in ("4", "6", "7", "8", "1", "3"):  # P3 (and {1,3}): identical distributions for both groups
        np.testing.assert_array_equal(spec[n].means[0], spec[n].means[1])
    for n in ("2", "5"):  # P2: group b shifted
        assert np.linalg.norm(spec[n].means[0] - spec[n].means[1], axis=-1).min() > 1.0
    rule = {n: spec[n].means[0, 1] - spec[n].means[0, 0] for n in NAMES}  # direction of the label
    for n in ("2", "4", "5", "6", "7", "8"):  # P1: {1,3} label the other way
        assert rule[n] @ rule["1"] < 0 and rule[n] @ rule["3"] < 0
    # the data: group-independent clients have near-zero gaps under the Bayes rule of the six
    data = load_partition(cfg, NAMES.index("6"), 0)
    pred = (data.x_train[:, :-1] @ rule["6"] > 0).astype(float)
    counts = GroupCounts.from_predictions(pred, data.y_train, data.g_train)
    assert METRICS.get("sp")(counts) < 0.05
    assert data.x_train.shape[1] == ds.recipe.num_features() + 1  # the recipe's features and the group column


@pytest.mark.parametrize("lam", list(FIG7_FCA_LAMBDAS))
def test_fair_fca_gives_the_papers_partition_at_each_documented_lambda_on_synthetic_fig7(lam):
    """Fair-FCA with FIG7_FCA_SETTINGS (4 restarts), seed 0 (one of the 7 seeds in 10 that give all five)."""
    cfg = RunConfig.defaults(strategy="fair-fca", dataset="synthetic-fig7", lam=lam, eval_every=50, **FIG7_FCA_SETTINGS)
    strategy, _ = run_inprocess(cfg)
    assert members_partition(strategy.members) == canonical_partition(FIG7_FCA_LAMBDAS[lam])


def test_fair_flhc_gives_the_five_partitions_on_synthetic_fig7():
    """Fair-FL+HC with FIG7_FLHC_SETTINGS (exact personalization): one run's Δ and Ψ give every λ; on seed 0 the
    partitions at FIG7_FLHC_LAMBDAS are the paper's, and a real run at each of them forms exactly that partition."""
    probe = load_probe()
    with recipe_in_use(fig7_recipe()):
        delta, psi, cfg = probe.flhc_matrices(0, **FIG7_FLHC_SETTINGS)
    parts = probe.flhc_partitions(delta, psi, cfg, list(FIG7_FLHC_LAMBDAS))
    assert list(parts.values()) == [canonical_partition(p) for p in FIG7_PARTITIONS]
    base = RunConfig.defaults(strategy="fair-flhc", dataset="synthetic-fig7", eval_every=50, num_server_rounds=2,
                              **FIG7_FLHC_SETTINGS)
    for lam in (0.1, 0.36):
        run, _ = run_inprocess(base.replace(lam=lam))
        assert members_partition(run.members) == canonical_partition(FIG7_FLHC_LAMBDAS[lam])


@pytest.mark.parametrize("lam", list(FCA_ONLY_LAMBDAS))
def test_fair_fca_gives_the_papers_partition_at_each_documented_lambda_on_the_first_design(lam):
    cfg = RunConfig.defaults(strategy="fair-fca", dataset="synthetic-fig7-fca", lam=lam, eval_every=50)
    strategy, _ = run_inprocess(cfg)
    assert members_partition(strategy.members) == canonical_partition(FCA_ONLY_LAMBDAS[lam])


def test_fair_flhc_separates_2_and_5_at_lambda_one_and_1_and_3_at_lambda_zero():
    """What Fair-FL+HC reproduces on the first design (module doc of fig7.py): the λ = 1 partition; at λ = 0
    {1,3} form their own cluster (the paper's split of {2,4,5,6,7,8} is cut once more by the threshold)."""
    base = RunConfig.defaults(strategy="fair-flhc", dataset="synthetic-fig7-fca", eval_every=50, num_server_rounds=8)
    one, _ = run_inprocess(base.replace(lam=1.0))
    assert members_partition(one.members) == LAMBDA1
    zero, _ = run_inprocess(base.replace(lam=0.0))
    assert ("1", "3") in members_partition(zero.members)


@pytest.mark.simulation
def test_fig7_sweeps_under_the_ray_simulation(tmp_path):
    """The fig7 experiment's two `flwr run` sweeps on synthetic-fig7, seed 0: Fair-FCA over its five λ with its
    settings, and Fair-FL+HC over its five λ with its settings (2 rounds: the clustering round is the second).
    Each gives the paper's five partitions."""
    def lams(values):
        return ",".join(f"{v:g}" for v in values)

    sim = Simulation(tmp_path / "flwr")
    sim.superlink("start")
    try:
        fca = sim.run({"dataset": "synthetic-fig7", **FIG7_FCA_SETTINGS, "eval-every": 50,
                       "output-dir": str(tmp_path / "out"), "run-name": "fca",
                       "sweep": f"strategy=fair-fca; lambda={lams(FIG7_FCA_LAMBDAS)}"})
        flhc = sim.run({"dataset": "synthetic-fig7", **FIG7_FLHC_SETTINGS, "num-server-rounds": 2,
                        "eval-every": 2, "output-dir": str(tmp_path / "out"), "run-name": "flhc",
                        "sweep": f"strategy=fair-flhc; lambda={lams(FIG7_FLHC_LAMBDAS)}"})
    finally:
        sim.superlink("stop")
    got = {}
    for run, name in ((fca, "fca"), (flhc, "flhc")):
        assert run.status == "finished:completed", run.output[-3000:]
        final = final_results(pd.read_csv(tmp_path / "out" / name / "results.csv"))
        got[name] = {(r.strategy, r["lambda"]): canonical_partition(r.partition) for _, r in final.iterrows()}
    assert got["fca"] == {("fair-fca", lam): canonical_partition(p) for lam, p in FIG7_FCA_LAMBDAS.items()}
    assert got["flhc"] == {("fair-flhc", lam): canonical_partition(p) for lam, p in FIG7_FLHC_LAMBDAS.items()}


def test_recipe_knobs_balanced_cells_offsets_and_shift_angle():
    """The recipe fields the search for Fair-FL+HC's generator uses (scripts/fig7_probe.py); defaults change nothing."""
    from fairfl_flower.data.fig7 import Fig7, Fig7Recipe
    from fairfl_flower.data.synthetic import balanced_sample

    default = Fig7()
    assert Fig7Recipe.from_mapping({}) == default.recipe
    with pytest.raises(ValueError, match="valid: .*shift_angle"):
        Fig7Recipe.from_mapping({"shift_anlge": 45})
    turned = Fig7(Fig7Recipe(shift_angle=90.0, offsets={"7": [0.5, -0.5]}))
    np.testing.assert_allclose(turned.spec("7").means - default.spec("7").means, 0.5 * np.array([1, -1]) * np.ones((2, 2, 2)))
    moved = turned.spec("2").means[1] - turned.spec("2").means[0]  # group b minus group a, rule along x1
    np.testing.assert_allclose(moved, np.tile([0.0, -1.5], (2, 1)), atol=1e-12)
    x, y, g = balanced_sample(default.spec("6"), 1003, np.random.default_rng(0))
    cells = np.bincount(2 * g.astype(int) + y.astype(int), minlength=4)
    assert cells.sum() == 1003 and cells.max() - cells.min() == 1  # exact n/4 per (group, label) cell
    assert METRICS.get("sp")(GroupCounts.from_predictions(y, y, g)) < 1e-3  # no sampling imbalance left


@functools.cache
def load_probe():
    """scripts/fig7_probe.py as a module (scripts/ is not a package), loaded once per session."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("fig7_probe", ROOT / "scripts" / "fig7_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    return probe


def test_probe_scan_gives_fair_flhc_partition_at_every_lambda():
    """scripts/fig7_probe.py clusters one run's Δ, Ψ at every λ: the same partition a fair-flhc run forms."""
    probe = load_probe()
    delta, psi, cfg = probe.flhc_matrices(0)
    scan = probe.flhc_partitions(delta, psi, cfg, [0.0, 0.85, 1.0])
    for lam, expected in scan.items():
        run, _ = run_inprocess(cfg.replace(strategy="fair-flhc", lam=lam))
        assert members_partition(run.members) == expected
    assert scan[1.0] == LAMBDA1


@contextlib.contextmanager
def recipe_in_use(recipe):
    """``synthetic-fig7`` draws from ``recipe`` inside the block; the default recipe is put back afterwards."""
    probe = load_probe()
    default = DATASETS.get("synthetic-fig7").recipe
    try:
        probe.use_recipe(recipe)
        yield
    finally:
        probe.use_recipe(default)


def _probe_docs_recipe(file: str, flhc: dict, flhc_lams, fca: dict, fca_seed: int, fca_lams,
                       flhc_seed: int = 0) -> tuple[dict, list]:
    """Fair-FL+HC's partitions on ``flhc_seed`` at ``flhc_lams`` and Fair-FCA's on ``fca_seed`` at ``fca_lams``, on
    the recipe ``docs/<file>`` (the default recipe is put back afterwards)."""
    probe = load_probe()
    with recipe_in_use(probe.load_recipe(str(ROOT / "docs" / file))):
        delta, psi, cfg = probe.flhc_matrices(flhc_seed, **flhc)
        scan = probe.flhc_partitions(delta, psi, cfg, flhc_lams)
        fca_parts = [probe.fca_partition(lam, fca_seed, **fca) for lam in fca_lams]
    return scan, fca_parts


def test_best_joint_recipe_gives_both_algorithms_the_documented_partitions():
    """docs/fig7-best-joint.json, as docs/fig7-fair-flhc.md (seventh session) reports it: Fair-FL+HC gives the
    paper's last four partitions in λ order on seed 0 (client 8 is with {1,3} already at λ = 0), and Fair-FCA all
    five on seed 1."""
    flhc = {"model": "logreg", "batch-size": 64, "warmup-rounds": 5, "personalize-epochs": 5,
            "cluster-lr": 0.003044, "normalize-distance": False}
    scan, fca = _probe_docs_recipe("fig7-best-joint.json", flhc, [0.0, 0.3, 0.6, 0.9],
                                   {"model": "logreg", "cluster-lr": 0.0039}, 1, [0.0, 0.2, 0.6, 0.7, 0.8])
    paper = load_probe().PAPER
    assert list(scan.values()) == paper[1:]
    assert fca == paper


def test_low_noise_recipe_gives_both_algorithms_the_documented_partitions():
    """docs/fig7-low-noise.json (4000 samples per client), as docs/fig7-fair-flhc.md (eighth session) reports it
    for seed 0: Fair-FL+HC gives the paper's partitions except {1,3,8} | {2,4,5,6,7}, in λ order, and no other;
    Fair-FCA gives all but {1,3,6,7,8} | {2,4,5}."""
    data = {"model": "logreg", "n-train": 4000, "n-test": 500}
    flhc = {**data, "batch-size": 256, "warmup-rounds": 8, "personalize-epochs": 6,
            "cluster-lr": 0.0015686731900190762, "normalize-distance": False}
    scan, fca = _probe_docs_recipe("fig7-low-noise.json", flhc, FINE_LAMS,
                                   {**data, "batch-size": 128, "cluster-lr": 0.0039}, 0, [0.0, 0.4, 0.78, 0.88])
    paper = load_probe().PAPER
    assert [p for _, p in load_probe().partition_changes(scan)] == [paper[0], *paper[2:]]
    assert fca == [paper[0], paper[1], paper[2], paper[4]]


def test_one_draw_recipe_gives_both_algorithms_the_five_partitions_on_picked_seeds():
    """docs/fig7-one-draw.json (one fixed draw, ``draw_seed`` 0), as docs/fig7-fair-flhc.md (ninth session)
    reports it: Fair-FL+HC gives the paper's five partitions, and no other, on training seed 11, and Fair-FCA gives
    them at λ = 0, 0.72, 0.73, 0.75, 0.77 on training seed 1. Both seeds are picked: the rates are in the doc."""
    flhc = {"model": "logreg", "batch-size": 64, "warmup-rounds": 5, "personalize-epochs": 4,
            "cluster-lr": 0.0047, "normalize-distance": False}
    scan, fca = _probe_docs_recipe("fig7-one-draw.json", flhc, FINE_LAMS, {"model": "logreg", "cluster-lr": 0.0134}, 1,
                                   [0.0, 0.72, 0.73, 0.75, 0.77], flhc_seed=11)
    paper = load_probe().PAPER
    assert [p for _, p in load_probe().partition_changes(scan)] == paper
    assert fca == paper


def test_probe_gives_fair_fca_its_own_overrides_with_fca_set(monkeypatch, capsys):
    """--set reaches both algorithms unless --fca-set gives Fair-FCA its own; bad values are refused."""
    probe = load_probe()
    seen = []
    monkeypatch.setattr(probe, "fca_partition", lambda lam, seed, **kw: seen.append(kw) or LAMBDA1)
    probe.main(["--set", "model=logreg", "warmup-rounds=2", "--fca", "1"])
    probe.main(["--set", "model=logreg", "warmup-rounds=2", "--fca-set", "model=logreg", "--fca", "1"])
    assert seen == [{"model": "logreg", "warmup-rounds": 2}, {"model": "logreg"}]
    assert "fair-flhc" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        probe.main(["--fca-set", "model=cnn"])
    assert "must be one of: mlp, logreg" in capsys.readouterr().err


def test_recipe_third_dimension_turns_rules_about_x1_and_checks_its_fields():
    """dimensions = 3: a client's rule at polar angle `angles` from x1 and azimuth `azimuths` about x1;
    the 2-D recipe is the azimuth-0 slice of it, and inconsistent fields are refused with the reason."""
    from fairfl_flower.data.fig7 import Fig7, Fig7Recipe

    flat, lifted = Fig7(), Fig7(Fig7Recipe(dimensions=3, azimuths={"7": 90.0}, shift_angle=90.0, shift_azimuth=90.0))
    rule = lifted.spec("7").means[0, 1] - lifted.spec("7").means[0, 0]  # 2 · separation · u, angle 20°
    np.testing.assert_allclose(rule / np.linalg.norm(rule), [np.cos(np.deg2rad(20)), 0.0, np.sin(np.deg2rad(20))],
                               atol=1e-12)
    np.testing.assert_allclose(lifted.spec("6").means[..., :2], flat.spec("6").means)  # azimuth 0: the plane
    assert (lifted.spec("6").means[..., 2] == 0).all()
    moved = lifted.spec("2").means[1] - lifted.spec("2").means[0]  # shift turned 90° from x1, then 90° about x1
    np.testing.assert_allclose(moved, np.tile([0.0, 0.0, -1.5], (2, 1)), atol=1e-12)
    data = lifted.load_client(RunConfig.defaults(dataset="synthetic-fig7", n_train=50, n_test=10), 6, 0)
    assert data.x_train.shape == (50, 4)  # x1, x2, x3 and the group feature
    for bad, reason in [({"dimensions": 4}, "2 or 3"), ({"azimuths": {"7": 90}}, "set dimensions = 3"),
                        ({"dimensions": 3, "offsets": {"7": [0.5, 0.5]}}, "the recipe has 3 features"),
                        ({"angles": {"9": 10}}, "clients are")]:
        with pytest.raises(ValueError, match=reason):
            Fig7Recipe.from_mapping(bad)


def test_recipe_feature_scale_multiplies_every_feature_and_the_group_column():
    """feature_scale = κ draws κ·x (class means and σ times κ) and κ·gf·g: the same data on another scale, so
    that raw model distances shrink by κ when the learning rate shrinks by κ² (docs/fig7-fair-flhc.md)."""
    from fairfl_flower.data.fig7 import Fig7, Fig7Recipe

    cfg = RunConfig.defaults(dataset="synthetic-fig7", n_train=64, n_test=16)
    plain, scaled = Fig7(), Fig7(Fig7Recipe(feature_scale=5.0, group_feature=0.5))
    for name in ("1", "2", "7"):
        np.testing.assert_allclose(scaled.spec(name).means, 5.0 * plain.spec(name).means)
        assert scaled.spec(name).sigma == 5.0 * plain.spec(name).sigma
    a, b = plain.load_client(cfg, 1, 3), scaled.load_client(cfg, 1, 3)  # client "2": same draws, other scale
    np.testing.assert_allclose(b.x_train[:, :2], 5.0 * a.x_train[:, :2], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(b.x_train[:, 2], 2.5 * b.g_train)
    np.testing.assert_array_equal(b.y_train, a.y_train)
    with pytest.raises(ValueError, match="feature_scale must be > 0"):
        Fig7Recipe.from_mapping({"feature_scale": 0})


def test_recipe_draw_seed_fixes_the_data_whatever_the_run_seed():
    """draw_seed = d: every run draws the federation of seed d, so runs with other seeds differ only in training
    (one fixed federation, as a real dataset); None (the default) draws with the run's seed."""
    from fairfl_flower.data.fig7 import Fig7, Fig7Recipe

    cfg = RunConfig.defaults(dataset="synthetic-fig7", n_train=64, n_test=16)
    fixed, plain = Fig7(Fig7Recipe(draw_seed=3)), Fig7()
    for index in (0, 6):
        ref = plain.load_client(cfg, index, 3)
        for seed in (0, 3, 11):
            got = fixed.load_client(cfg, index, seed)
            np.testing.assert_array_equal(got.x_train, ref.x_train)
            np.testing.assert_array_equal(got.y_test, ref.y_test)
        assert not np.array_equal(plain.load_client(cfg, index, 11).x_train, ref.x_train)
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="draw_seed must be an integer >= 0 or None"):
            Fig7Recipe.from_mapping({"draw_seed": bad})


def test_mirrored_sample_pins_the_logistic_intercepts_to_the_feature_weights():
    """mirrored = True: balanced cells, each label-0 sample the mirror of a label-1 one through its group's centre,
    so the fitted logistic regression's intercept in group g is exactly −w·centre_g (no noise of its own); with
    independent draws (balanced only) it is not."""
    from scipy.optimize import minimize
    from scipy.special import expit

    from fairfl_flower.data.fig7 import Fig7, Fig7Recipe

    recipe = {"offsets": {"2": [0.4, -0.3]}, "shift": 1.2, "shift_angle": 30.0}
    cfg = RunConfig.defaults(dataset="synthetic-fig7", n_train=1000, n_test=10)

    def fit(data):
        x = np.hstack([data.x_train.astype(np.float64), np.ones((len(data.y_train), 1))])
        y = data.y_train.astype(np.float64)
        f = lambda t: (np.logaddexp(0, x @ t).mean() - y @ (x @ t) / len(y), x.T @ (expit(x @ t) - y) / len(y))  # noqa: E731
        return minimize(f, np.zeros(x.shape[1]), jac=True, method="BFGS", options={"gtol": 1e-11}).x

    def intercept_error(mirrored):
        ds = Fig7(Fig7Recipe(**recipe, balanced=True, mirrored=mirrored))
        data, means = ds.load_client(cfg, 1, 0), ds.spec("2").means  # client "2": both groups, group b shifted
        theta = fit(data)
        w, c, b = theta[:2], theta[2], theta[3]
        return max(abs(b + c * g + w @ (means[g, 0] + means[g, 1]) / 2) for g in (0, 1)), data

    error, data = intercept_error(True)
    assert error < 1e-5
    cells = np.bincount(2 * data.g_train.astype(int) + data.y_train.astype(int), minlength=4)
    assert cells.max() - cells.min() <= 1
    assert intercept_error(False)[0] > 1e-3


CONVERGED = {**FLHC_ONLY_SETTINGS, "n-train": 20000}  # half the samples of synthetic-fig7-flhc's settings: faster


def test_converged_recipe_gives_fair_flhc_the_five_partitions_whatever_the_training_seed():
    """synthetic-fig7-flhc's recipe (tenth session): on the clients' exact optima (n → ∞) Fair-FL+HC gives the paper's
    five partitions in order, each on a λ window of at least 0.1. With converged full-batch personalization the
    real runs follow: Δ within 0.03 of the closed form, the five on the draws of seeds 0 and 1, and on one fixed
    draw the training seed (initial model) changes Δ by < 1e-3 and the partitions not at all."""
    import dataclasses

    probe = load_probe()
    recipe = flhc_recipe()
    assert recipe.mirrored and recipe.balanced
    cfg = RunConfig.defaults(dataset="synthetic-fig7", **CONVERGED)
    lams = np.round(np.arange(0.0, 1.0 + 1e-9, 0.005), 6)
    delta_inf, psi_inf = probe.population_matrices(recipe)
    changes = probe.partition_changes(probe.flhc_partitions(delta_inf, psi_inf, cfg, lams))
    assert [p for _, p in changes] == probe.PAPER
    starts = [lam for lam, _ in changes] + [1.0 + 0.005]
    assert min(b - a for a, b in zip(starts[:-1], starts[1:], strict=True)) >= 0.1
    runs = {}
    for key, rec, seed in (("draw 0", recipe, 0), ("draw 1", recipe, 1),
                           ("draw 0, training seed 3", dataclasses.replace(recipe, draw_seed=0), 3)):
        with recipe_in_use(rec):
            runs[key] = probe.flhc_matrices(seed, **CONVERGED)[:2]
    for key, (delta, psi) in runs.items():
        assert np.abs(delta - delta_inf).max() < 0.03, key
        assert [p for _, p in probe.partition_changes(probe.flhc_partitions(delta, psi, cfg, lams))] == probe.PAPER, key
    assert np.abs(runs["draw 0"][0] - runs["draw 0, training seed 3"][0]).max() < 1e-3


def test_probe_population_line_and_its_preconditions(capsys):
    """fig7_probe --population prints the closed-form partitions first (five starred on the converged recipe); it
    needs logistic regression and the SP gap, and says so otherwise."""
    probe = load_probe()
    with recipe_in_use(DATASETS.get("synthetic-fig7").recipe):  # main() switches the recipe; put it back after
        probe.main(["--recipe", str(FLHC_ONLY_RECIPE_FILE), "--population", "--step", "0.005",
                    "--set", "model=logreg", "n-train=100", "n-test=20", "warmup-rounds=1", "normalize-distance=false"])
        first = capsys.readouterr().out.splitlines()[0]
        assert first.startswith("population  fair-flhc:") and first.count("*") == 5
        with pytest.raises(SystemExit):
            probe.main(["--recipe", str(FLHC_ONLY_RECIPE_FILE), "--population", "--set", "model=mlp"])
        assert "needs model=logreg, fairness-metric=sp" in capsys.readouterr().err


def test_recipe_private_axes_give_each_listed_client_a_feature_of_its_own():
    """private_axes = [6, 7, 8]: features x1, x6, x7, x8; a listed client's rule is cos t·x1 + sin t·(its axis),
    1 and 3 share one axis, 2 and 5 shift along x1; axis_scales multiply each feature (means and σ), and
    inconsistent fields are refused with the reason."""
    from fairfl_flower.data.fig7 import Fig7, Fig7Recipe

    recipe = Fig7Recipe(private_axes=["6", "7", "8"], axis_scales=[2.0, 1.0, 3.0, 1.0])
    ds = Fig7(recipe)
    assert recipe.num_features() == 4 and recipe.axes() == ["6", "7", "8"]
    rule = ds.spec("7").means[0, 1] - ds.spec("7").means[0, 0]  # 2 · separation · u, scaled per axis
    t = np.deg2rad(20.0)
    np.testing.assert_allclose(rule, 2.0 * np.array([2 * np.cos(t), 0.0, 3 * np.sin(t), 0.0]), atol=1e-12)
    np.testing.assert_allclose(ds.spec("7").sigma, [2.0, 1.0, 3.0, 1.0])
    moved = ds.spec("2").means[1] - ds.spec("2").means[0]
    np.testing.assert_allclose(moved, np.tile([-1.5 * 2.0, 0.0, 0.0, 0.0], (2, 1)), atol=1e-12)
    assert (ds.spec("1").means[..., 1:] == 0).all()  # 180°: on x1 only, no axis needed
    data = ds.load_client(RunConfig.defaults(dataset="synthetic-fig7", n_train=4000, n_test=10), 6, 0)
    assert data.x_train.shape == (4000, 5)
    np.testing.assert_allclose(data.x_train[:, :4].std(axis=0), [2 * 1.372, 1.0, 3 * 1.057, 1.0], rtol=0.05)
    shared = Fig7Recipe(private_axes=["1", "3"], angle_13=120.0, angles={})
    assert shared.axes() == ["1"] and Fig7(shared).spec("3").means.shape == (2, 2, 2)
    for bad, reason in [({"private_axes": ["2"]}, "cannot have an axis"),
                        ({"private_axes": ["6", "7"]}, "client 8's rule leaves x1"),
                        ({"private_axes": ["6", "7", "8"], "dimensions": 3}, "leave dimensions = 2"),
                        ({"private_axes": ["6", "7", "8"], "axis_scales": [1.0, 2.0]}, "must be 4 positive values"),
                        ({"axis_scales": [1.0, -1.0]}, "must be 2 positive values"),
                        ({"private_axes": ["6", "7", "8"], "offsets": {"7": [0.5, 0.5]}}, "has 4 features")]:
        with pytest.raises(ValueError, match=reason):
            Fig7Recipe.from_mapping(bad)


PRIVATE_AXES_FILE = ROOT / "docs" / "fig7-private-axes.json"


def _closed_form_and_fair_fca(recipe, fca_seed: int, fca_lams, cluster_lr: float) -> None:
    """On ``recipe``: Fair-FL+HC's closed form (raw Δ) gives the paper's five in order, and real Fair-FCA (logistic
    regression) gives them on ``fca_seed`` at ``fca_lams``."""
    probe = load_probe()
    delta, psi = probe.population_matrices(recipe)
    parts = probe.flhc_partitions(delta, psi, RunConfig.defaults(strategy="fair-flhc", dataset="synthetic-fig7"),
                                  np.round(np.arange(0, 1.0001, 0.01), 4))
    assert [p for _, p in probe.partition_changes(parts)] == probe.PAPER
    with recipe_in_use(recipe):
        got = [probe.fca_partition(lam, fca_seed, model="logreg", **{"cluster-lr": cluster_lr}) for lam in fca_lams]
    assert got == probe.PAPER


def test_private_axes_recipe_closed_form_and_fair_fca():
    """docs/fig7-private-axes.json (twelfth session): the clients' exact optima follow a numeric fit also with
    per-axis scales; on them Fair-FL+HC (raw Δ) gives the paper's five partitions in order; and real Fair-FCA
    (logistic regression, cluster-lr 0.002) gives the five on seed 0 at λ = 0, 0.82, 0.86, 0.92, 0.96."""
    from scipy.optimize import minimize
    from scipy.special import expit

    from fairfl_flower.data.fig7 import Fig7

    probe = load_probe()
    recipe = probe.load_recipe(str(PRIVATE_AXES_FILE))
    theta = probe.population_models(recipe)
    cfg = RunConfig.defaults(dataset="synthetic-fig7", n_train=20000, n_test=10)
    data = Fig7(recipe).load_client(cfg, 6, 0)  # client "7": its own axis, scaled
    x = np.hstack([data.x_train.astype(np.float64), np.ones((len(data.y_train), 1))])
    y = data.y_train.astype(np.float64)
    f = lambda t: (np.logaddexp(0, x @ t).mean() - y @ (x @ t) / len(y), x.T @ (expit(x @ t) - y) / len(y))  # noqa: E731
    fit = minimize(f, np.zeros(x.shape[1]), jac=True, method="BFGS", options={"gtol": 1e-10}).x
    np.testing.assert_allclose(fit, theta[6], atol=0.02)
    _closed_form_and_fair_fca(recipe, 0, (0.0, 0.82, 0.86, 0.92, 0.96), 0.002)


def test_synthetic_fig7_recipe_closed_form_and_fair_fca_with_one_start():
    """synthetic-fig7's recipe (fig7.json; twelfth session, the noise-aware climb plus sizes for Fair-FCA):
    Fair-FL+HC's closed form (n → ∞, exact personalization) gives the paper's five in order, and real Fair-FCA
    (logistic regression, cluster-lr 0.001) without restarts gives them on seed 1 at λ = 0, 0.8, 0.89, 0.92, 1."""
    _closed_form_and_fair_fca(fig7_recipe(), 1, (0.0, 0.8, 0.89, 0.92, 1.0), 0.001)
