"""Final results, seed summaries, figures and REPORT.md on synthetic results stores (no simulation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments import plots as P
from experiments import report as R

CORE = ("standalone", "fedavg", "maml-fl", "ifca", "fedprox", "flhc", "cfl")


def make_store(spec: dict, seeds=(0, 1, 2), n_clients: int = 4, rounds=(5, 10), partitions: dict | None = None,
               attribute: str = "sex", jitter: float = 0.001) -> pd.DataFrame:
    """A results store: ``spec[(strategy, λ)] = (accuracy, sp)`` at the final round (every client, plus a
    small per-seed jitter); earlier rounds hold different values; ``partitions[(strategy, λ)]`` = clusters of
    partition ids."""
    rows = []
    for (strategy, lam), (acc, sp) in spec.items():
        for seed in seeds:
            run = f"strategy={strategy}_lambda={lam}_seed={seed}"
            for rnd in rounds:
                final = rnd == max(rounds)
                for c in range(n_clients):
                    cluster = np.nan
                    if partitions and (strategy, lam) in partitions:
                        cluster = next(k for k, cl in enumerate(partitions[(strategy, lam)]) if c in cl)
                    d = jitter * (seed - 1)
                    rows.append({
                        "run": run, "experiment": "test", "strategy": strategy, "dataset": "synthetic",
                        "attribute": attribute, "lambda": lam, "seed": seed, "round": rnd, "client": f"c{c}",
                        "partition_id": c, "n": 100, "loss": 0.5, "accuracy": acc + d if final else 0.1,
                        "sp": sp + d if final else 0.9, "eqop": sp / 2 if final else 0.9, "eo": sp if final else 0.9,
                        "cluster": cluster, "deployed": "x", "undefined_sp": False, "undefined_eqop": c == 0,
                        "undefined_eo": False,
                    })
    return pd.DataFrame(rows)


def summary_of(store: pd.DataFrame) -> pd.DataFrame:
    return P.summarize(P.final_results(store))


# ------------------------------------------------------------------------------------------------------------
# final_results / summarize
# ------------------------------------------------------------------------------------------------------------


def test_final_results_takes_last_round_and_unweighted_client_average():
    rows = []
    for rnd, accs in ((1, (0.0, 0.0)), (2, (0.5, 1.0))):
        for c, (acc, n) in enumerate(zip(accs, (10, 1000), strict=True)):
            rows.append({"run": "r", "strategy": "fedavg", "lambda": 0.0, "seed": 3, "round": rnd, "client": f"c{c}",
                         "partition_id": c, "n": n, "accuracy": acc, "sp": 0.1 * (c + 1), "eqop": 0.0, "eo": 0.2,
                         "cluster": np.nan})
    # a second run whose last round is 3 (different runs may end at different rounds)
    for rnd in (1, 3):
        rows.append({"run": "s", "strategy": "ifca", "lambda": 0.0, "seed": 0, "round": rnd, "client": "c0",
                     "partition_id": 0, "n": 5, "accuracy": rnd / 10, "sp": 0.0, "eqop": 0.0, "eo": 0.0, "cluster": 1})
    final = P.final_results(pd.DataFrame(rows)).set_index("run")
    assert final.loc["r", "round"] == 2 and final.loc["s", "round"] == 3
    assert final.loc["r", "accuracy"] == pytest.approx(0.75)  # n-weighted would be 0.995
    assert final.loc["r", "sp"] == pytest.approx(0.15)
    assert final.loc["r", "n_clients"] == 2 and final.loc["r", "seed"] == 3
    assert final.loc["r", "partition"] is None
    assert final.loc["s", "accuracy"] == pytest.approx(0.3)
    assert final.loc["s", "partition"] == [["c0"]] and final.loc["s", "partition_ids"] == [[0]]


def test_final_partition_and_undefined_counts():
    store = make_store({("ifca", 0.0): (0.8, 0.1)}, seeds=(0,), partitions={("ifca", 0.0): [{1, 3}, {0, 2}]})
    final = P.final_results(store)
    assert final.loc[0, "partition"] == [["c0", "c2"], ["c1", "c3"]]
    assert final.loc[0, "partition_ids"] == [[0, 2], [1, 3]]
    assert final.loc[0, "undefined_eqop"] == 1 and final.loc[0, "undefined_sp"] == 0


def test_summarize_mean_std_over_seeds():
    store = make_store({("fedavg", 0.0): (0.7, 0.1), ("fair-fca", 0.5): (0.6, 0.05)}, jitter=0.1)
    s = summary_of(store).set_index("strategy")
    assert s.loc["fedavg", "accuracy_mean"] == pytest.approx(0.7)
    assert s.loc["fedavg", "accuracy_std"] == pytest.approx(np.std([0.6, 0.7, 0.8]))
    assert s.loc["fedavg", "sp_std"] == pytest.approx(np.std([0.0, 0.1, 0.2]))
    assert s.loc["fedavg", "n_seeds"] == 3 and s.loc["fedavg", "seeds"] == [0, 1, 2]
    assert s.loc["fair-fca", "label"] == "Fair-FCA λ=0.5"
    assert list(s.index) == ["fedavg", "fair-fca"]  # paper order


def test_partition_text_and_pareto_mask():
    assert P.partition_text([[8, 7, 2, 4, 5, 6], [3, 1]]) == "{1,3} | {2,4,5,6,7,8}"
    assert P.pareto_mask([0.1, 0.2, 0.05, 0.2], [0.8, 0.9, 0.7, 0.85]).tolist() == [True, True, True, False]


# ------------------------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------------------------


def _written(paths):
    assert {p.suffix for p in paths} == {".png", ".pdf"}
    for p in paths:
        assert p.exists() and p.stat().st_size > 1000, p


FIG7_PARTS = {  # paper numbering minus 1 (partition ids)
    0.0: [{0, 2}, {1, 3, 4, 5, 6, 7}], 0.25: [{0, 2, 7}, {1, 3, 4, 5, 6}], 0.5: [{0, 2, 6, 7}, {1, 3, 4, 5}],
    0.75: [{0, 2, 5, 6, 7}, {1, 3, 4}], 1.0: [{1, 4}, {0, 2, 3, 5, 6, 7}],
}


def fig7_store(flhc_parts: dict | None = None) -> pd.DataFrame:
    spec, parts = {}, {}
    for lam, p in FIG7_PARTS.items():
        for s in ("fair-fca", "fair-flhc"):
            spec[(s, lam)] = (0.8 - 0.1 * lam, 0.2 - 0.1 * lam)
            parts[(s, lam)] = (flhc_parts or {}).get(lam, p) if s == "fair-flhc" else p
    return make_store(spec, n_clients=8, partitions=parts)


def test_every_plot_writes_png_and_pdf(tmp_path):
    core = summary_of(make_store({(s, 0.0): (0.7 + 0.01 * k, 0.1 - 0.01 * k) for k, s in enumerate(CORE)}))
    _written(P.plot_accuracy_gap(core, tmp_path / "accgap", "sp", "test"))
    lams = (0.25, 0.5, 1.0)
    spec = {("ifca", 0.0): (0.8, 0.2), ("flhc", 0.0): (0.82, 0.21), ("cfl", 0.0): (0.79, 0.19)}
    for f in ("fair-fca", "fair-flhc", "fair-cfl"):
        spec.update({(f, lam): (0.8 - 0.1 * lam, 0.2 - 0.1 * lam) for lam in lams})
    s8 = summary_of(make_store(spec))
    _written(P.plot_fig8({"acsincome-race": s8, "acsincome-sex": s8}, tmp_path / "fig8", "sp"))
    _written(P.plot_pareto(s8, tmp_path / "pareto", "eqop"))
    comp = pd.DataFrame({"client": [f"S{i}" for i in range(20)], "n": 1000, "frac_a_y0": 0.4, "frac_a_y1": 0.3,
                         "frac_b_y0": 0.2, "frac_b_y1": 0.1, "frac_b": 0.3,
                         "p_y1_a": np.linspace(0.3, 0.6, 20), "p_y1_b": np.linspace(0.2, 0.5, 20)})
    comp.loc[3, "p_y1_b"] = np.nan  # an empty group
    _written(P.plot_composition(comp, tmp_path / "comp", "test", groups=("White", "Non-White")))


def test_plot_fig7_partition_text(tmp_path):
    flhc = {0.5: [{0, 2}, {1, 4}, {3, 5, 6, 7}]}  # a three-cluster case for FL+HC
    paths, texts = P.plot_fig7(P.final_results(fig7_store(flhc)), tmp_path / "fig7")
    _written(paths)
    assert texts["fair-fca"] == {
        0.0: "{1,3} | {2,4,5,6,7,8}", 0.25: "{1,3,8} | {2,4,5,6,7}", 0.5: "{1,3,7,8} | {2,4,5,6}",
        0.75: "{1,3,6,7,8} | {2,4,5}", 1.0: "{1,3,4,6,7,8} | {2,5}",
    }
    assert texts["fair-flhc"][0.5] == "{1,3} | {2,5} | {4,6,7,8}"


def test_plot_fig7_one_panel_per_federation_and_algorithm(tmp_path):
    """The fig7 experiment's two federations: both algorithms on one, Fair-FL+HC alone on the other."""
    one = P.final_results(fig7_store({0.5: [{0, 2}, {1, 4}, {3, 5, 6, 7}]}))
    own = P.final_results(fig7_store())
    own = own[own["strategy"] == "fair-flhc"]
    paths, texts = P.plot_fig7({"fig7": one, "flhc": own}, tmp_path / "fig7")
    _written(paths)
    assert list(texts) == ["fair-fca (fig7)", "fair-flhc (fig7)", "fair-flhc (flhc)"]
    assert texts["fair-flhc (fig7)"][0.5] == "{1,3} | {2,5} | {4,6,7,8}"
    assert texts["fair-flhc (flhc)"][0.5] == "{1,3,7,8} | {2,4,5,6}"


