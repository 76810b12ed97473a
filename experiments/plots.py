"""Results of the sweeps as the paper shows them: final-round averages, seed summaries and the figures.

Pure functions over pandas DataFrames (no Flower, no simulation); matplotlib with the Agg backend; every
figure is written as PNG and PDF by :func:`save`.

* :func:`final_results` — per run, the unweighted client averages of the final evaluation round (SPEC §1)
  and the final partition (clusters → client names / partition ids);
* :func:`summarize` — per (strategy, λ): mean, std (population, ddof = 0) and number of seeds;
* :func:`plot_composition` (Figs. 1–4 (a, b)), :func:`plot_accuracy_gap` (Figs. 1–5 (c)),
  :func:`plot_fig7`, :func:`plot_fig8`, :func:`plot_pareto` (ours).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

METRICS = ("accuracy", "sp", "eqop", "eo")
METRIC_LABELS = {"accuracy": "local accuracy", "sp": "SP gap", "eqop": "EqOp gap", "eo": "EO gap"}
NAMES = {
    "standalone": "Standalone", "fedavg": "FedAvg", "maml-fl": "MAML-FL", "ifca": "IFCA", "fedprox": "FedProx",
    "flhc": "FL+HC", "cfl": "CFL-Cosine", "fairfed": "FairFed", "fairfed-af": "FairFed-AF",
    "fair-fca": "Fair-FCA", "fair-flhc": "Fair-FL+HC", "fair-cfl": "Fair-CFL",
}
#: each fair variant and its base algorithm (the λ = 0 equivalent)
FAIR_BASE = {"fair-fca": "ifca", "fair-flhc": "flhc", "fair-cfl": "cfl"}
STYLE = {  # strategy -> (marker, color)
    "standalone": ("X", "black"), "fedavg": ("o", "tab:gray"), "maml-fl": ("P", "tab:purple"),
    "ifca": ("o", "tab:blue"), "fedprox": ("v", "tab:brown"), "flhc": ("D", "tab:orange"),
    "cfl": ("^", "tab:green"), "fairfed": ("*", "tab:red"), "fairfed-af": ("h", "tab:pink"),
    "fair-fca": ("s", "tab:blue"), "fair-flhc": ("^", "tab:orange"), "fair-cfl": ("p", "tab:green"),
}
GROUP_NAMES = {"race": ("White", "Non-White"), "sex": ("Male", "Female")}


def display_name(strategy: str) -> str:
    return NAMES.get(strategy, strategy)


def save(fig, path_without_suffix: str | Path) -> list[Path]:
    """Write ``fig`` as ``<path>.png`` (150 dpi) and ``<path>.pdf``, close it; returns both paths."""
    base = Path(path_without_suffix)
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [base.with_name(base.name + ".png"), base.with_name(base.name + ".pdf")]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


# ------------------------------------------------------------------------------------------------------------
# Tables
# ------------------------------------------------------------------------------------------------------------


def _partition(rows: pd.DataFrame) -> tuple[list[list[str]] | None, list[list[int]] | None]:
    """The clusters of one run's final round: client names and partition ids, each cluster in partition-id
    order, clusters ordered by their first member; None when the run is not clustered."""
    if "cluster" not in rows or rows["cluster"].isna().all():
        return None, None
    rows = rows[rows["cluster"].notna()]
    order = "partition_id" if "partition_id" in rows else "client"
    clusters = [g.sort_values(order) for _, g in rows.groupby("cluster")]
    clusters.sort(key=lambda g: g[order].iloc[0])
    names = [[str(c) for c in g["client"]] for g in clusters]
    ids = [[int(i) for i in g["partition_id"]] for g in clusters] if "partition_id" in rows else None
    return names, ids


def final_results(store: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its final evaluation round's unweighted client averages of accuracy, sp, eqop, eo.

    Columns: run, strategy, lambda, seed (and experiment, dataset, attribute when present), round (the final
    one), n_clients, accuracy, sp, eqop, eo, undefined_<metric> (number of clients with an empty conditioning
    cell, when the store has those columns), partition (list of clusters, each a list of client names; None
    when not clustered) and partition_ids (the same with partition ids)."""
    if store.empty:
        raise ValueError("final_results: the results store is empty")
    missing = [c for c in ("run", "strategy", "lambda", "seed", "round", "client", *METRICS) if c not in store]
    if missing:
        raise ValueError(f"final_results: the store lacks columns {missing}")
    ident = [c for c in ("experiment", "dataset", "attribute") if c in store]
    store = store.assign(**{"lambda": store["lambda"].astype(float).fillna(0.0)})
    out = []
    for run, rows in store.groupby("run", sort=False):
        last = rows[rows["round"] == rows["round"].max()]
        first = last.iloc[0]
        rec = {"run": run, "strategy": first["strategy"], "lambda": float(first["lambda"]),
               "seed": int(first["seed"]), **{c: first[c] for c in ident},
               "round": int(first["round"]), "n_clients": int(last["client"].nunique())}
        for m in METRICS:
            rec[m] = float(last[m].astype(float).mean())  # unweighted over clients (SPEC §1)
        for m in ("sp", "eqop", "eo"):
            col = f"undefined_{m}"
            if col in last:
                rec[col] = int(last[col].astype(str).str.lower().isin(("true", "1", "1.0")).sum())
        rec["partition"], rec["partition_ids"] = _partition(last)
        out.append(rec)
    return pd.DataFrame(out).sort_values(["strategy", "lambda", "seed"], kind="stable").reset_index(drop=True)


