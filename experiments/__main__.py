"""Reproduce the paper, one entry per figure or table.

    python -m experiments --list                         # every entry, what it shows, what data it needs
    python -m experiments tables                         # Gaussian Tables 1-6
    python -m experiments fig7                           # synthetic clustering experiment (no download)
    python -m experiments fig3 fig8 --seeds 5 --data-dir ../shared/data
    python -m experiments fig4 --seeds 5 --data-dir ../shared/data

Runs go under ``--out`` (default ``outputs/experiments``): ``runs/<entry>-<federation>/results.csv`` (the
results store; finished runs are skipped when an entry is run again), figures under ``figures/``, and
``REPORT.md``, which checks each claim of SPEC §7 against every result present.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from experiments.entries import ENTRIES
from experiments.runner import NoRuns, Unavailable, resolve_data, run_entry
from fairfl_flower.config import PROJECT_ROOT


def _data_root(arg: str | None) -> Path | None:
    root = arg or os.environ.get("FAIRFL_SHARED_DATA")
    return Path(root).expanduser().resolve() if root else None


def list_entries(data_root: Path | None) -> str:
    lines = [f"{'entry':<16} {'data needed':<22} {'available':<10} description"]
    for e in ENTRIES.values():
        have = 0
        for fed in e.federations:
            try:
                resolve_data(fed, data_root)
                have += 1
            except Unavailable:
                pass
        ok = "yes" if have == len(e.federations) else "partly" if have else "no"
        lines.append(f"{e.name:<16} {e.needs:<22} {ok:<10} {e.description}")
    lines.append("\ndata: 'acs-income' = ACSIncome task tables (offline bundle: 46 states) or a folktables cache; "
                 "'acs-full' = folktables cache of all 51 states (--download fetches it); 'adult' = UCI Adult files.")
    return "\n".join(lines)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C and `kill <pid>` both stop cleanly (flwr run terminated, SuperLink stopped, finished runs kept), even
    # when started with SIGINT ignored (a background job of a script inherits SIG_IGN, and Python keeps it).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__.split("\n\n")[0])
    parser.add_argument("entries", nargs="*", help="entry names (see --list)")
    parser.add_argument("--list", action="store_true", help="list the entries and exit")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5, as the paper)")
    parser.add_argument("--data-dir", help="data root: the offline bundle layout (acs/, acs_task_tables/, adult/); "
                                           "default $FAIRFL_SHARED_DATA")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "outputs" / "experiments"), help="output folder")
    parser.add_argument("--rounds", type=int, help="communication rounds (default: the entry's, 50)")
    parser.add_argument("--strategies", help="comma-separated: only these algorithms")
    parser.add_argument("--states", help="comma-separated: only these clients (ACS states)")
    parser.add_argument("--download", action="store_true", help="allow folktables to download missing ACS states")
    parser.add_argument("--no-run", action="store_true", help="only rebuild figures and the report from the stores")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    data_root = _data_root(args.data_dir)
    if args.list or not args.entries:
        print(list_entries(data_root))
        return 0
    unknown = [n for n in args.entries if n not in ENTRIES]
    if unknown:
        parser.error(f"unknown entry {', '.join(unknown)}; valid entries: {', '.join(ENTRIES)}")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    out = Path(args.out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    extra = {"states": args.states} if args.states else {}
    strategies = [s.strip() for s in args.strategies.split(",")] if args.strategies else None
    timings_path = out / "timings.json"  # measured wall time of each entry's last full run
    from experiments import figures

    failed = 0
    for name in args.entries:
        entry = ENTRIES[name]
        t0 = time.perf_counter()
        try:
            if entry.kind == "tables":
                print(figures.tables(out))
            elif entry.kind == "fig6":
                print("\n".join(str(p) for p in figures.fig6(out)))
            else:
                if not args.no_run:
                    runs, skipped = run_entry(name, seeds=list(range(args.seeds)), data_root=data_root, out_root=out,
                                     rounds=args.rounds, strategies=strategies, download=args.download, extra=extra,
                                     show_progress=not args.no_progress)
                    for r in runs:
                        print(f"{name} {r.tag}: {r.seconds:.0f} s; results store {r.folder / 'results.csv'}")
                    for tag, why in skipped.items():
                        print(f"{name} {tag}: not run: {why}", file=sys.stderr)
                for path in figures.entry_figures(name, out, data_root):
                    print(f"figure: {path}")
        except (Unavailable, NoRuns) as exc:
            print(f"{name}: cannot run: {exc}", file=sys.stderr)
            failed += 1
            continue
        if not args.no_run:  # re-read: another `python -m experiments` may have written meanwhile
            timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
            timings[name] = {"seconds": round(time.perf_counter() - t0, 1), "seeds": args.seeds,
                             "rounds": args.rounds or entry.rounds}
            timings_path.write_text(json.dumps(timings, indent=2) + "\n")
        print(f"{name}: {time.perf_counter() - t0:.0f} s")
    report = figures.report(out, data_root)
    print(f"report: {report}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept in the results store; the same command resumes", file=sys.stderr)
        sys.exit(130)
