"""The message contract between the ServerApp strategies and the ClientApp.

Every message is a Flower ``Message`` whose ``RecordDict`` holds:

server -> client
  ``config``  ConfigRecord: ``run-key`` (names the run; client state is scoped by it), ``seed``,
              ``server-round`` and the routine's settings (see below).
  any number of ArrayRecords, each one model (``model.to_record``).

  query    (handshake)  no model; the client loads its partition and reports sizes.
  train    one model under ``arrays`` (or ``model-from = "state"``: the client's own stored model,
           the message model then only initialises it), or several (IFCA restarts: ``arrays``,
           ``restart-1``, ...; no state), each trained alike and returned under its name; keys ``routine`` (sgd | maml, see
           ``clients.ROUTINES``), ``lr``, ``epochs``, ``batch-size`` and routine extras
           (``proximal-mu``, ``maml-*``); ``keep-as`` stores the trained model in the client's state
           under that slot name; ``return-model = False`` keeps it off the reply.
  evaluate each ArrayRecord is evaluated; ``split`` = test (default) | train; ``state-models`` lists state
           slots to evaluate too; ``finetune-epochs`` / ``finetune-lr`` fine-tune each model on the
           training split first (MAML-FL).

client -> server (every reply)
  ``client``  ConfigRecord: ``partition-id`` and ``name`` (the stable key of all per-client state).
  train    ``arrays`` (the trained model, unless not asked for; several: each by name) and ``metrics``:
           ``num-examples``, ``train-loss``.
  evaluate one MetricRecord per evaluated model, named like the ArrayRecord (or the state slot):
           ``num-examples``, ``loss``, ``accuracy``, ``cell-n`` and ``cell-pos`` (flat [g0y0, g0y1,
           g1y0, g1y1] counts of samples and of positive predictions).
  query    ``metrics``: ``num-clients``, ``num-features``, ``n-train``, ``n-test``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord

from clients.evaluate import Evaluation
from fairfl_flower.fairness import GroupCounts

ARRAYS = "arrays"
CONFIG = "config"
METRICS = "metrics"
CLIENT = "client"
NUM_EXAMPLES = "num-examples"


def identity(partition_id: int, name: str) -> ConfigRecord:
    return ConfigRecord({"partition-id": int(partition_id), "name": name})


def evaluation_record(ev: Evaluation) -> MetricRecord:
    n, pos = ev.counts.to_lists()
    return MetricRecord(
        {NUM_EXAMPLES: ev.n, "loss": ev.loss, "accuracy": ev.accuracy, "cell-n": n, "cell-pos": pos}
    )


def read_evaluation(record: MetricRecord) -> Evaluation:
    return Evaluation(
        n=int(record[NUM_EXAMPLES]),
        loss=float(record["loss"]),
        accuracy=float(record["accuracy"]),
        counts=GroupCounts.from_lists(record["cell-n"], record["cell-pos"]),
    )


class ClientFailure(RuntimeError):
    """One or more clients replied with an error; the message carries their reasons."""


@dataclass
class Reply:
    """A parsed client reply: who sent it and what it holds."""

    name: str
    partition_id: int
    arrays: dict[str, ArrayRecord] = field(default_factory=dict)
    metrics: dict[str, MetricRecord] = field(default_factory=dict)
    message: Message | None = None

    @classmethod
    def parse(cls, msg: Message) -> Reply:
        who = msg.content.config_records[CLIENT]
        return cls(
            name=str(who["name"]),
            partition_id=int(who["partition-id"]),
            arrays=dict(msg.content.array_records),
            metrics=dict(msg.content.metric_records),
            message=msg,
        )


def _short_reason(reason: str) -> str:
    """The client's own exception text, without Ray's and Flower's wrapping and tracebacks."""
    found = re.findall(r"Message: (.*?)'>", reason, flags=re.S)
    text = found[-1] if found else reason.strip().splitlines()[-1] if reason.strip() else reason
    return text.strip()


def parse_replies(replies) -> list[Reply]:
    """Parse replies, sorted by partition id (never by arrival order); raise on any client error."""
    replies = list(replies)
    errors = [m for m in replies if m.has_error()]
    if errors:
        reasons: dict[str, int] = {}
        for m in errors:
            reason = _short_reason(m.error.reason)
            reasons[reason] = reasons.get(reason, 0) + 1
        lines = "\n".join(f"  {count} x {reason}" for reason, count in list(reasons.items())[:5])
        raise ClientFailure(f"{len(errors)} client(s) failed:\n{lines}")
    return sorted((Reply.parse(m) for m in replies), key=lambda r: r.partition_id)
