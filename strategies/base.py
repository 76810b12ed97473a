"""What every algorithm of this project shares: the federation it runs on, message building, the
evaluation of each client's *deployed* model, per-client result rows, and the round loop.

A strategy is a Flower ``Strategy`` (``configure_train`` / ``aggregate_train`` / ``configure_evaluate``
/ ``aggregate_evaluate``). ``start`` runs Flower's train-then-evaluate round structure itself so that it
can print one progress line per round, evaluate every ``eval-every`` rounds, and let multi-model
strategies keep their models in their own state (``arrays`` is the global model where there is one).

Per-client state is keyed by the client's name, never by node id or reply order.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy

from fairfl_flower import protocol
from fairfl_flower.config import RunConfig
from fairfl_flower.fairness import METRICS, all_gaps
from fairfl_flower.model import Params, init_params, to_record
from fairfl_flower.protocol import Reply, parse_replies


@dataclass(frozen=True)
class ClientInfo:
    name: str
    partition_id: int
    node_id: int
    n_train: int
    n_test: int


@dataclass(frozen=True)
class Federation:
    """The clients of a run in canonical (partition id) order, and the model input size."""

    clients: tuple[ClientInfo, ...]
    num_features: int

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.clients]

    def __len__(self) -> int:
        return len(self.clients)


class FederatedStrategy(Strategy):
    """Base class of every algorithm in ``strategies/``.

    Subclasses set ``name`` (their registry name), ``recipe`` ("fedavg": ``lr`` / ``local-epochs``;
    "cluster": ``cluster-lr`` / ``cluster-local-epochs``) and ``deployed`` (what a client deploys, for the
    results), and override the four Flower methods they change.
    """

    name: ClassVar[str] = ""
    recipe: ClassVar[str] = "fedavg"
    deployed: ClassVar[str] = "global"
    eval_key: ClassVar[str] = protocol.ARRAYS  # the reply MetricRecord that holds the deployed model's evaluation

    def __init__(self, cfg: RunConfig, federation: Federation, run_key: str = "run") -> None:
        self.cfg = cfg
        self.federation = federation
        self.run_key = run_key
        self.num_rounds = cfg.num_server_rounds
        self.rows: list[dict] = []  # one per (evaluation round, client)
        self.progress: list[dict] = []  # one per round

    # ------------------------------------------------------------------ building blocks
    def init_params(self, offset: int = 0) -> Params:
        """PyTorch-default initial model (``model``); ``offset`` gives independent ones (e.g. one per cluster)."""
        seed = int(np.random.SeedSequence([self.cfg.seed, zlib.crc32(b"init"), offset]).generate_state(1)[0])
        return init_params(self.federation.num_features, self.cfg.hidden, seed, self.cfg.model)

    def initial_arrays(self) -> ArrayRecord:
        return to_record(self.init_params())

    def base_config(self, server_round: int) -> ConfigRecord:
        return ConfigRecord({"run-key": self.run_key, "seed": self.cfg.seed, "server-round": server_round})

    def train_config(self, server_round: int, **extra) -> ConfigRecord:
        cluster = self.recipe == "cluster"
        conf = self.base_config(server_round)
        conf["routine"] = "sgd"
        conf["lr"] = self.cfg.cluster_lr if cluster else self.cfg.lr
        conf["epochs"] = self.cfg.cluster_local_epochs if cluster else self.cfg.local_epochs
        conf["batch-size"] = self.cfg.batch_size
        for k, v in extra.items():
            conf[k] = v
        return conf

    def eval_config(self, server_round: int, **extra) -> ConfigRecord:
        conf = self.base_config(server_round)
        conf["batch-size"] = self.cfg.batch_size
        for k, v in extra.items():
            conf[k] = v
        return conf

    def message(self, client: ClientInfo, message_type: str, records: dict) -> Message:
        return Message(content=RecordDict(records), message_type=message_type, dst_node_id=client.node_id)

    def broadcast(self, message_type: str, records: dict) -> list[Message]:
        return [self.message(c, message_type, records) for c in self.federation.clients]

    def exchange(self, grid: Grid, messages: Iterable[Message]) -> list[Reply]:
        """Send, wait, parse (sorted by partition id); a failed client fails the run loudly."""
        return parse_replies(grid.send_and_receive(list(messages), timeout=self.cfg.round_timeout))

    @staticmethod
    def mean_train_loss(replies: list[Reply]) -> float:
        losses = [float(r.metrics[protocol.METRICS]["train-loss"]) for r in replies if protocol.METRICS in r.metrics]
        return float(np.mean(losses)) if losses else float("nan")

    def is_eval_round(self, server_round: int) -> bool:
        return server_round % self.cfg.eval_every == 0 or server_round == self.num_rounds

    # ------------------------------------------------------------------ evaluation (shared)
    def cluster_of(self, name: str) -> int | None:
        """The client's cluster id for the results (None for non-clustered algorithms)."""
        return None

    def evaluation_records(self, server_round: int, arrays: ArrayRecord) -> dict[str, dict]:
        """Per client name: the records of its evaluate message. The model the client deploys must be
        under ``arrays`` (or a state slot named ``arrays`` via ``state-models``). Default: the global model."""
        records = {protocol.ARRAYS: arrays, protocol.CONFIG: self.eval_config(server_round)}
        return {c.name: records for c in self.federation.clients}

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        if not self.is_eval_round(server_round):
            return []
        per_client = self.evaluation_records(server_round, arrays)
        return [self.message(c, MessageType.EVALUATE, per_client[c.name]) for c in self.federation.clients]

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        parsed = parse_replies(replies)
        if not parsed:
            return None
        rows = []
        for reply in parsed:
            ev = protocol.read_evaluation(reply.metrics[self.eval_key])
            gaps = all_gaps(ev.counts)
            row = {
                "round": server_round, "client": reply.name, "partition_id": reply.partition_id,
                "n": ev.n, "loss": ev.loss, "accuracy": ev.accuracy, **gaps,
                "cluster": self.cluster_of(reply.name), "deployed": self.deployed,
                **{f"undefined_{m}": ev.counts.undefined(m) for m in METRICS},
            }
            row.update(self.extra_row(reply))
            rows.append(row)
        self.rows.extend(rows)
        means = {k: float(np.mean([r[k] for r in rows])) for k in ("loss", "accuracy", "sp", "eqop", "eo")}
        return MetricRecord({**means, "num-clients": len(rows)})

    def extra_row(self, reply: Reply) -> dict:
        """More columns for a client's result row (e.g. FedProx's global-model metrics)."""
        return {}

    def final_partition(self) -> dict[int, list[str]] | None:
        """Cluster id -> client names at the end of training (None for non-clustered algorithms)."""
        clusters: dict[int, list[str]] = {}
        for name in self.federation.names:
            cid = self.cluster_of(name)
            if cid is None:
                return None
            clusters.setdefault(cid, []).append(name)
        return dict(sorted(clusters.items()))

    def summary(self) -> None:
        """Flower's hook to log the strategy's settings (the ServerApp prints the run header)."""

    # ------------------------------------------------------------------ the round loop
    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn=None,
        log=print,
    ) -> Result:
        self.num_rounds = num_rounds
        result = Result()
        arrays = initial_arrays
        for rnd in range(1, num_rounds + 1):
            t0 = time.perf_counter()
            train_replies = grid.send_and_receive(
                list(self.configure_train(rnd, arrays, train_config or ConfigRecord(), grid)), timeout=timeout
            )
            new_arrays, train_metrics = self.aggregate_train(rnd, train_replies)
            if new_arrays is not None:
                arrays = result.arrays = new_arrays
            if train_metrics is not None:
                result.train_metrics_clientapp[rnd] = train_metrics
            eval_messages = list(self.configure_evaluate(rnd, arrays, evaluate_config or ConfigRecord(), grid))
            eval_metrics = None
            if eval_messages:
                eval_metrics = self.aggregate_evaluate(rnd, grid.send_and_receive(eval_messages, timeout=timeout))
                if eval_metrics is not None:
                    result.evaluate_metrics_clientapp[rnd] = eval_metrics
            seconds = time.perf_counter() - t0
            self._log_round(rnd, num_rounds, train_metrics, eval_metrics, seconds, log)
        return result

    def _log_round(self, rnd, num_rounds, train_metrics, eval_metrics, seconds, log) -> None:
        entry = {"round": rnd, "seconds": seconds}
        if train_metrics is not None and "train-loss" in train_metrics:
            entry["train_loss"] = float(train_metrics["train-loss"])
        if eval_metrics is not None:
            entry.update({k: float(eval_metrics[k]) for k in ("accuracy", "sp", "eqop", "eo")})
        self.progress.append(entry)
        if log is None:
            return
        text = f"[{self.name} round {rnd:>3}/{num_rounds}]"
        if "train_loss" in entry:
            text += f" train-loss {entry['train_loss']:.4f}"
        if eval_metrics is not None:
            text += " | local acc {accuracy:.4f}  SP {sp:.4f}  EqOp {eqop:.4f}  EO {eo:.4f}".format(**entry)
        if (partition := self.final_partition()) is not None:
            text += f" | clusters {len(partition)}"
        log(f"{text} | {seconds:.2f}s")