def summarize(final: pd.DataFrame) -> pd.DataFrame:
    """Per (strategy, λ): ``<metric>_mean``, ``<metric>_std`` (over seeds, ddof = 0, so one seed gives 0),
    ``n_seeds``, ``seeds`` and a display ``label`` ("Fair-FCA λ=0.5")."""
    rows = []
    for (strategy, lam), g in final.groupby(["strategy", "lambda"], sort=True):
        rec = {"strategy": strategy, "lambda": float(lam), "n_seeds": int(g["seed"].nunique()),
               "seeds": sorted(int(s) for s in g["seed"].unique())}
        for m in METRICS:
            vals = g[m].astype(float).to_numpy()
            rec[f"{m}_mean"] = float(vals.mean())
            rec[f"{m}_std"] = float(vals.std(ddof=0))
        rec["label"] = display_name(strategy) + (f" λ={lam:g}" if strategy in FAIR_BASE else "")
        rows.append(rec)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    rank = {s: k for k, s in enumerate(NAMES)}
    out["_order"] = out["strategy"].map(lambda s: rank.get(s, len(rank)))
    return out.sort_values(["_order", "strategy", "lambda"]).drop(columns="_order").reset_index(drop=True)


def canonical_partition(clusters: Iterable[Iterable]) -> tuple[tuple, ...]:
    """A partition as a hashable value that ignores the order of clusters and of members."""
    return tuple(sorted(tuple(sorted(c)) for c in clusters))


def dataset_of(final: pd.DataFrame, default: str = "") -> str:
    """The dataset name of a results table (its first row), or ``default`` when it has none."""
    return str(final["dataset"].iloc[0]) if "dataset" in final.columns and len(final) else default


def members_partition(members: Mapping) -> tuple[tuple, ...]:
    """A member -> cluster-label map (e.g. a strategy's client name -> cluster) as a canonical partition."""
    return canonical_partition([m for m, c in members.items() if c == label] for label in set(members.values()))


def partition_text(clusters: Iterable[Iterable]) -> str:
    """``{1,3} | {2,4,5,6,7,8}``: clusters ordered by their smallest member."""
    return " | ".join("{" + ",".join(str(m) for m in c) + "}" for c in sorted(canonical_partition(clusters)))


def modal_partition(final: pd.DataFrame, strategy: str, lam: float | None = None,
                    offset: int = 0) -> tuple[tuple | None, int, int]:
    """The most frequent final partition over seeds of (strategy, λ), in partition ids + ``offset``:
    (partition or None, seeds that produced it, seeds in total)."""
    sel = final[final["strategy"] == strategy]
    if lam is not None:
        sel = sel[np.isclose(sel["lambda"].astype(float), lam)]
    parts = [canonical_partition([[i + offset for i in c] for c in p]) for p in sel["partition_ids"]
             if p is not None]
    if not parts:
        return None, 0, len(sel)
    part, count = Counter(parts).most_common(1)[0]
    return part, count, len(sel)


# ------------------------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------------------------


