"""FL+HC (Briggs et al. 2020) and Fair-FL+HC (SPEC §3): FedAvg warm-up, one agglomerative clustering of
all clients on a distance matrix, then FedAvg inside each cluster. One class, two registry names.

    D = (1 − λ') · Δ + λ' · Ψ,   D_ii = 0                                              (Eq. 2)
    Δ_ij = ‖θ_i − θ_j‖₂   (÷ the largest off-diagonal Δ when ``normalize-distance``)
    Ψ_ij = max( Φ_j^f(θ_i), Φ_i^f(θ_j) )   (worst of the two cross-evaluated fairness gaps)

θ_i is client i's personalized model and Φ_j^f(θ_i) the ``fairness-metric`` gap of θ_i on client j's
TRAINING data. ``flhc`` always uses λ' = 0 (Euclidean model distances only, whatever ``lambda`` says);
``fair-flhc`` uses λ' = ``lambda``.

Algorithm 2 (SPEC §3.2):
  rounds 1 .. T_0 (``warmup-rounds``): FedAvg over all clients (the clustered recipe: ``cluster-lr``,
     ``cluster-local-epochs``) -> θ^{T_0};
  round T_0 + 1, inside ``configure_train``:
     personalization — one train exchange: every client trains θ^{T_0} for ``personalize-epochs`` epochs -> θ_i
        (``personalize-solver = "newton"``: θ_i is the client's exact logistic-regression optimum instead);
     cross-evaluation — one evaluate exchange: every client receives all N personalized models (ArrayRecords
        ``personalized/<client name>``, ``split = "train"``) and reports each one's group counts;
     D by Eq. (2) (``distance_matrix``), then ``scipy.cluster.hierarchy.linkage(squareform(D), method=linkage)``
        cut by ``fcluster(t=distance-threshold, criterion="distance")`` (``hierarchical_clusters``);
        clusters are formed once, from ALL clients, numbered 0.. in order of their first member;
     every cluster model starts from θ^{T_0}, and that round's training is already per cluster;
  rounds T_0 + 1 .. T: FedAvg inside each cluster (sample-weighted, partition order). Each client deploys its
     cluster's model (the global model before clustering, when its cluster is reported as empty).

Hyper-parameters (run config, defaults in pyproject): ``warmup-rounds`` T_0 = 5; ``personalize-epochs`` = 1; ``personalize-solver`` = sgd;
``distance-threshold`` δ = 0.35; ``normalize-distance`` = true; ``linkage`` = ward; ``lambda`` λ' = 0
(fair-flhc only); ``fairness-metric`` = sp; ``cluster-lr`` = 0.05, ``cluster-local-epochs`` = 1, ``batch-size`` = 32.

Client contract: as IFCA's (``strategies/ifca.py``): train replies carry ``arrays`` and ``num-examples``;
an evaluate message with N ArrayRecords returns N MetricRecords named alike, on the split asked for.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord
from flwr.serverapp import Grid
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist, squareform

from fairfl_flower import protocol
from fairfl_flower.fairness import METRICS
from fairfl_flower.model import flatten, from_record, to_record
from strategies import STRATEGIES
from strategies.base import Federation
from strategies.ifca import ClusterModels, require_all


def personalized_key(name: str) -> str:
    """The ArrayRecord / MetricRecord name of client ``name``'s personalized model in the cross-evaluation."""
    return f"personalized/{name}"


