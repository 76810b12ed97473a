"""Run an experiment entry: resolve its data, then one Flower simulation per federation, each a sweep of
all the entry's runs (algorithms × λ × seeds), with a progress bar over runs and rounds.

The simulation is the real one: our local SuperLink (``scripts/superlink.sh``, stopped by PID) and
``flwr run . local --stream -c '... sweep="..."'``. Finished runs are in the federation's results
store; re-running an entry skips them.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from experiments.entries import ENTRIES, EVAL_EVERY, Experiment, Federation
from fairfl_flower import sweep
from fairfl_flower.config import PROJECT_ROOT, RunConfig

ENV_SCRIPT = PROJECT_ROOT / "scripts" / "env.sh"
SUPERLINK = PROJECT_ROOT / "scripts" / "superlink.sh"


class Unavailable(RuntimeError):
    """The data an entry needs is not at hand; the message says what is missing and how to get it."""


class NoRuns(ValueError):
    """``--strategies`` selects no run of an entry (or of one of its federations)."""


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return f'"{v}"' if isinstance(v, str) else repr(v)


def show(path: Path) -> str:
    """A path as people should read it in messages and the report: relative to the project when inside or
    beside it (e.g. ../shared/data/...), so the report names no machine-specific folder."""
    rel = os.path.relpath(path, PROJECT_ROOT)
    return rel if not rel.startswith("../../") else str(path)


def resolve_data(fed: Federation, data_root: Path | None, download: bool = False) -> tuple[dict, str]:
    """Run-config overrides for the federation's data, and a note saying which data it is."""
    if fed.needs == "none":
        return dict(fed.data), "generated (no download)"
    if data_root is None:
        raise Unavailable(f"{fed.tag} needs data: pass --data-dir (e.g. the offline bundle ../shared/data)")
    root = Path(data_root).expanduser().resolve()
    if fed.needs == "adult":
        folder = root / "adult" if (root / "adult" / "adult.data").exists() else root
        if not (folder / "adult.data").exists():
            raise Unavailable(f"{fed.tag} needs UCI Adult: {show(folder)}/adult.data and adult.test")
        return {**fed.data, "data-dir": str(folder)}, f"UCI Adult from {show(folder)} (48,842 rows)"
    task = fed.data["acs-task"]
    tables = root / "acs_task_tables" / task
    if task == "ACSIncome" and tables.is_dir():
        n = len(list(tables.glob("*.csv")))
        return ({**fed.data, "dataset": "csv-dir", "data-dir": str(tables)},
                f"{task} task tables from {show(tables)}: {n} of 51 states (the offline bundle lacks CA, FL, NY, TX, PR)"
                if n < 51 else f"{task} task tables, all {n} states")
    cache = root / "acs" if (root / "acs").is_dir() else root
    from fairfl_flower.data.acs import _state_code, state_list

    year_dir = cache / "2018" / "1-Year"
    missing = [s for s in state_list() if not (year_dir / f"psam_p{_state_code(s)}.csv").exists()]
    if missing and not download:
        raise Unavailable(
            f"{fed.tag} needs the folktables cache of all 51 states under {show(year_dir)} "
            f"({len(missing)} missing, e.g. {', '.join(missing[:5])}); add --download to fetch them"
        )
    return ({**fed.data, "dataset": "acs", "data-dir": str(cache), "download": download},
            f"{task} from the full folktables cache {show(cache)}")


@dataclass
class FederationRun:
    entry: str
    tag: str
    folder: Path
    note: str
    seconds: float = 0.0


def sweep_spec(entry: Experiment, seeds: list[int], strategies: list[str] | None,
               fed: Federation | None = None) -> str:
    """The ``sweep`` of one federation: its grids (the federation's own, else the entry's), restricted to
    ``strategies``, with the seeds added. Raises NoRuns when none of the strategies is in them."""
    grids = []
    for grid in (fed.grids if fed is not None and fed.grids else entry.grids):
        parts = dict(p.strip().split("=", 1) for p in grid.split(";"))
        if strategies:
            kept = [s for s in parts["strategy"].split(",") if s in strategies]
            if not kept:
                continue
            parts["strategy"] = ",".join(kept)
        parts["seed"] = ",".join(str(s) for s in seeds)
        grids.append("; ".join(f"{k}={v}" for k, v in parts.items()))
    if not grids:
        raise NoRuns(f"no run of {entry.name}{f' {fed.tag}' if fed is not None else ''} uses strategies {strategies}")
    return " | ".join(grids)


def federation_overrides(entry: Experiment, fed: Federation, data: dict, out_root: Path, seeds: list[int],
                         rounds: int, strategies: list[str] | None, extra: dict) -> dict:
    """The run config of one federation's sweep."""
    return {
        **data, **entry.overrides, **extra,
        "num-server-rounds": rounds, "eval-every": min(EVAL_EVERY, rounds),
        "sweep": sweep_spec(entry, seeds, strategies, fed),
        "output-dir": str(out_root / "runs"), "run-name": f"{entry.name}-{fed.tag}",
    }


def _env() -> dict:
    out = subprocess.run(["bash", "-c", f"source {ENV_SCRIPT} && env -0"], capture_output=True, check=True)
    return dict(line.split("=", 1) for line in out.stdout.decode().split("\0") if "=" in line)


