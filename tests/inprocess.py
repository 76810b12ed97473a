"""An in-process Flower ``Grid`` for tests: the real ClientApp handles every message in this process,
with one ``Context`` (and so one ``context.state``) per node. Node ids are random 64-bit numbers
unrelated to partition ids, and replies can come back in shuffled order, so a test also checks that
nothing depends on node ids or arrival order. (The real Ray simulation is tested separately.)"""

from __future__ import annotations

import random
import traceback

from flwr.app import Context, Error, Message, RecordDict
from flwr.serverapp import Grid

from fairfl_flower.client_app import app as client_app
from fairfl_flower.config import RunConfig


class InProcessGrid(Grid):
    def __init__(self, cfg: RunConfig, num_nodes: int, *, shuffle_seed: int | None = 0) -> None:
        rng = random.Random(1234)
        self.run_config = cfg.to_mapping()
        self.contexts: dict[int, Context] = {}
        for pid in range(num_nodes):
            node_id = rng.getrandbits(63)
            self.contexts[node_id] = Context(
                run_id=1, node_id=node_id, node_config={"partition-id": pid, "num-partitions": num_nodes},
                state=RecordDict(), run_config=self.run_config,
            )
        self._shuffle = random.Random(shuffle_seed) if shuffle_seed is not None else None
        self.sent: list[Message] = []

    # --- Grid interface ---------------------------------------------------------------------
    def set_run(self, run) -> None:  # noqa: D401
        pass

    @property
    def run(self):
        raise NotImplementedError("InProcessGrid has no Run object")

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None) -> Message:
        return Message(content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id)

    def get_node_ids(self):
        return list(self.contexts)

    def push_messages(self, messages):
        raise NotImplementedError("use send_and_receive")

    def pull_messages(self, message_ids):
        raise NotImplementedError("use send_and_receive")

    def send_and_receive(self, messages, *, timeout=None):
        replies = []
        for msg in messages:
            self.sent.append(msg)
            context = self.contexts[msg.metadata.dst_node_id]
            try:
                replies.append(client_app(msg, context))
            except Exception as exc:  # the real runtimes turn client exceptions into error replies
                reason = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
                replies.append(Message(Error(code=0, reason=f"Message: {exc}'>" + reason), reply_to=msg))
        if self._shuffle is not None:
            self._shuffle.shuffle(replies)
        return replies


def set_task_identity() -> None:
    """Building a Flower Message outside a running app needs a task identity (an internal API of
    flwr 1.41: kept in this one place so that a Flower upgrade touches one function)."""
    from flwr.supercore.task_identity import TaskIdentity

    TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 1


def run_inprocess(cfg: RunConfig, num_nodes: int | None = None, **grid_kwargs):
    """Handshake + one strategy run over the in-process grid; returns (strategy, grid)."""
    from fairfl_flower.data import client_names
    from fairfl_flower.server_app import connect, run_strategy

    grid = InProcessGrid(cfg, num_nodes or len(client_names(cfg)), **grid_kwargs)
    federation = connect(grid, cfg)
    return run_strategy(grid, cfg, federation, log=None), grid