def plot_composition(comp: pd.DataFrame, path: str | Path, title: str = "",
                     groups: Sequence[str] = ("group a", "group b"), max_clients: int = 12) -> list[Path]:
    """Figs. 1–4 (a, b) from a :func:`fairfl_flower.data.acs.composition_frame`: (a) stacked fractions of
    samples in each (group, label) cell for up to ``max_clients`` evenly chosen clients; (b) histogram over
    all clients (normalized frequency) of the fraction of label-1 samples within each group."""
    ga, gb = groups
    idx = np.unique(np.linspace(0, len(comp) - 1, min(max_clients, len(comp))).round().astype(int))
    shown = comp.iloc[idx]
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(11, 3.9), gridspec_kw={"width_ratios": [1.4, 1]})
    cells = [("frac_a_y1", f"{ga}, y=1", "tab:blue"), ("frac_a_y0", f"{ga}, y=0", "lightsteelblue"),
             ("frac_b_y1", f"{gb}, y=1", "tab:orange"), ("frac_b_y0", f"{gb}, y=0", "navajowhite")]
    x = np.arange(len(shown))
    bottom = np.zeros(len(shown))
    for col, label, color in cells:
        vals = shown[col].astype(float).to_numpy()
        ax_a.bar(x, vals, bottom=bottom, color=color, label=label, edgecolor="white", linewidth=0.5)
        bottom += vals
    ax_a.set_xticks(x, [str(c) for c in shown["client"]], rotation=45 if len(shown) > 6 else 0, ha="right"
                    if len(shown) > 6 else "center", fontsize=8)
    ax_a.set_ylim(0, 1)
    ax_a.set_ylabel("fraction of samples")
    ax_a.set_title(f"(a) samples per (group, label), {len(shown)} of {len(comp)} clients", fontsize=10)
    ax_a.legend(fontsize=8, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.22 if len(shown) > 6 else -0.1))
    bins = np.linspace(0, 1, 21)
    for col, name, color in (("p_y1_a", ga, "tab:blue"), ("p_y1_b", gb, "tab:orange")):
        vals = comp[col].astype(float).dropna().to_numpy()
        if len(vals):
            ax_b.hist(vals, bins=bins, weights=np.full(len(vals), 1 / len(vals)), alpha=0.55, color=color,
                      edgecolor=color, label=f"{name} (mean {vals.mean():.2f})")
    ax_b.set_xlabel("fraction of label-1 samples within the group")
    ax_b.set_ylabel("normalized frequency over clients")
    ax_b.set_title(f"(b) label-1 rate per group, {len(comp)} clients", fontsize=10)
    ax_b.set_xlim(0, 1)
    ax_b.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save(fig, path)


def _errorbar(ax, row: pd.Series, metric: str, marker: str, color: str, label: str | None, size: float = 8,
              filled: bool = True) -> None:
    ax.errorbar(row[f"{metric}_mean"], row["accuracy_mean"], xerr=row[f"{metric}_std"], yerr=row["accuracy_std"],
                fmt=marker, color=color, ms=size, capsize=3, elinewidth=1, label=label,
                mfc=color if filled else "white", mec=color)


def _axes_labels(ax, metric: str) -> None:
    ax.set_xlabel(f"average local {METRIC_LABELS[metric]} (lower is fairer)")
    ax.set_ylabel("average local accuracy")
    ax.grid(alpha=0.3)


