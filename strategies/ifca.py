"""IFCA (Ghosh et al. 2020) and Fair-FCA (SPEC §2): k cluster models; every round each client joins the
cluster whose model suits it best, by Eq. (1), and trains that model. One class, two registry names.

    s_i^t = argmin_{j ∈ 0..k−1}  (1 − λ) · F_i(θ_j^t)  +  λ · Φ_i^f(θ_j^t)      (Eq. 1; ties → lowest j)

    θ_j^{t+1} = Σ_{i: s_i^t = j} (n_i / Σ_{i': s_i'^t = j} n_i') · SGD_τ(θ_j^t; Z_i)   (θ_j^{t+1} = θ_j^t if empty)

F_i is client i's mean BCE loss and Φ_i^f its ``fairness-metric`` gap (exact, from group counts), both on
its TRAINING split. ``ifca`` always uses λ = 0 (the loss-only rule of IFCA, whatever ``lambda`` says);
``fair-fca`` uses ``lambda``.

Algorithm 1 (SPEC §2.4), round t:
  1. (``configure_train``) one evaluate exchange: every client receives all k models (ArrayRecords
     ``cluster-0`` .. ``cluster-{k-1}``, ``split = "train"``) and reports each one's loss and group counts;
     the server assigns each client by Eq. (1);
  2. each client receives only its cluster's model and trains it (``cluster-lr``, ``cluster-local-epochs``);
  3. (``aggregate_train``) per-cluster sample-weighted average, summed in partition order (reply order
     never changes a bit).
Deployed model (line 12): at every evaluation the assignment is recomputed by Eq. (1) on the current
models (step 1 again, in ``configure_evaluate``) and each client evaluates its cluster's model on its test
split. That assignment is kept: the next round trains with it instead of asking again (same models, same
training data, so the same answer), so an evaluated round costs one assignment exchange, not two.

Restarts (SPEC §2.3, "a few random restarts, keeping the run with the lowest average loss"): with
``ifca-restarts`` R > 1, R independent IFCA runs (k models each) go side by side through the same rounds.
Each assignment exchange evaluates all R·k models (``cluster-{r·k+j}``); each train message carries one model
per restart (restart r under ``restart_key(r)``); each restart averages its own clusters. The restart with the
lowest mean Eq. (1) objective, (1/N)·Σ_i min_j [(1 − λ)F_i(θ_rj) + λΦ_i(θ_rj)], is the one logged and deployed,
chosen again at every assignment (so the last one, on the final models, decides). R = 1 is plain IFCA.

Hyper-parameters (run config, defaults in pyproject): ``num-clusters`` k = 2; ``lambda`` λ = 0 (fair-fca
only); ``fairness-metric`` = sp; ``cluster-lr`` = 0.05, ``cluster-local-epochs`` = 1, ``batch-size`` = 32;
``ifca-restarts`` R = 1. The R·k initial models are independent PyTorch-default initialisations
(``init_params(offset=r·k+j)``, SPEC §2.3).

Client contract: evaluate messages with several ArrayRecords return one MetricRecord per model, named
alike (loss, counts), on the split asked for; a train message's models are each trained and returned under
their names (``arrays``, ``restart-1``, ...), with ``metrics["num-examples"]``.

``ClusterModels`` (below) is the part shared with FL+HC (``strategies/flhc.py``): a model per cluster, a
client -> cluster map keyed by client name, per-cluster train messages and averages, and deployment of
each client's cluster model.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy.strategy_utils import (
    aggregate_arrayrecords,
    aggregate_metricrecords,
    validate_message_reply_consistency,
)

from fairfl_flower import protocol
from fairfl_flower.fairness import METRICS
from fairfl_flower.model import to_record
from fairfl_flower.protocol import Reply, parse_replies
from strategies import STRATEGIES
from strategies.base import FederatedStrategy, Federation


def cluster_key(j: int) -> str:
    """The ArrayRecord / MetricRecord name of cluster model j in an assignment exchange."""
    return f"cluster-{j}"


def restart_key(r: int) -> str:
    """The ArrayRecord name of restart r's model in a train message and its reply (restart 0: ``arrays``)."""
    return protocol.ARRAYS if r == 0 else f"restart-{r}"