# ------------------------------------------------------------------------------------------------------------
# Claim checks and the report
# ------------------------------------------------------------------------------------------------------------


def _by_id(checks):
    return {c.claim: c.verdict for c in checks}


def claim3_store(standalone_sp: float) -> pd.DataFrame:
    spec = {("standalone", 0.0): (0.70, standalone_sp), ("fedavg", 0.0): (0.76, 0.12)}
    spec.update({(s, 0.0): (0.77, 0.11) for s in R.PERSONALIZED})
    return make_store(spec)


def test_claim3_verdicts():
    got = _by_id(R.check_claim3(summary_of(claim3_store(0.05))))
    assert got["3a"] == got["3b"] == got["3c"] == R.HOLDS
    assert got["3d"].startswith("cannot check")  # no data composition given
    got = _by_id(R.check_claim3(summary_of(claim3_store(0.115))))  # FedAvg now fairer than Standalone
    assert got["3a"] == R.HOLDS and got["3b"] == R.FAILS and got["3c"] == R.HOLDS
    comp = pd.DataFrame({"frac_a_y0": [0.3, 0.3], "frac_b_y0": [0.31, 0.29], "frac_a_y1": [0.25, 0.3],
                         "frac_b_y1": [0.14, 0.11]})
    assert _by_id(R.check_claim3(summary_of(claim3_store(0.05)), comp=comp))["3d"] == R.HOLDS