def model_distances(flat_models: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Δ: Euclidean distances between the rows (flattened models), optionally ÷ the largest one."""
    delta = squareform(pdist(np.asarray(flat_models, dtype=np.float64), metric="euclidean"))
    top = delta.max() if delta.size else 0.0
    return delta / top if normalize and top > 0 else delta


def fairness_distances(cross_gaps: np.ndarray) -> np.ndarray:
    """Ψ from ``cross_gaps[j, i]`` = Φ_j(θ_i) (model i on client j's data): Ψ_ij = max(Φ_j(θ_i), Φ_i(θ_j))."""
    g = np.asarray(cross_gaps, dtype=np.float64)
    psi = np.maximum(g, g.T)
    np.fill_diagonal(psi, 0.0)
    return psi


def distance_matrix(delta: np.ndarray, psi: np.ndarray, lam: float) -> np.ndarray:
    """Eq. (2): D = (1 − λ')·Δ + λ'·Ψ with a zero diagonal."""
    d = (1.0 - lam) * np.asarray(delta, dtype=np.float64) + lam * np.asarray(psi, dtype=np.float64)
    np.fill_diagonal(d, 0.0)
    return d


def hierarchical_clusters(distances: np.ndarray, threshold: float, method: str = "ward") -> np.ndarray:
    """Agglomerative clustering of a precomputed distance matrix cut at ``threshold`` (scipy ``fcluster``,
    criterion "distance": merges above the threshold are not made, so a lower threshold gives more clusters).
    Labels are 0.. in order of each cluster's first row."""
    n = len(distances)
    if n < 2:
        return np.zeros(n, dtype=int)
    tree = linkage(squareform(distances, checks=False), method=method)
    raw = fcluster(tree, t=threshold, criterion="distance")
    renumber: dict[int, int] = {}
    return np.array([renumber.setdefault(int(c), len(renumber)) for c in raw], dtype=int)


class FLHC(ClusterModels):
    """FL+HC (``flhc``, λ' = 0) and Fair-FL+HC (``fair-flhc``, λ' = ``lambda``); see the module docstring."""

    name = "flhc"
    fair_name = "fair-flhc"

    def __init__(self, cfg, federation: Federation, run_key: str = "run") -> None:
        super().__init__(cfg, federation, run_key)
        self.name = self.fair_name if cfg.strategy == self.fair_name else FLHC.name
        self.lam = cfg.lam if self.name == self.fair_name else 0.0
        self.gap = METRICS.get(cfg.fairness_metric)
        self.models = {0: to_record(self.init_params())}  # the global model until clustering
        self.members = {name: 0 for name in federation.names}
        self.clustered = False
        self.clustered_at: int | None = None
        self.distances: np.ndarray | None = None  # D of Eq. (2), rows/columns in partition order
        self.delta: np.ndarray | None = None
        self.psi: np.ndarray | None = None

    def cluster_of(self, name: str) -> int | None:
        return self.members.get(name) if self.clustered else None

    def form_clusters(self, grid: Grid, server_round: int) -> None:
        """Personalize θ^{T_0} on every client, cross-evaluate, cluster by Eq. (2) (Algorithm 2, lines 3–8)."""
        start = self.models[0]
        conf = self.train_config(server_round, epochs=self.cfg.personalize_epochs)
        if self.cfg.personalize_solver == "newton":
            conf["routine"] = "newton"  # the client's exact logistic optimum (clients/newton.py)
        personal = self.exchange(grid, self.broadcast(MessageType.TRAIN, {protocol.ARRAYS: start, protocol.CONFIG: conf}))
        require_all(self.federation, personal, "personalization")
        names = [r.name for r in personal]  # partition order
        records: dict = {personalized_key(r.name): r.arrays[protocol.ARRAYS] for r in personal}
        records[protocol.CONFIG] = self.eval_config(server_round, split="train")
        cross = self.exchange(grid, self.broadcast(MessageType.EVALUATE, records))
        require_all(self.federation, cross, "cross-evaluation")
        gaps = np.array([[self.gap(protocol.read_evaluation(r.metrics[personalized_key(m)]).counts) for m in names]
                         for r in cross])  # [data owner j, model i]
        flat = np.stack([flatten(from_record(r.arrays[protocol.ARRAYS])) for r in personal])
        self.delta = model_distances(flat, self.cfg.normalize_distance)
        self.psi = fairness_distances(gaps)
        self.distances = distance_matrix(self.delta, self.psi, self.lam)
        labels = hierarchical_clusters(self.distances, self.cfg.distance_threshold, self.cfg.linkage)
        self.members = {name: int(c) for name, c in zip(names, labels, strict=True)}
        self.models = {int(c): start for c in sorted(set(labels))}
        self.clustered, self.clustered_at = True, server_round

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        if not self.clustered and server_round > self.cfg.warmup_rounds:
            self.form_clusters(grid, server_round)
        return self.cluster_train_messages(server_round)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        metrics = self.aggregate_clusters(replies)
        return (None if self.clustered else self.models[0]), metrics


STRATEGIES.register(FLHC.name)(FLHC)
STRATEGIES.register(FLHC.fair_name)(FLHC)