def assignment_costs(losses: np.ndarray, gaps: np.ndarray, lam: float) -> np.ndarray:
    """Eq. (1)'s objective for every (client, cluster): (1 − λ)·F_i(θ_j) + λ·Φ_i(θ_j)."""
    return (1.0 - lam) * np.asarray(losses, dtype=float) + lam * np.asarray(gaps, dtype=float)


def assign(losses: np.ndarray, gaps: np.ndarray, lam: float) -> np.ndarray:
    """Eq. (1): each row's (client's) cheapest cluster; ties go to the lowest index."""
    return np.argmin(assignment_costs(losses, gaps, lam), axis=1)


def require_all(federation: Federation, replies: list[Reply], what: str) -> None:
    missing = sorted(set(federation.names) - {r.name for r in replies})
    if missing:
        raise RuntimeError(f"{what}: no reply from {len(missing)} client(s): {', '.join(missing[:10])}")


class ClusterModels(FederatedStrategy):
    """A model per cluster and a client -> cluster map (by name); each client trains and deploys its
    cluster's model, and each cluster's model is the sample-weighted average of its members' models."""

    recipe = "cluster"
    deployed = "cluster"

    def __init__(self, cfg, federation: Federation, run_key: str = "run") -> None:
        super().__init__(cfg, federation, run_key)
        self.models: dict[int, ArrayRecord] = {}
        self.members: dict[str, int] = {}  # client name -> the cluster whose model it trains and deploys

    def cluster_of(self, name: str) -> int | None:
        return self.members.get(name)

    def trained_runs(self) -> list[tuple[str, dict[int, ArrayRecord], dict[str, int]]]:
        """What each client trains: (record name, cluster models, client -> cluster) per set of clusters.
        One set here; IFCA with restarts has one per restart."""
        return [(protocol.ARRAYS, self.models, self.members)]

    def cluster_train_messages(self, server_round: int) -> list[Message]:
        """Each client trains, in every set of clusters, the model of the cluster it belongs to there."""
        conf = self.train_config(server_round)
        runs = self.trained_runs()
        return [self.message(c, MessageType.TRAIN, {**{key: models[members[c.name]] for key, models, members in runs},
                                                    protocol.CONFIG: conf})
                for c in self.federation.clients]

    def aggregate_clusters(self, replies: Iterable[Message]) -> MetricRecord | None:
        """Replace each non-empty cluster's model by its members' weighted average (partition order), in every
        set of clusters."""
        parsed = parse_replies(replies)
        if not parsed:
            return None
        require_all(self.federation, parsed, "train")
        contents = [r.message.content for r in parsed]
        runs = self.trained_runs()
        validate_message_reply_consistency(contents, protocol.NUM_EXAMPLES, check_arrayrecord=len(runs) == 1)
        for key, models, members in runs:
            for j in sorted(set(members.values())):
                models[j] = aggregate_arrayrecords(
                    [RecordDict({protocol.ARRAYS: p.arrays[key], protocol.METRICS: p.metrics[protocol.METRICS]})
                     for p in parsed if members[p.name] == j], protocol.NUM_EXAMPLES)
        metrics = aggregate_metricrecords(contents, protocol.NUM_EXAMPLES)
        metrics["cluster-sizes"] = [sum(1 for v in self.members.values() if v == j) for j in sorted(self.models)]
        return metrics

    def evaluation_records(self, server_round: int, arrays: ArrayRecord) -> dict[str, dict]:
        conf = self.eval_config(server_round)
        return {c.name: {protocol.ARRAYS: self.models[self.members[c.name]], protocol.CONFIG: conf}
                for c in self.federation.clients}