ROUND_LINE = re.compile(r"\[[\w+-]+ round +(\d+)/(\d+)\]")
RUN_LINE = re.compile(r"\[run (\d+)/(\d+)\] (\S+): (started|done|already)")


def run_federation(overrides: dict, env: dict, total_runs: int, rounds: int, label: str, log_path: Path,
                   show_progress: bool = True) -> None:
    """One `flwr run` (a sweep); raises if the run did not finish successfully."""
    cfg_text = " ".join(f"{k}={_toml(v)}" for k, v in overrides.items())
    cmd = ["flwr", "run", ".", "local", "--stream", "-c", cfg_text]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=total_runs * rounds, desc=label, unit="round", disable=not show_progress, dynamic_ncols=True)
    run_id = None
    with open(log_path, "w") as log, subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True) as proc:
        try:
            for line in proc.stdout:
                log.write(line)
                if run_id is None and (m := re.search(r"Successfully started run (\d+)", line)):
                    run_id = m.group(1)
                if m := RUN_LINE.search(line):
                    bar.set_postfix_str(f"run {m.group(1)}/{m.group(2)} {m.group(3)}")
                    if m.group(4) == "already":
                        bar.update(rounds)
                elif ROUND_LINE.search(line):
                    bar.update(1)
                elif "Traceback" in line or "ERROR" in line:
                    bar.write(line.rstrip())
        except BaseException:  # Ctrl-C or SIGTERM: end `flwr run` first (left alive, it would start a SuperLink of
            proc.terminate()    # its own once ours is gone), then the caller stops our SuperLink and with it the run
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        proc.wait()
    bar.close()
    status = _run_status(env, run_id)
    if status != "finished:completed":
        raise RuntimeError(f"{label}: flwr run ended with status {status!r}; see {log_path}")


def _run_status(env: dict, run_id: str | None) -> str:
    import json

    if run_id is None:
        return "not started"
    if not _superlink_alive(env):  # `flwr ls` would start a detached SuperLink of its own, left running
        return "unknown: the local SuperLink exited (see $FLWR_HOME/local-superlink/superlink.log)"
    out = subprocess.run(["flwr", "ls", "--format", "json"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    runs = {r["run-id"]: r for r in json.loads(out.stdout)["runs"]}
    return runs.get(run_id, {}).get("status", "unknown")


def _superlink_alive(env: dict) -> bool:
    return subprocess.run(["bash", str(SUPERLINK), "status"], env=env, capture_output=True).returncode == 0


class LocalSuperLink:
    """Our local simulation SuperLink for the duration of a `with` block (stopped by PID)."""

    def __init__(self, env: dict) -> None:
        self.env = env

    def __enter__(self) -> LocalSuperLink:
        subprocess.run(["bash", str(SUPERLINK), "start"], env=self.env, check=True, capture_output=True)
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["bash", str(SUPERLINK), "stop"], env=self.env, capture_output=True)


def run_entry(name: str, *, seeds: list[int], data_root: Path | None, out_root: Path, rounds: int | None = None,
              strategies: list[str] | None = None, download: bool = False, extra: dict | None = None,
              env: dict | None = None, show_progress: bool = True) -> tuple[list[FederationRun], dict[str, str]]:
    """Run every federation of an entry whose data is at hand (skipping finished runs). Returns where the
    stores are, and the federations that could not run with the reason; raises Unavailable if none can."""
    entry = ENTRIES[name]
    if entry.reuses:
        return run_entry(entry.reuses, seeds=seeds, data_root=data_root, out_root=out_root, rounds=rounds,
                         strategies=strategies, download=download, extra=extra, env=env, show_progress=show_progress)
    rounds = rounds or entry.rounds
    resolved, skipped, empty = [], {}, []
    for fed in entry.federations:  # resolve (and validate) everything before starting a simulation
        try:
            data, note = resolve_data(fed, data_root, download)
        except Unavailable as exc:
            skipped[fed.tag] = str(exc)
            continue
        try:
            overrides = federation_overrides(entry, fed, data, out_root, seeds, rounds, strategies, extra or {})
        except NoRuns as exc:
            empty.append(str(exc))  # --strategies leaves nothing to run on this federation
            continue
        resolved.append((fed, overrides, note, len(sweep.expand(RunConfig.defaults(**overrides)))))
    if not resolved:
        if skipped:
            raise Unavailable("; ".join(skipped.values()))
        raise NoRuns(f"no run of {name} uses strategies {strategies}")
    env = env or _env()
    results = []
    with LocalSuperLink(env):
        for fed, overrides, note, total in resolved:
            t0 = time.perf_counter()
            folder = out_root / "runs" / overrides["run-name"]
            run_federation(overrides, env, total, rounds, f"{name} {fed.tag}", folder.parent / f"{folder.name}.log",
                           show_progress)
            results.append(FederationRun(name, fed.tag, folder, note, time.perf_counter() - t0))
    return results, skipped


def store_folder(out_root: Path, entry_name: str, fed: Federation) -> Path:
    entry = ENTRIES[entry_name]
    base = entry.reuses or entry.name
    return out_root / "runs" / f"{base}-{fed.tag}"


def environment_ok() -> bool:
    return os.access(SUPERLINK, os.R_OK)