def adult_store(ifca_parts) -> pd.DataFrame:
    spec = {("standalone", 0.0): (0.70, 0.20), ("fedavg", 0.0): (0.75, 0.10), ("maml-fl", 0.0): (0.76, 0.08),
            ("ifca", 0.0): (0.76, 0.11), ("fedprox", 0.0): (0.76, 0.12), ("flhc", 0.0): (0.77, 0.12),
            ("cfl", 0.0): (0.75, 0.11)}
    parts = {("ifca", 0.0): ifca_parts, ("flhc", 0.0): [{0, 1, 3, 4}, {2}]}
    return make_store(spec, n_clients=5, partitions=parts, attribute="race")


def test_claim4_verdicts():
    store = adult_store([{0, 1, 2}, {3, 4}])
    final = P.final_results(store)
    got = _by_id(R.check_claim4(P.summarize(final), final))
    assert all(got[k] == R.HOLDS for k in ("4a.a", "4a.b", "4a.c", "4a.d", "4a.e", "4b", "4c")), got
    final = P.final_results(adult_store([{0, 1}, {2, 3, 4}]))
    checks = {c.claim: c for c in R.check_claim4(P.summarize(final), final)}
    assert checks["4b"].verdict == R.FAILS and "{0,1} | {2,3,4}" in checks["4b"].detail
    assert checks["4c"].verdict == R.HOLDS
    assert all(v.startswith("cannot check (no Adult)") for v in _by_id(R.check_claim4(None, None,
                                                                                       why="no Adult")).values())


