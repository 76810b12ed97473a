"""IFCA / Fair-FCA (strategies/ifca.py): Eq. (1) and the per-cluster averages on hand-built replies, and
whole runs over the in-process grid (real ClientApp, random node ids, shuffled replies)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MessageType, MetricRecord, RecordDict

from clients.evaluate import Evaluation
from fairfl_flower import protocol
from fairfl_flower.config import RunConfig
from fairfl_flower.fairness import GroupCounts
from fairfl_flower.model import PARAM_NAMES, from_record, init_params, to_record
from fairfl_flower.server_app import connect
from strategies import STRATEGIES
from strategies.base import ClientInfo, Federation
from strategies.ifca import IFCA, assign, assignment_costs, cluster_key, restart_key
from tests.inprocess import InProcessGrid, run_inprocess

NAMES = ["AL", "AK", "AZ"]
NODE_IDS = [9_001_234_567, 17, 4_400_000_000_321]
N_TRAIN = {"AL": 100, "AK": 300, "AZ": 600}


def federation():
    clients = tuple(ClientInfo(nm, pid, nid, N_TRAIN[nm], 50) for pid, (nm, nid) in enumerate(zip(NAMES, NODE_IDS, strict=True)))
    return Federation(clients, num_features=3)


def make(strategy="fair-fca", **overrides):
    cfg = RunConfig.defaults(strategy=strategy, hidden=4, **overrides)
    return STRATEGIES.get(strategy)(cfg, federation())


def constant_record(value):
    return to_record({k: np.full_like(v, value) for k, v in init_params(3, 4, 0).items()})


def counts_with_sp_gap(gap: float, n: int = 100) -> GroupCounts:
    """Group counts whose SP gap is exactly ``gap``: 50 samples per group, ``gap`` apart in selection rate."""
    pos_b = round(25 - 50 * gap / 2)
    pos_a = 50 - pos_b
    return GroupCounts(np.array([[25, 25], [25, 25]]), np.array([[pos_a // 2, pos_a - pos_a // 2], [pos_b // 2, pos_b - pos_b // 2]]))


class ScriptedGrid:
    """A grid that answers evaluate messages from a table: (client name, cluster j) -> (loss, SP gap)."""

    def __init__(self, fed: Federation, table: dict[tuple[str, int], tuple[float, float]]) -> None:
        self.by_node = {c.node_id: c for c in fed.clients}
        self.table = table
        self.sent: list[Message] = []

    def send_and_receive(self, messages, *, timeout=None):
        replies = []
        for msg in messages:
            self.sent.append(msg)
            client = self.by_node[msg.metadata.dst_node_id]
            records = {protocol.CLIENT: protocol.identity(client.partition_id, client.name)}
            for key in msg.content.array_records:
                j = int(key.removeprefix("cluster-"))
                loss, gap = self.table[(client.name, j)]
                counts = counts_with_sp_gap(gap)
                records[key] = protocol.evaluation_record(Evaluation(n=100, loss=loss, accuracy=0.5, counts=counts))
            replies.append(Message(RecordDict(records), reply_to=msg))
        random.Random(len(self.sent)).shuffle(replies)
        return replies


# (loss, SP gap) per client and cluster: AL prefers cluster 0 on loss but cluster 1 on fairness.
TABLE = {
    ("AL", 0): (0.30, 0.40), ("AL", 1): (0.50, 0.00),
    ("AK", 0): (0.60, 0.12), ("AK", 1): (0.40, 0.12),
    ("AZ", 0): (0.45, 0.20), ("AZ", 1): (0.45, 0.20),  # a tie: lowest index
}


def test_eq1_objective_and_argmin_with_ties_to_the_lowest_index():
    losses = np.array([[0.3, 0.5], [0.6, 0.4], [0.45, 0.45]])
    gaps = np.array([[0.4, 0.0], [0.12, 0.12], [0.2, 0.2]])
    np.testing.assert_allclose(assignment_costs(losses, gaps, 0.5), [[0.35, 0.25], [0.36, 0.26], [0.325, 0.325]])
    assert assign(losses, gaps, 0.0).tolist() == [0, 1, 0]
    assert assign(losses, gaps, 1.0).tolist() == [1, 0, 0]  # AK: equal gaps -> tie -> cluster 0
    # AL switches where (1-λ)·0.3 + λ·0.4 = (1-λ)·0.5, i.e. λ = 1/3
    assert assign(losses, gaps, 0.33)[0] == 0 and assign(losses, gaps, 0.34)[0] == 1


@pytest.mark.parametrize(("strategy", "lam", "expected"), [
    ("fair-fca", 0.0, {"AL": 0, "AK": 1, "AZ": 0}),
    ("fair-fca", 0.5, {"AL": 1, "AK": 1, "AZ": 0}),
    ("fair-fca", 1.0, {"AL": 1, "AK": 0, "AZ": 0}),
    ("ifca", 1.0, {"AL": 0, "AK": 1, "AZ": 0}),  # ifca ignores lambda
])
def test_configure_train_assigns_by_eq1_and_sends_each_client_only_its_cluster_model(strategy, lam, expected):
    s = make(strategy, **{"lambda": lam})
    s.runs = [{0: constant_record(0.0), 1: constant_record(1.0)}]
    grid = ScriptedGrid(s.federation, TABLE)
    msgs = list(s.configure_train(1, None, ConfigRecord(), grid))
    # the assignment exchange: every client gets both models, evaluated on its TRAINING split
    assert len(grid.sent) == 3
    for m in grid.sent:
        assert m.metadata.message_type == MessageType.EVALUATE
        assert sorted(m.content.array_records) == [cluster_key(0), cluster_key(1)]
        assert m.content.config_records[protocol.CONFIG]["split"] == "train"
    assert s.members == expected and {n: s.cluster_of(n) for n in NAMES} == expected
    by_node = {c.node_id: c.name for c in s.federation.clients}
    for m in msgs:
        assert m.metadata.message_type == MessageType.TRAIN and list(m.content.array_records) == [protocol.ARRAYS]
        value = from_record(m.content.array_records[protocol.ARRAYS])["fc1.bias"]
        np.testing.assert_array_equal(value, float(expected[by_node[m.metadata.dst_node_id]]))
        conf = m.content.config_records[protocol.CONFIG]
        assert (conf["lr"], conf["epochs"]) == (s.cfg.cluster_lr, s.cfg.cluster_local_epochs)


def train_reply(msg, client, value):
    content = RecordDict({
        protocol.ARRAYS: constant_record(value),
        protocol.METRICS: MetricRecord({protocol.NUM_EXAMPLES: client.n_train, "train-loss": value}),
        protocol.CLIENT: protocol.identity(client.partition_id, client.name),
    })
    return Message(content, reply_to=msg)


def test_per_cluster_weighted_average_by_hand_bit_identical_in_any_order_and_empty_cluster_kept():
    s = make("fair-fca", **{"lambda": 1.0, "num-clusters": 3})
    s.runs = [{0: constant_record(0.0), 1: constant_record(1.0), 2: constant_record(7.0)}]
    table = {**TABLE, **{(n, 2): (9.0, 0.9) for n in NAMES}}  # nobody picks cluster 2
    msgs = {m.metadata.dst_node_id: m for m in s.configure_train(1, None, ConfigRecord(), ScriptedGrid(s.federation, table))}
    assert s.members == {"AL": 1, "AK": 0, "AZ": 0}
    values = {"AL": 1.0, "AK": 2.0, "AZ": 4.0}
    replies = [train_reply(msgs[c.node_id], c, values[c.name]) for c in s.federation.clients]
    _, metrics = s.aggregate_train(1, replies)
    expected = {0: (300 * 2.0 + 600 * 4.0) / 900, 1: 1.0, 2: 7.0}  # cluster 2 is empty: it keeps its model
    for j, value in expected.items():
        for k in PARAM_NAMES:
            np.testing.assert_allclose(s.models[j][k].numpy(), value, rtol=1e-6)
    assert metrics["train-loss"] == pytest.approx((100 * 1 + 300 * 2 + 600 * 4) / 1000)
    assert metrics["cluster-sizes"] == [2, 1, 0]
    reference = {j: {k: s.models[j][k].numpy().copy() for k in PARAM_NAMES} for j in s.models}
    for seed in range(5):
        shuffled = replies[:]
        random.Random(seed).shuffle(shuffled)
        s.runs = [{0: constant_record(0.0), 1: constant_record(1.0), 2: constant_record(7.0)}]
        s.aggregate_train(1, shuffled)
        for j in s.models:
            for k in PARAM_NAMES:
                assert np.array_equal(s.models[j][k].numpy(), reference[j][k])


def test_deployed_assignment_is_recomputed_at_evaluation_and_reused_by_the_next_round():
    s = make("fair-fca", **{"lambda": 0.5})
    s.runs = [{0: constant_record(0.0), 1: constant_record(1.0)}]
    s.num_rounds = 1
    grid = ScriptedGrid(s.federation, TABLE)
    msgs = list(s.configure_evaluate(1, None, ConfigRecord(), grid))
    assert len(grid.sent) == 3  # one assignment exchange
    by_node = {c.node_id: c.name for c in s.federation.clients}
    for m in msgs:
        conf = m.content.config_records[protocol.CONFIG]
        assert m.metadata.message_type == MessageType.EVALUATE and conf.get("split", "test") == "test"
        value = from_record(m.content.array_records[protocol.ARRAYS])["fc1.bias"]
        np.testing.assert_array_equal(value, float(s.members[by_node[m.metadata.dst_node_id]]))
    list(s.configure_train(2, None, ConfigRecord(), grid))
    assert len(grid.sent) == 3  # same models since the evaluation: no second assignment exchange


# ---------------------------------------------------------------------------------------- whole runs
SMALL = {"synthetic-clients": 4, "n-train": 200, "n-test": 100, "num-server-rounds": 3}


def run_fedavg_arrays(cfg: RunConfig, num_nodes: int = 4):
    """FedAvg over the in-process grid; returns its final global model and the strategy."""
    grid = InProcessGrid(cfg, num_nodes)
    strategy = STRATEGIES.get("fedavg")(cfg, connect(grid, cfg))
    result = strategy.start(grid, strategy.initial_arrays(), num_rounds=cfg.num_server_rounds, log=None)
    return result.arrays, strategy


def test_ifca_with_one_cluster_is_fedavg_bit_for_bit():
    ifca, _ = run_inprocess(RunConfig.defaults(strategy="ifca", **SMALL, **{"num-clusters": 1}))
    base = RunConfig.defaults(**SMALL)
    arrays, fedavg = run_fedavg_arrays(base.replace(strategy="fedavg", lr=base.cluster_lr, local_epochs=base.cluster_local_epochs))
    for k in PARAM_NAMES:
        assert np.array_equal(ifca.models[0][k].numpy(), arrays[k].numpy())
    cols = ("round", "client", "loss", "accuracy", "sp")
    assert [tuple(r[c] for c in cols) for r in ifca.rows] == [tuple(r[c] for c in cols) for r in fedavg.rows]
    assert {r["cluster"] for r in ifca.rows} == {0}


PLANTED = {"synthetic-clients": 6, "n-train": 300, "n-test": 100, "synthetic-shift": 8.0, "num-server-rounds": 8}
TYPES = {0: ["client-00", "client-02", "client-04"], 1: ["client-01", "client-03", "client-05"]}


def test_ifca_recovers_planted_clusters_and_logs_them_per_round():
    s, _ = run_inprocess(RunConfig.defaults(strategy="ifca", **PLANTED))
    assert sorted(s.final_partition().values()) == sorted(TYPES.values())
    final = [r for r in s.rows if r["round"] == 8]
    assert {r["client"]: r["cluster"] for r in final} == {n: s.cluster_of(n) for n in s.federation.names}
    assert {r["round"] for r in s.rows} == set(range(1, 9)) and all(r["deployed"] == "cluster" for r in s.rows)


def test_fair_fca_with_lambda_zero_is_ifca():
    ifca, _ = run_inprocess(RunConfig.defaults(strategy="ifca", **PLANTED, **{"lambda": 0.8}))  # ifca ignores it
    fair, _ = run_inprocess(RunConfig.defaults(strategy="fair-fca", **PLANTED, **{"lambda": 0.0}))
    assert isinstance(fair, IFCA) and (ifca.name, fair.name, ifca.lam, fair.lam) == ("ifca", "fair-fca", 0.0, 0.0)
    assert ifca.train_assignments == fair.train_assignments and ifca.members == fair.members
    for j in ifca.models:
        for k in PARAM_NAMES:
            assert np.array_equal(ifca.models[j][k].numpy(), fair.models[j][k].numpy())
    fairer, _ = run_inprocess(RunConfig.defaults(strategy="fair-fca", **PLANTED, **{"lambda": 1.0}))
    assert fairer.train_assignments != ifca.train_assignments  # and lambda does act in fair-fca


def test_cluster_models_start_independent():
    s = make("ifca", **{"num-clusters": 3})
    firsts = [s.models[j]["fc1.weight"].numpy() for j in range(3)]
    assert not np.array_equal(firsts[0], firsts[1]) and not np.array_equal(firsts[1], firsts[2])
    np.testing.assert_array_equal(firsts[0], to_record(s.init_params())["fc1.weight"].numpy())  # FedAvg's init


# ---------------------------------------------------------------------------------------- restarts (SPEC §2.3)
def test_restarts_assign_each_restart_by_eq1_and_deploy_the_lowest_mean_objective():
    """Two restarts of k = 2 on hand-built replies: models ``cluster-0..3`` in one assignment exchange; each
    restart assigns by Eq. (1); the restart of lowest mean objective becomes ``members``; every train message
    carries one model per restart; each restart averages its own clusters by hand."""
    s = make("fair-fca", **{"lambda": 0.5, "ifca-restarts": 2})
    s.runs = [{0: constant_record(0.0), 1: constant_record(1.0)}, {0: constant_record(2.0), 1: constant_record(3.0)}]
    table = {**TABLE,  # restart 0 as before; restart 1: AL and AK better off in its cluster 0, AZ in its cluster 1
             ("AL", 2): (0.10, 0.12), ("AL", 3): (0.90, 0.88), ("AK", 2): (0.20, 0.00), ("AK", 3): (0.70, 0.68),
             ("AZ", 2): (0.80, 0.80), ("AZ", 3): (0.30, 0.12)}  # gaps that 50 + 50 counts give exactly
    msgs = {m.metadata.dst_node_id: m for m in s.configure_train(1, None, ConfigRecord(), ScriptedGrid(s.federation, table))}
    objectives = [np.mean([min(0.5 * table[(n, 2 * r + j)][0] + 0.5 * table[(n, 2 * r + j)][1] for j in (0, 1))
                           for n in NAMES]) for r in (0, 1)]
    np.testing.assert_allclose(s.objectives, objectives, atol=1e-12)
    assert s.best == 1 and s.run_members == [{"AL": 1, "AK": 1, "AZ": 0}, {"AL": 0, "AK": 0, "AZ": 1}]
    assert s.members == s.run_members[1] and {n: s.cluster_of(n) for n in NAMES} == s.run_members[1]
    for c in s.federation.clients:
        records = msgs[c.node_id].content.array_records
        assert sorted(records) == sorted([restart_key(0), restart_key(1)]) == ["arrays", "restart-1"]
        for r in (0, 1):
            got = from_record(records[restart_key(r)])["fc1.bias"]
            np.testing.assert_array_equal(got, 2.0 * r + s.run_members[r][c.name])
    values = {"AL": 1.0, "AK": 2.0, "AZ": 4.0}
    replies = []
    for c in s.federation.clients:
        content = RecordDict({restart_key(r): constant_record(values[c.name] + 10 * r) for r in (0, 1)})
        content[protocol.METRICS] = MetricRecord({protocol.NUM_EXAMPLES: c.n_train, "train-loss": values[c.name]})
        content[protocol.CLIENT] = protocol.identity(c.partition_id, c.name)
        replies.append(Message(content, reply_to=msgs[c.node_id]))
    _, metrics = s.aggregate_train(1, replies)
    expected = [{0: 4.0, 1: (100 * 1.0 + 300 * 2.0) / 400}, {0: 10 + (100 * 1.0 + 300 * 2.0) / 400, 1: 14.0}]
    for r, run in enumerate(s.runs):
        for j, value in expected[r].items():
            np.testing.assert_allclose(from_record(run[j])["fc1.bias"], value, rtol=1e-6)
    assert metrics["restart"] == 1 and metrics["cluster-sizes"] == [2, 1]


def test_restart_zero_is_the_plain_run_and_the_best_restart_is_deployed():
    """Whole runs: with ``ifca-restarts`` = 3, restart 0 follows the plain run (R = 1) bit for bit, the other
    restarts start from other models, and the logged and deployed clusters are those of the lowest objective."""
    cfg = RunConfig.defaults(strategy="fair-fca", **PLANTED, **{"lambda": 0.3})
    plain, _ = run_inprocess(cfg)
    many, _ = run_inprocess(cfg.replace(ifca_restarts=3))
    for j in plain.models:
        for k in PARAM_NAMES:
            assert np.array_equal(many.runs[0][j][k].numpy(), plain.models[j][k].numpy())
    assert not np.array_equal(many.runs[1][0]["fc1.weight"].numpy(), many.runs[0][0]["fc1.weight"].numpy())
    assert many.run_members[0] == plain.members
    assert many.best == int(np.argmin(many.objectives)) and many.members == many.run_members[many.best]
    final = {r["client"]: r["cluster"] for r in many.rows if r["round"] == PLANTED["num-server-rounds"]}
    assert final == many.run_members[many.best]
    assert sorted(many.final_partition().values()) == sorted(TYPES.values())
