"""The ClientApp: one US state (or synthetic client) per Flower node.

Each handler loads the node's own partition (``context.node_config["partition-id"]``; prepared once per
process and cached), does what the message asks (see ``fairfl_flower.protocol``) and replies with its
partition id and name. Models a client keeps between rounds (Standalone's local model, FedProx's last
local model) live in ``context.state``, scoped by the message's ``run-key``.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from clients import ROUTINES
from clients.evaluate import evaluate
from clients.sgd import local_sgd
from fairfl_flower import protocol
from fairfl_flower.config import RunConfig
from fairfl_flower.data import ClientData, client_names, load_partition
from fairfl_flower.model import from_record, to_record

# One thread per simulated client: the Ray actors already share the machine's cores.
torch.set_num_threads(1)

app = ClientApp()


def _setup(msg: Message, context: Context) -> tuple[RunConfig, ConfigRecord, ClientData, int]:
    cfg = RunConfig.from_mapping(context.run_config)
    conf = msg.content.config_records.get(protocol.CONFIG, ConfigRecord())
    partition_id = int(context.node_config["partition-id"])
    data = load_partition(cfg, partition_id, int(conf.get("seed", cfg.seed)))
    return cfg, conf, data, partition_id


def _rng(conf: ConfigRecord, name: str, purpose: str) -> np.random.Generator:
    """Shuffling randomness keyed by seed, client name, round and purpose — never by node id."""
    return np.random.default_rng(
        [int(conf.get("seed", 0)), zlib.crc32(name.encode()), int(conf.get("server-round", 0)), zlib.crc32(purpose.encode())]
    )


def _slot(conf: ConfigRecord, slot: str) -> str:
    return f"{conf.get('run-key', 'run')}/{slot}"


def _load_state(context: Context, conf: ConfigRecord, slot: str) -> ArrayRecord | None:
    key = _slot(conf, slot)
    return context.state.array_records.get(key) if key in context.state else None


def _store_state(context: Context, conf: ConfigRecord, slot: str, record: ArrayRecord) -> None:
    prefix = f"{conf.get('run-key', 'run')}/"
    for old in [k for k in context.state if not k.startswith(prefix)]:
        del context.state[old]  # a new run: forget the previous run's models
    context.state[_slot(conf, slot)] = record


def _reply(msg: Message, partition_id: int, name: str, records: dict) -> Message:
    content = RecordDict({**records, protocol.CLIENT: protocol.identity(partition_id, name)})
    return Message(content, reply_to=msg)


@app.query()
def query(msg: Message, context: Context) -> Message:
    """Handshake: prepare the partition and report who this node is (a node whose partition id is
    beyond the dataset's clients answers as idle, with an empty name)."""
    cfg = RunConfig.from_mapping(context.run_config)
    partition_id = int(context.node_config["partition-id"])
    metrics = {
        "num-clients": len(client_names(cfg)),
        "num-partitions": int(context.node_config.get("num-partitions", 0)),
        "num-features": 0, "n-train": 0, "n-test": 0,
    }
    name = ""
    if partition_id < metrics["num-clients"]:
        _, _, data, _ = _setup(msg, context)
        name = data.name
        metrics.update({"num-features": data.num_features, "n-train": len(data.y_train), "n-test": len(data.y_test)})
    return _reply(msg, partition_id, name, {protocol.METRICS: MetricRecord(metrics)})


@app.train()
def train(msg: Message, context: Context) -> Message:
    _, conf, data, partition_id = _setup(msg, context)
    models = dict(msg.content.array_records)
    routine = ROUTINES.get(str(conf.get("routine", "sgd")))
    if len(models) > 1:  # several models (IFCA restarts): each trained alike, returned by name
        if protocol.ARRAYS not in models or conf.get("keep-as", ""):
            raise ValueError(f"a train message with several models needs one under {protocol.ARRAYS!r} and no "
                             f"keep-as; got {sorted(models)}")
        trained = {k: routine(from_record(m), data, conf, _rng(conf, data.name, "train" if k == protocol.ARRAYS
                                                                else f"train/{k}")) for k, m in models.items()}
        loss = float(np.mean([t[1] for t in trained.values()]))
        return _reply(msg, partition_id, data.name, {
            **{k: to_record(p) for k, (p, _) in trained.items()},
            protocol.METRICS: MetricRecord({protocol.NUM_EXAMPLES: len(data.y_train), "train-loss": loss})})
    start = None
    if conf.get("model-from", "message") == "state":
        start = _load_state(context, conf, str(conf["keep-as"]))
    if start is None:
        start = models[protocol.ARRAYS]
    params, train_loss = routine(from_record(start), data, conf, _rng(conf, data.name, "train"))
    record = to_record(params)
    if conf.get("keep-as", ""):
        _store_state(context, conf, str(conf["keep-as"]), record)
    records: dict = {
        protocol.METRICS: MetricRecord({protocol.NUM_EXAMPLES: len(data.y_train), "train-loss": train_loss})
    }
    if conf.get("return-model", True):
        records[protocol.ARRAYS] = record
    return _reply(msg, partition_id, data.name, records)


@app.evaluate()
def evaluate_models(msg: Message, context: Context) -> Message:
    _, conf, data, partition_id = _setup(msg, context)
    split = str(conf.get("split", "test"))
    if split not in ("train", "test"):
        raise ValueError(f"evaluate split must be train or test, got {split!r}")
    x, y, g = (getattr(data, f"{k}_{split}") for k in "xyg")
    models = dict(msg.content.array_records)
    for slot in conf.get("state-models", []):
        stored = _load_state(context, conf, str(slot))
        if stored is None:
            raise RuntimeError(f"client {data.name}: no stored model {slot!r} for run {conf.get('run-key')!r}")
        models[str(slot)] = stored
    finetune_epochs = int(conf.get("finetune-epochs", 0))
    records = {}
    for key, record in models.items():
        params = from_record(record)
        if finetune_epochs > 0:
            params, _ = local_sgd(
                params, data.x_train, data.y_train, lr=float(conf["finetune-lr"]), epochs=finetune_epochs,
                batch_size=int(conf["batch-size"]), rng=_rng(conf, data.name, f"finetune/{key}"),
            )
        records[key] = protocol.evaluation_record(evaluate(params, x, y, g))
    return _reply(msg, partition_id, data.name, records)