def test_claim6_verdicts():
    final = P.final_results(fig7_store())
    got = _by_id(R.check_claim6(final))
    assert set(got.values()) == {R.HOLDS}, got
    assert len(got) == 9  # 4 per algorithm + agreement
    final = P.final_results(fig7_store({1.0: [{0, 2}, {1, 3, 4, 5, 6, 7}]}))  # FL+HC wrong at λ = 1
    got = _by_id(R.check_claim6(final))
    assert got["6b1"] == R.FAILS and got["6c"] == R.FAILS and got["6a1"] == R.HOLDS
    # intermediate partitions present but in the opposite λ order
    swapped = {0.25: FIG7_PARTS[0.75], 0.75: FIG7_PARTS[0.25]}
    got = _by_id(R.check_claim6(P.final_results(fig7_store(swapped))))
    assert got["6bm"] == R.HOLDS and got["6bo"] == R.FAILS
    # Fair-FL+HC alone on its own federation: four sub-claims, lettered d, no agreement check
    got = R.check_claim6(P.final_results(fig7_store()), strategies=("fair-flhc",), tags="d", where=" on X")
    assert {c.claim: c.verdict for c in got} == {"6d0": R.HOLDS, "6d1": R.HOLDS, "6dm": R.HOLDS, "6do": R.HOLDS}
    assert all(" on X" in c.statement for c in got)


def test_claim7_and_claim8_verdicts():
    spec = {("ifca", 0.0): (0.80, 0.20), ("flhc", 0.0): (0.82, 0.21)}
    spec.update({("fair-fca", lam): (0.80 - 0.1 * lam, 0.20 - 0.1 * lam) for lam in (0.25, 0.5, 1.0)})
    spec.update({("fair-flhc", lam): (0.83, 0.20 - 0.1 * lam) for lam in (0.25, 0.5, 1.0)})  # no accuracy cost
    got = _by_id(R.check_claim7({"acsemployment-race": summary_of(make_store(spec))}, why={"acsincome-sex": "no"}))
    assert got["7.acsemployment-race.1a"] == got["7.acsemployment-race.1b"] == R.HOLDS
    assert got["7.acsemployment-race.1c"] == R.HOLDS and got["7.acsemployment-race.2b"] == R.FAILS
    assert got["7.acsemployment-race.d"] == R.HOLDS  # FL+HC more accurate than IFCA
    assert got["7.acsincome-sex.1a"] == "cannot check (no)"
    from experiments.tables import rows_as_dicts

    got = _by_id(R.check_claim8(rows_as_dicts()))
    assert got["8a"] == got["8c"] == got["8d"] == got["8e"] == got["8f"] == R.HOLDS
    assert got["8b"].startswith("cannot check")
    assert all(v.startswith("cannot check") for v in _by_id(R.check_claim8(None)).values())


def test_write_report(tmp_path):
    results = {"fig3": {"acsincome-sex": claim3_store(0.05)}, "fig4": {"adult-race": adult_store([{0, 1, 2}, {3, 4}])},
               "fig7": {tag: fig7_store().query("strategy == @s") for tag, s in (("fca", "fair-fca"), ("flhc", "fair-flhc"))}}
    unavailable = {e: "needs ACSEmployment for all states, not in the offline bundle" for e in ("fig1", "fig2", "fig5")}
    notes = {"fig3": "offline bundle: ACSIncome task tables, 46 of 51 states (no CA, FL, NY, TX, PR)"}
    path = R.write_report(tmp_path, results, None, notes, unavailable, figures={})
    text = path.read_text()
    assert path == tmp_path / "REPORT.md"
    for n in range(1, 10):
        assert f"## Claim {n} —" in text
    assert "| 1a | every collaborative method has a smaller SP gap than Standalone | cannot check (needs " \
           "ACSEmployment for all states, not in the offline bundle)" in text
    assert "| 3b | every collaborative method is less fair (SP gap) than Standalone | **holds**" in text
    assert "| 4b | IFCA clusters {0,1,2} \\| {3,4} | **holds**" in text
    assert "| 6c | both algorithms give the same memberships at every λ | **holds**" in text
    assert "| 6b0 | Fair-FL+HC (λ=0) clusters {1,3} \\| {2,4,5,6,7,8} | **holds**" in text  # from the flhc federation
    assert "| 8a |" in text and "cannot check (Gaussian tables not computed)" in text
    assert "46 of 51 states" in text and "`python -m experiments fig3 --seeds 3 --data-dir DATA_DIR`" in text
    assert "seeds 0, 1, 2 (3); final round 10" in text
    assert "0.7000 ± 0.0008" in text  # Standalone accuracy: mean ± population std over the 3 seeds
    assert "cannot check (no results for unscaled / acsincome-sex (not run))" in text


def test_write_report_draws_and_links_figures(tmp_path):
    path = R.write_report(tmp_path, {"fig7": {"fig7": fig7_store()}}, None, {}, {})
    text = path.read_text()
    assert "![fig7](figures/fig7.png)" in text
    assert (tmp_path / "figures" / "fig7.png").stat().st_size > 1000
    assert (tmp_path / "figures" / "fig7.pdf").exists()
