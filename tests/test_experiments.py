"""Experiment entries resolve to valid runs; a tiny sweep runs end to end under the Ray simulation,
writes the results table and a plot, and resumes without redoing finished runs after an interruption."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from experiments.entries import ENTRIES
from experiments.runner import (
    NoRuns,
    Unavailable,
    _run_status,
    _superlink_alive,
    federation_overrides,
    resolve_data,
    run_entry,
    sweep_spec,
)
from fairfl_flower import sweep
from fairfl_flower.config import RunConfig
from tests.flwr_sim import REPO, sim_env


@pytest.mark.parametrize("name", [n for n, e in ENTRIES.items() if e.kind == "sweep"])
def test_every_entry_resolves_to_a_valid_list_of_runs(name, shared_data, tmp_path):
    entry = ENTRIES[name]
    for fed in entry.federations:
        try:
            data, note = resolve_data(fed, shared_data)
        except Unavailable as exc:
            assert "folktables cache of all 51 states" in str(exc)  # only ACSEmployment / PublicCoverage
            data = {**fed.data, "dataset": "acs", "data-dir": str(tmp_path)}
        overrides = federation_overrides(entry, fed, data, tmp_path, [0, 1], 3, None, {})
        runs = sweep.expand(RunConfig.defaults(**overrides))
        assert runs and len({n for n, _ in runs}) == len(runs)
        assert {c.seed for _, c in runs} == {0, 1}


def test_sweep_spec_filters_strategies_and_adds_seeds():
    spec = sweep_spec(ENTRIES["fig8"], [0, 1, 2], ["ifca", "fair-fca"])
    assert spec == "strategy=ifca; seed=0,1,2 | strategy=fair-fca; lambda=0.25,0.5,0.75; seed=0,1,2"


def test_a_federation_with_its_own_grids_runs_only_them(tmp_path):
    """fig7: one dataset, synthetic-fig7, as two federations: Fair-FCA and Fair-FL+HC, each with its settings and λ."""
    entry = ENTRIES["fig7"]
    fca_fed, flhc_fed = entry.federations
    assert sweep_spec(entry, [0], None, fca_fed) == "strategy=fair-fca; lambda=0,0.83,0.89,0.95,1; seed=0"
    assert sweep_spec(entry, [0, 1], None, flhc_fed) == "strategy=fair-flhc; lambda=0,0.1,0.22,0.36,1; seed=0,1"
    runs = {tag: sweep.expand(RunConfig.defaults(**federation_overrides(entry, fed, fed.data, tmp_path, [0], 3, None,
                                                                          {})))
            for tag, fed in (("fca", fca_fed), ("flhc", flhc_fed))}
    assert {c.dataset for rs in runs.values() for _, c in rs} == {"synthetic-fig7"}
    assert {(c.model, c.cluster_lr, c.ifca_restarts) for _, c in runs["fca"]} == {("logreg", 0.001, 4)}
    assert {(c.model, c.n_train, c.personalize_solver, c.normalize_distance) for _, c in runs["flhc"]} == {
        ("logreg", 320000, "newton", False)}
    with pytest.raises(NoRuns, match="no run of fig7 flhc uses strategies"):
        sweep_spec(entry, [0], ["fair-fca"], flhc_fed)
    with pytest.raises(NoRuns, match=r"no run of fig7 uses strategies \['fedavg'\]"):  # before any simulation
        run_entry("fig7", seeds=[0], data_root=None, out_root=tmp_path, strategies=["fedavg"], env={})


def test_missing_data_says_what_is_needed(tmp_path):
    with pytest.raises(Unavailable, match="needs data: pass --data-dir"):
        resolve_data(ENTRIES["fig3"].federations[0], None)
    with pytest.raises(Unavailable, match="needs UCI Adult"):
        resolve_data(ENTRIES["fig4"].federations[0], tmp_path)


def test_run_status_without_our_superlink_does_not_start_one(tmp_path):
    # `flwr ls` with no SuperLink would start a detached one in FLWR_HOME; the runner must not call it then.
    env = sim_env(tmp_path / "flwr")
    assert _run_status(env, "7").startswith("unknown: the local SuperLink exited")
    assert not (tmp_path / "flwr" / "local-superlink").exists()
    assert not _superlink_alive(env)


def test_unknown_entry_lists_valid_ones():
    proc = subprocess.run([sys.executable, "-m", "experiments", "fig99"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "valid entries: tables, fig6" in proc.stderr


@pytest.mark.simulation
def test_tiny_sweep_end_to_end_then_resume_after_interrupt(shared_data, tmp_path):
    env = {**sim_env(tmp_path / "flwr"), "PYTHONUNBUFFERED": "1"}
    # 6 runs of 4 rounds: enough work left after the first run that the interruption lands before the end
    cmd = [sys.executable, "-m", "experiments", "fig3", "--seeds", "3", "--rounds", "4", "--strategies",
           "fedavg,standalone", "--states", "AK,AL,WY", "--data-dir", str(shared_data), "--out", str(tmp_path / "out"),
           "--no-progress"]
    store = tmp_path / "out" / "runs" / "fig3-acsincome-sex" / "results.csv"
    # first attempt: interrupt (Ctrl-C) as soon as the first run is in the store
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not store.exists():
        time.sleep(0.2)
    assert store.exists(), proc.communicate()[0][-3000:] if proc.poll() is not None else "no run finished"
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=120)
    first = pd.read_csv(store)
    done_first = set(first["run"])
    assert 1 <= len(done_first) < 6
    # second attempt: finishes the rest, does not redo finished runs
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    final = pd.read_csv(store)
    assert set(final["run"]) == {f"strategy={s}_seed={k}" for s in ("standalone", "fedavg") for k in (0, 1, 2)}
    assert final.groupby("run").size().eq(3).all()  # eval-every = rounds: the final round x 3 clients, no duplicates
    for run in done_first:  # rows of runs finished before the interruption are untouched
        pd.testing.assert_frame_equal(final[final["run"] == run].reset_index(drop=True),
                                      first[first["run"] == run].reset_index(drop=True))
    log = (store.parent.parent / "fig3-acsincome-sex.log").read_text()
    assert log.count("already in the results store, skipped") == len(done_first)
    assert (tmp_path / "out" / "figures" / "fig3-accuracy-gap.png").stat().st_size > 0
    assert (tmp_path / "out" / "REPORT.md").exists()
