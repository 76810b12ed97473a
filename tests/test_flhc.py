"""FL+HC / Fair-FL+HC (strategies/flhc.py): Eq. (2) and the clustering step as plain functions (no Flower),
and whole runs over the in-process grid."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import MessageType
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from experiments.plots import canonical_partition, members_partition
from experiments.report import FIG7_IN_ORDER
from fairfl_flower import protocol
from fairfl_flower.config import RunConfig
from fairfl_flower.model import PARAM_NAMES
from strategies.flhc import (
    FLHC,
    distance_matrix,
    fairness_distances,
    hierarchical_clusters,
    model_distances,
    personalized_key,
)
from tests.inprocess import run_inprocess
from tests.test_ifca import run_fedavg_arrays

# Two tight groups {0,1,2} and {3,4}, client 5 in between (closer to the second group).
HAND_D = np.array([
    [0.00, 0.10, 0.12, 0.90, 0.95, 0.60],
    [0.10, 0.00, 0.08, 0.85, 0.90, 0.55],
    [0.12, 0.08, 0.00, 0.88, 0.92, 0.58],
    [0.90, 0.85, 0.88, 0.00, 0.05, 0.30],
    [0.95, 0.90, 0.92, 0.05, 0.00, 0.32],
    [0.60, 0.55, 0.58, 0.30, 0.32, 0.00],
])


def same_partition(a, b) -> bool:
    """Equal as partitions (labels may be numbered differently)."""
    return len(set(zip(a, b, strict=True))) == len(set(a)) == len(set(b))


@pytest.mark.parametrize("method", ["ward", "average", "complete", "single"])
@pytest.mark.parametrize("threshold", [0.05, 0.2, 0.35, 0.5, 1.0, 3.0])
def test_hierarchical_clusters_match_scipy_and_are_numbered_by_first_member(method, threshold):
    labels = hierarchical_clusters(HAND_D, threshold, method)
    expected = fcluster(linkage(squareform(HAND_D), method=method), t=threshold, criterion="distance")
    assert same_partition(labels, expected)
    firsts = [list(labels).index(c) for c in sorted(set(labels))]
    assert firsts == sorted(firsts) and labels[0] == 0


def test_lower_threshold_gives_more_clusters():
    counts = [len(set(hierarchical_clusters(HAND_D, t, "ward"))) for t in (0.01, 0.09, 0.2, 0.5, 2.0, 5.0)]
    assert counts == sorted(counts, reverse=True) and counts[0] == 6 and counts[-1] == 1
    # Ward's merge height of {3,4} with 5 is 0.357 > 0.30 (its largest pairwise distance): cut at 0.35 it stays alone
    assert hierarchical_clusters(HAND_D, 0.35, "ward").tolist() == [0, 0, 0, 1, 1, 2]
    assert hierarchical_clusters(HAND_D, 0.5, "ward").tolist() == [0, 0, 0, 1, 1, 1]
    assert hierarchical_clusters(np.zeros((1, 1)), 0.35).tolist() == [0]


def test_eq2_by_hand():
    flat = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])
    np.testing.assert_allclose(model_distances(flat, normalize=False), [[0, 5, 10], [5, 0, 5], [10, 5, 0]])
    np.testing.assert_allclose(model_distances(flat, normalize=True), [[0, 0.5, 1], [0.5, 0, 0.5], [1, 0.5, 0]])
    # cross_gaps[j, i] = gap of model i on client j's data
    cross = np.array([[0.9, 0.1, 0.4], [0.3, 0.9, 0.2], [0.0, 0.6, 0.9]])
    psi = fairness_distances(cross)
    np.testing.assert_allclose(psi, [[0, 0.3, 0.4], [0.3, 0, 0.6], [0.4, 0.6, 0]])  # max of both directions, 0 diagonal
    d = distance_matrix(model_distances(flat), psi, 0.25)
    np.testing.assert_allclose(d, 0.75 * model_distances(flat) + 0.25 * psi)
    np.testing.assert_array_equal(distance_matrix(model_distances(flat), psi, 0.0), model_distances(flat))
    np.testing.assert_array_equal(distance_matrix(model_distances(flat), psi, 1.0), psi)


# Fig. 7 (docs/fig7-fair-flhc.md): a (Δ, Ψ) pair of the shape SPEC's Ψ gives there — Ψ a noise floor among the
# group-independent clients 1, 3, 4, 6, 7, 8, larger only towards 2, 5, and (P2) every other client's model
# less fair on client 2 than client 5's — found by annealing over abstract matrices. Rows/columns are clients
# 1..8; Δ is a raw (unnormalized) Euclidean model distance.
FIG7_DELTA = np.array([
    [0.000, 0.253, 0.008, 0.327, 0.253, 0.415, 0.287, 0.239],
    [0.253, 0.000, 0.253, 0.105, 0.008, 0.201, 0.191, 0.172],
    [0.008, 0.253, 0.000, 0.327, 0.253, 0.416, 0.288, 0.239],
    [0.327, 0.105, 0.327, 0.000, 0.107, 0.206, 0.217, 0.224],
    [0.253, 0.008, 0.253, 0.107, 0.000, 0.204, 0.192, 0.171],
    [0.415, 0.201, 0.416, 0.206, 0.204, 0.000, 0.339, 0.290],
    [0.287, 0.191, 0.288, 0.217, 0.192, 0.339, 0.000, 0.317],
    [0.239, 0.172, 0.239, 0.224, 0.171, 0.290, 0.317, 0.000],
])
FIG7_PSI = np.array([
    [0.000, 0.584, 0.023, 0.035, 0.584, 0.040, 0.031, 0.034],
    [0.584, 0.000, 0.584, 0.073, 0.001, 0.164, 0.438, 0.379],
    [0.023, 0.584, 0.000, 0.041, 0.584, 0.032, 0.026, 0.032],
    [0.035, 0.073, 0.041, 0.000, 0.073, 0.034, 0.038, 0.028],
    [0.584, 0.001, 0.584, 0.073, 0.000, 0.164, 0.438, 0.379],
    [0.040, 0.164, 0.032, 0.034, 0.164, 0.000, 0.032, 0.026],
    [0.031, 0.438, 0.026, 0.038, 0.438, 0.032, 0.000, 0.032],
    [0.034, 0.379, 0.032, 0.028, 0.379, 0.026, 0.032, 0.000],
])


def fig7_partition(delta, lam):
    labels = hierarchical_clusters(distance_matrix(delta, FIG7_PSI, lam), 0.35, "ward")
    return members_partition(dict(zip(range(1, 9), labels, strict=True)))


def test_fig7_partitions_exist_for_raw_model_distances():
    """Eq. (2) + Ward at 0.35 can give the paper's five Fig. 7 partitions, in the paper's order, when Δ is not
    normalized; dividing the same Δ by its largest entry (SPEC's default) loses the λ = 0 partition."""
    expected = [canonical_partition(partition) for partition in FIG7_IN_ORDER]
    six = [0, 2, 3, 5, 6, 7]  # clients 1, 3, 4, 6, 7, 8: group-independent, Ψ is noise among them
    assert FIG7_PSI[np.ix_(six, six)].max() < 0.05 and (FIG7_PSI[1, six] > FIG7_PSI[1, 4]).all()
    # each partition holds on a whole λ interval (ends checked; 0.01 steps in between were checked by hand)
    intervals = [(0.0, 0.12), (0.13, 0.19), (0.2, 0.54), (0.55, 0.62), (0.63, 1.0)]
    for lams, partition in zip(intervals, expected, strict=True):
        assert [fig7_partition(FIG7_DELTA, lam) for lam in lams] == [partition, partition]
    assert [fig7_partition(FIG7_DELTA, lam) for lam in (0.0, 0.15, 0.4, 0.6, 1.0)] == expected
    assert fig7_partition(FIG7_DELTA / FIG7_DELTA.max(), 0.0) != expected[0]


# ---------------------------------------------------------------------------------------- whole runs
PLANTED = {"synthetic-clients": 6, "n-train": 300, "n-test": 100, "synthetic-shift": 6.0, "num-server-rounds": 6,
           "warmup-rounds": 3}
TYPES = [["client-00", "client-02", "client-04"], ["client-01", "client-03", "client-05"]]


def test_flhc_warms_up_with_fedavg_clusters_once_and_recovers_planted_clusters():
    s, grid = run_inprocess(RunConfig.defaults(strategy="flhc", **PLANTED))
    assert isinstance(s, FLHC) and s.clustered_at == 4
    assert sorted(s.final_partition().values()) == TYPES
    clusters = {rnd: {r["client"]: r["cluster"] for r in s.rows if r["round"] == rnd} for rnd in range(1, 7)}
    assert all(v is None for rnd in (1, 2, 3) for v in clusters[rnd].values())  # warm-up: no clusters yet
    assert all(clusters[rnd] == clusters[6] for rnd in (4, 5))  # formed once, at round T_0 + 1
    assert s.distances.shape == (6, 6) and np.allclose(s.distances, s.distances.T) and not np.diag(s.distances).any()
    assert s.delta.max() == pytest.approx(1.0)  # normalize-distance
    # round 4 opened with one personalization (train) and one cross-evaluation (evaluate) exchange
    personal = [m for m in grid.sent if m.metadata.message_type == MessageType.TRAIN
                and m.content.config_records[protocol.CONFIG]["server-round"] == 4]
    assert len(personal) == 12  # 6 personalization + 6 per-cluster training messages
    cross = [m for m in grid.sent if len(m.content.array_records) == 6]
    assert len(cross) == 6
    for m in cross:
        assert m.content.config_records[protocol.CONFIG]["split"] == "train"
        assert sorted(m.content.array_records) == sorted(personalized_key(n) for n in s.federation.names)


def test_fair_flhc_with_lambda_zero_is_flhc_and_lambda_one_clusters_on_fairness_only():
    flhc, _ = run_inprocess(RunConfig.defaults(strategy="flhc", **PLANTED, **{"lambda": 0.9}))  # flhc ignores it
    fair, _ = run_inprocess(RunConfig.defaults(strategy="fair-flhc", **PLANTED, **{"lambda": 0.0}))
    assert (flhc.lam, fair.lam, fair.name) == (0.0, 0.0, "fair-flhc")
    assert flhc.final_partition() == fair.final_partition()
    np.testing.assert_array_equal(flhc.distances, fair.distances)
    for j in flhc.models:
        for k in PARAM_NAMES:
            assert np.array_equal(flhc.models[j][k].numpy(), fair.models[j][k].numpy())
    fairest, _ = run_inprocess(RunConfig.defaults(strategy="fair-flhc", **PLANTED, **{"lambda": 1.0}))
    np.testing.assert_array_equal(fairest.distances, fairest.psi)
    np.testing.assert_array_equal(fairest.delta, flhc.delta)  # same personalized models, other weighting


def test_flhc_before_clustering_is_fedavg_with_the_clustered_recipe():
    cfg = RunConfig.defaults(**{**PLANTED, "num-server-rounds": 3})
    flhc, _ = run_inprocess(cfg.replace(strategy="flhc"))
    arrays, _ = run_fedavg_arrays(cfg.replace(strategy="fedavg", lr=cfg.cluster_lr, local_epochs=cfg.cluster_local_epochs),
                                  num_nodes=6)
    assert not flhc.clustered and flhc.final_partition() is None
    for k in PARAM_NAMES:
        assert np.array_equal(flhc.models[0][k].numpy(), arrays[k].numpy())


def test_newton_personalization_gives_each_client_its_own_optimum_whatever_the_warm_up():
    """``personalize-solver = "newton"``: the personalization messages ask for the ``newton`` routine, and Δ no
    longer depends on the warm-up model (its rounds and learning rate): every θ_i is client i's exact logistic optimum."""
    base = RunConfig.defaults(strategy="flhc", model="logreg", **{**PLANTED, "personalize-solver": "newton",
                                                                 "num-server-rounds": 4})
    short, grid = run_inprocess(base.replace(warmup_rounds=1))
    other, _ = run_inprocess(base.replace(warmup_rounds=3, cluster_lr=0.2))  # another warm-up model
    routines = {m.content.config_records[protocol.CONFIG]["routine"] for m in grid.sent
                if m.metadata.message_type == MessageType.TRAIN
                and m.content.config_records[protocol.CONFIG]["server-round"] == 2}
    assert routines == {"newton", "sgd"}  # personalization, then that round's per-cluster training
    np.testing.assert_allclose(short.delta, other.delta, atol=1e-4)
    assert sorted(short.final_partition().values()) == TYPES
