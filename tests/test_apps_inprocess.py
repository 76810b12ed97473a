"""The ClientApp called directly, and whole runs over an in-process Grid (no Ray): fast checks of the
message contract, client state, determinism and the handshake."""

import numpy as np
import pytest
from flwr.app import ConfigRecord, Context, Message, MessageType, RecordDict

from fairfl_flower import protocol
from fairfl_flower.client_app import app as client_app
from fairfl_flower.config import RunConfig
from fairfl_flower.model import init_params, to_record
from fairfl_flower.server_app import FederationError, connect
from tests.inprocess import InProcessGrid, run_inprocess

SMALL = {"synthetic-clients": 4, "n-train": 200, "n-test": 300, "num-server-rounds": 2, "local-epochs": 2, "lr": 0.05}


def context(cfg, pid=0):
    return Context(run_id=1, node_id=7, node_config={"partition-id": pid, "num-partitions": 4}, state=RecordDict(),
                   run_config=cfg.to_mapping())


def test_client_train_and_evaluate_reply_with_identity_and_counts():
    cfg = RunConfig.defaults(**SMALL)
    ctx = context(cfg, pid=2)
    params = init_params(cfg.synthetic_dim, cfg.hidden, 0)
    conf = ConfigRecord({"seed": 0, "run-key": "r", "server-round": 1, "routine": "sgd", "lr": 0.05, "epochs": 1, "batch-size": 32})
    msg = Message(RecordDict({protocol.ARRAYS: to_record(params), protocol.CONFIG: conf}), dst_node_id=7, message_type=MessageType.TRAIN)
    reply = client_app(msg, ctx)
    who = reply.content.config_records[protocol.CLIENT]
    assert (who["partition-id"], who["name"]) == (2, "client-02")
    assert reply.content.metric_records[protocol.METRICS][protocol.NUM_EXAMPLES] == 200
    ev_msg = Message(RecordDict({"m0": to_record(params), "m1": reply.content.array_records[protocol.ARRAYS],
                                 protocol.CONFIG: ConfigRecord({"seed": 0, "run-key": "r"})}),
                     dst_node_id=7, message_type=MessageType.EVALUATE)
    ev = client_app(ev_msg, ctx)
    for key in ("m0", "m1"):
        e = protocol.read_evaluation(ev.content.metric_records[key])
        assert e.n == 300 and e.counts.n.sum() == 300
    assert protocol.read_evaluation(ev.content.metric_records["m1"]).loss < protocol.read_evaluation(ev.content.metric_records["m0"]).loss


def test_standalone_state_survives_rounds_and_is_scoped_by_run_key():
    cfg = RunConfig.defaults(**SMALL)
    ctx = context(cfg)
    init = to_record(init_params(cfg.synthetic_dim, cfg.hidden, 0))

    def train(run_key, rnd, with_init):
        conf = ConfigRecord({"seed": 0, "run-key": run_key, "server-round": rnd, "routine": "sgd", "lr": 0.05,
                             "epochs": 1, "batch-size": 32, "model-from": "state", "keep-as": "local", "return-model": False})
        records = {protocol.CONFIG: conf, **({protocol.ARRAYS: init} if with_init else {})}
        return client_app(Message(RecordDict(records), dst_node_id=7, message_type=MessageType.TRAIN), ctx)

    train("a", 1, True)
    assert "a/local" in ctx.state
    train("a", 2, False)  # starts from the stored model; no model in the message
    train("b", 1, True)
    assert "b/local" in ctx.state and "a/local" not in ctx.state  # a new run forgets the old one


def test_handshake_maps_partitions_to_names_and_leaves_extra_nodes_idle():
    cfg = RunConfig.defaults(**SMALL)
    grid = InProcessGrid(cfg, num_nodes=6)  # 2 more nodes than clients
    fed = connect(grid, cfg)
    assert fed.names == ["client-00", "client-01", "client-02", "client-03"]
    assert [c.partition_id for c in fed.clients] == [0, 1, 2, 3]
    assert fed.num_features == cfg.synthetic_dim


def test_handshake_with_too_few_nodes_says_how_many_are_needed():
    cfg = RunConfig.defaults(**SMALL)
    with pytest.raises(FederationError, match="num-supernodes=4"):
        connect(InProcessGrid(cfg, num_nodes=3), cfg)


@pytest.mark.parametrize("strategy", ["fedavg", "standalone"])
def test_whole_run_inprocess_writes_one_row_per_round_and_client(strategy):
    cfg = RunConfig.defaults(strategy=strategy, **SMALL)
    s, _ = run_inprocess(cfg)
    assert [(r["round"], r["client"]) for r in s.rows] == [(rnd, f"client-0{i}") for rnd in (1, 2) for i in range(4)]
    assert all(0 <= r[m] <= 1 for r in s.rows for m in ("accuracy", "sp", "eqop", "eo"))


def test_same_seed_same_numbers_whatever_the_node_ids_and_reply_order():
    cfg = RunConfig.defaults(**SMALL)
    a, _ = run_inprocess(cfg, shuffle_seed=1)
    b, _ = run_inprocess(cfg, shuffle_seed=2)
    assert a.rows == b.rows
    c, _ = run_inprocess(cfg.replace(seed=1))
    assert [r["accuracy"] for r in c.rows] != [r["accuracy"] for r in a.rows]


def test_fedavg_learns_on_the_synthetic_federation():
    cfg = RunConfig.defaults(**{**SMALL, "num-server-rounds": 5})
    s, _ = run_inprocess(cfg)
    first = np.mean([r["accuracy"] for r in s.rows if r["round"] == 1])
    last = np.mean([r["accuracy"] for r in s.rows if r["round"] == 5])
    assert last > first and last > 0.75


@pytest.mark.parametrize("strategy", ["fedavg", "fair-fca", "fair-flhc", "maml-fl"])
def test_logistic_regression_runs_every_kind_of_strategy(strategy):
    """``model = "logreg"``: the server initialises a logistic regression and every message carries its two
    arrays; FedAvg learns with it, and FL+HC's model distances are taken on its d + 1 parameters."""
    cfg = RunConfig.defaults(strategy=strategy, model="logreg", **{**SMALL, "num-server-rounds": 4,
                                                                    "warmup-rounds": 2, "lambda": 0.5})
    s, grid = run_inprocess(cfg)
    sent = [m.content.array_records for m in grid.sent if m.content.array_records]
    assert sent and all(set(rec) == {"fc.weight", "fc.bias"} for recs in sent for rec in recs.values())
    assert len(s.rows) == 4 * len({r["round"] for r in s.rows}) and all(0 <= r["accuracy"] <= 1 for r in s.rows)
    if strategy == "fedavg":
        assert np.mean([r["accuracy"] for r in s.rows if r["round"] == 4]) > 0.75
    if strategy == "fair-flhc":
        assert s.delta.shape == (4, 4) and s.clustered_at == 3