def plot_accuracy_gap(summary: pd.DataFrame, path: str | Path, metric: str = "sp", title: str = "") -> list[Path]:
    """Average local accuracy (y) vs average local gap (x): one marker per algorithm (per λ for the fair
    variants), error bars = std over seeds both ways, labelled in place and in the legend."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for _, row in summary.iterrows():
        marker, color = STYLE.get(row["strategy"], ("o", None))
        _errorbar(ax, row, metric, marker, color, row["label"])
        ax.annotate(row["label"], (row[f"{metric}_mean"], row["accuracy_mean"]), textcoords="offset points",
                    xytext=(6, 5), fontsize=8)
    _axes_labels(ax, metric)
    seeds = int(summary["n_seeds"].max()) if len(summary) else 0
    ax.set_title(title or f"accuracy vs {METRIC_LABELS[metric]}", fontsize=10)
    ax.legend(fontsize=7, title=f"mean ± std over {seeds} seeds", title_fontsize=7, loc="best")
    fig.tight_layout()
    return save(fig, path)


def plot_fig7(final: pd.DataFrame | Mapping[str, pd.DataFrame], path: str | Path,
              strategies: Sequence[str] = ("fair-fca", "fair-flhc"), ref_client: int = 2,
              first_number: int = 1) -> tuple[list[Path], dict[str, dict[float, str]]]:
    """Fig. 7: cluster membership per λ, one panel per algorithm (per federation and algorithm when ``final`` maps
    federation tags to results); rows = clients (paper number = partition id + ``first_number``), columns = λ.
    The cluster holding client ``ref_client`` is orange, the one holding the lowest-numbered other client blue,
    any further cluster another color. Per (algorithm, λ) the modal partition over seeds is shown (agreement
    k/n below the column when seeds differ).

    Returns (figure paths, {panel: {λ: "{1,3} | {2,4,5,6,7,8}"}}), panel = the strategy, or "strategy (tag)"
    with several federations."""
    finals = {"": final} if isinstance(final, pd.DataFrame) else dict(final)
    panels = [(tag, f, s) for tag, f in finals.items() for s in strategies if s in set(f["strategy"])]
    if not panels:
        raise ValueError("plot_fig7: none of the strategies is in the results")
    ids = [i for _, f, _ in panels for p in f["partition_ids"] if p is not None for c in p for i in c]
    n_clients = max(int(f["n_clients"].max()) for _, f, _ in panels)
    n = n_clients if not ids else max(max(ids) + 1, n_clients)
    numbers = [i + first_number for i in range(n)]
    palette = ["tab:orange", "tab:blue", "tab:green", "tab:purple", "tab:red", "tab:olive"]
    texts: dict[str, dict[float, str]] = {}
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 4.6), squeeze=False)
    for ax, (tag, final, strategy) in zip(axes[0], panels, strict=True):
        panel = strategy if len(finals) == 1 else f"{strategy} ({tag})"
        lams = sorted(float(v) for v in final.loc[final["strategy"] == strategy, "lambda"].unique())
        texts[panel] = {}
        grid = np.full((n, len(lams)), -1)
        agree = []
        for j, lam in enumerate(lams):
            part, count, total = modal_partition(final, strategy, lam, offset=first_number)
            agree.append((count, total))
            if part is None:
                texts[panel][lam] = "(not clustered)"
                continue
            texts[panel][lam] = partition_text(part)
            ordered = sorted(part, key=lambda c: (ref_client not in c, min(c)))  # ref's cluster first
            for k, cluster in enumerate(ordered):
                for member in cluster:
                    grid[member - first_number, j] = k
        for i in range(n):
            for j in range(len(lams)):
                k = grid[i, j]
                color = "lightgray" if k < 0 else palette[k % len(palette)]
                ax.add_patch(plt.Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, color=color))
                ax.text(j, i, str(k + 1) if k >= 0 else "–", ha="center", va="center", fontsize=8, color="white")
        ax.set_xlim(-0.6, len(lams) - 0.4)
        ax.set_ylim(n - 0.5, -0.5)
        xt = [f"{lam:g}" + (f"\n{c}/{t}" if t and c != t else "") for lam, (c, t) in zip(lams, agree, strict=True)]
        ax.set_xticks(range(len(lams)), xt)
        ax.set_yticks(range(n), [str(v) for v in numbers])
        ax.set_xlabel("λ")
        ax.set_ylabel("client")
        ax.set_title(display_name(strategy) + (f"\n{dataset_of(final, tag)}" if len(finals) > 1 else ""), fontsize=10)
        ax.set_aspect("equal")
        for s in ax.spines.values():
            s.set_visible(False)
    handles = [Patch(color=palette[0], label=f"cluster of client {ref_client}"),
               Patch(color=palette[1], label="other cluster"), Patch(color=palette[2], label="third cluster")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("Cluster membership per λ (modal over seeds)", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return save(fig, path), texts


def _fig8_panel(ax, summary: pd.DataFrame, metric: str, title: str) -> None:
    families = [("ifca", "fair-fca", "o", "s", "tab:blue"), ("flhc", "fair-flhc", "D", "^", "tab:orange"),
                ("cfl", "fair-cfl", "v", "p", "tab:green")]
    for base, fair, base_marker, fair_marker, color in families:
        b = summary[summary["strategy"] == base]
        f = summary[summary["strategy"] == fair].sort_values("lambda")
        if b.empty and f.empty:
            continue
        line_x, line_y = [], []
        for _, row in b.iterrows():
            _errorbar(ax, row, metric, base_marker, color, display_name(base), size=9)
            line_x.append(row[f"{metric}_mean"])
            line_y.append(row["accuracy_mean"])
        for k, (_, row) in enumerate(f.iterrows()):
            _errorbar(ax, row, metric, fair_marker, color, display_name(fair) if k == 0 else None, size=7,
                      filled=False)
            ax.annotate(f"{row['lambda']:g}", (row[f"{metric}_mean"], row["accuracy_mean"]),
                        textcoords="offset points", xytext=(5, 4), fontsize=7, color=color)
            line_x.append(row[f"{metric}_mean"])
            line_y.append(row["accuracy_mean"])
        ax.plot(line_x, line_y, color=color, lw=0.7, alpha=0.5, zorder=0)
    _axes_labels(ax, metric)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)


def plot_fig8(summaries: pd.DataFrame | Mapping[str, pd.DataFrame], path: str | Path, metric: str = "sp"
              ) -> list[Path]:
    """Fig. 8: accuracy vs gap of IFCA (circle), FL+HC (diamond), Fair-FCA (squares) and Fair-FL+HC
    (triangles), the fair variants' points annotated with λ and joined in λ order from their base; error
    bars = std over seeds. One panel per federation (``{tag: summary}``)."""
    if isinstance(summaries, pd.DataFrame):
        summaries = {"": summaries}
    k = len(summaries)
    cols = min(k, 2)
    rows = (k + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 4.4 * rows), squeeze=False)
    for ax, (tag, summary) in zip(axes.flat, summaries.items(), strict=False):
        _fig8_panel(ax, summary, metric, tag)
    for ax in list(axes.flat)[k:]:
        ax.set_visible(False)
    fig.suptitle(f"Fair-FCA / Fair-FL+HC vs IFCA / FL+HC: accuracy vs {METRIC_LABELS[metric]} "
                 "(numbers = λ)", fontsize=11)
    fig.tight_layout()
    return save(fig, path)


def pareto_mask(gap: Sequence[float], acc: Sequence[float]) -> np.ndarray:
    """True for the non-dominated points (no other point has gap ≤ and accuracy ≥ with one strict)."""
    gap, acc = np.asarray(gap, float), np.asarray(acc, float)
    mask = np.ones(len(gap), bool)
    for i in range(len(gap)):
        dominated = (gap <= gap[i]) & (acc >= acc[i]) & ((gap < gap[i]) | (acc > acc[i]))
        mask[i] = not dominated.any()
    return mask


def plot_pareto(summary: pd.DataFrame, path: str | Path, metric: str = "sp") -> list[Path]:
    """Ours: each fair variant's points over λ joined in λ order (starting at its base algorithm, the λ = 0
    equivalent, drawn as a large hollow marker); each variant's non-dominated points (min gap, max accuracy)
    filled, dominated ones hollow; the front over all points as a gray step line."""
    fig, ax = plt.subplots(figsize=(7, 5))
    all_gap, all_acc = [], []
    for fair, base in FAIR_BASE.items():
        f = summary[summary["strategy"] == fair].sort_values("lambda")
        b = summary[summary["strategy"] == base]
        if f.empty and b.empty:
            continue
        marker, color = STYLE[fair]
        pts = pd.concat([b, f])
        gap, acc = pts[f"{metric}_mean"].to_numpy(), pts["accuracy_mean"].to_numpy()
        front = pareto_mask(gap, acc)
        ax.plot(gap, acc, color=color, lw=1, alpha=0.6, zorder=1)
        for k, ((_, row), on_front) in enumerate(zip(pts.iterrows(), front, strict=True)):
            is_base = row["strategy"] == base
            _errorbar(ax, row, metric, STYLE[base][0] if is_base else marker, color,
                      (display_name(base) + " (λ=0)") if is_base else (display_name(fair) if k == len(b) else None),
                      size=11 if is_base else 7, filled=bool(on_front) and not is_base)
            ax.annotate("base" if is_base else f"{row['lambda']:g}", (row[f"{metric}_mean"], row["accuracy_mean"]),
                        textcoords="offset points", xytext=(5, 4), fontsize=7, color=color)
        all_gap += list(gap)
        all_acc += list(acc)
    if all_gap:
        mask = pareto_mask(all_gap, all_acc)
        fx, fy = np.asarray(all_gap)[mask], np.asarray(all_acc)[mask]
        order = np.argsort(fx)
        ax.step(fx[order], fy[order], where="post", color="gray", lw=1.5, ls="--", alpha=0.7,
                label="overall Pareto front", zorder=0)
    _axes_labels(ax, metric)
    ax.set_title(f"Accuracy–{METRIC_LABELS[metric]} trade-off over λ (filled = non-dominated within the "
                 "variant)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, path)