class IFCA(ClusterModels):
    """IFCA (``ifca``, λ = 0) and Fair-FCA (``fair-fca``, λ = ``lambda``); see the module docstring."""

    name = "ifca"
    fair_name = "fair-fca"

    def __init__(self, cfg, federation: Federation, run_key: str = "run") -> None:
        super().__init__(cfg, federation, run_key)
        self.name = self.fair_name if cfg.strategy == self.fair_name else IFCA.name
        self.lam = cfg.lam if self.name == self.fair_name else 0.0
        self.gap = METRICS.get(cfg.fairness_metric)
        k = cfg.num_clusters
        self.runs = [{j: to_record(self.init_params(offset=r * k + j)) for j in range(k)}
                     for r in range(cfg.ifca_restarts)]  # restart -> its k cluster models
        self.run_members: list[dict[str, int]] = [{} for _ in self.runs]  # restart -> client name -> cluster
        self.objectives = np.zeros(len(self.runs))  # mean Eq. (1) objective of each restart's latest assignment
        self.best = 0  # the restart logged and deployed (lowest objective)
        self.models = self.runs[0]
        self.train_assignments: dict[int, dict[str, int]] = {}  # round -> the assignment it trained with
        self.costs: np.ndarray | None = None  # Eq. (1) objective of the latest assignment, [client, cluster]
        self._version = 0  # bumped whenever the cluster models change
        self._assigned_version = -1  # the model version ``members`` was computed on

    def assign_clients(self, grid: Grid, server_round: int) -> dict[str, int]:
        """Eq. (1) on the current models of every restart: one evaluate exchange on the clients' training data;
        then the restart with the lowest mean objective becomes ``models`` / ``members``."""
        if self._assigned_version == self._version:
            return self.members
        k = self.cfg.num_clusters
        records: dict = {cluster_key(r * k + j): m for r, run in enumerate(self.runs) for j, m in run.items()}
        records[protocol.CONFIG] = self.eval_config(server_round, split="train")
        replies = self.exchange(grid, self.broadcast(MessageType.EVALUATE, records))
        require_all(self.federation, replies, "cluster assignment")
        costs = []
        for r in range(len(self.runs)):
            losses = np.empty((len(replies), k))
            gaps = np.empty_like(losses)
            for i, reply in enumerate(replies):
                for j in range(k):
                    ev = protocol.read_evaluation(reply.metrics[cluster_key(r * k + j)])
                    losses[i, j], gaps[i, j] = ev.loss, self.gap(ev.counts)
            costs.append(assignment_costs(losses, gaps, self.lam))
            choice = assign(losses, gaps, self.lam)
            self.run_members[r] = {reply.name: int(j) for reply, j in zip(replies, choice, strict=True)}
        self.objectives = np.array([c.min(axis=1).mean() for c in costs])
        self.best = int(np.argmin(self.objectives))  # ties -> the lowest restart
        self.models, self.members, self.costs = self.runs[self.best], self.run_members[self.best], costs[self.best]
        self._assigned_version = self._version
        return self.members

    def trained_runs(self) -> list[tuple[str, dict[int, ArrayRecord], dict[str, int]]]:
        return [(restart_key(r), run, self.run_members[r]) for r, run in enumerate(self.runs)]

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        self.train_assignments[server_round] = dict(self.assign_clients(grid, server_round))
        return self.cluster_train_messages(server_round)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        metrics = self.aggregate_clusters(replies)
        if metrics is not None and len(self.runs) > 1:
            metrics["restart"] = self.best
        self._version += 1
        return None, metrics

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        if not self.is_eval_round(server_round):
            return []
        self.assign_clients(grid, server_round)  # SPEC §2.4 line 12: deploy by Eq. (1) on the current models
        return super().configure_evaluate(server_round, arrays, config, grid)


STRATEGIES.register(IFCA.name)(IFCA)
STRATEGIES.register(IFCA.fair_name)(IFCA)
