"""The paper's model (SPEC §5.2): a 2-layer MLP, input -> hidden (ReLU) -> 1 logit, BCE loss; and the
logistic regression SPEC §5.4 allows for the synthetic study (run-config key ``model``: ``mlp`` | ``logreg``).

``MLP`` and ``LogReg`` are the PyTorch definitions; they give the initial parameters (PyTorch's default
initialisation under a seed) and are the references the hand-written NumPy forward/backward below is tested
against.
Clients train with that NumPy path: one SGD step of a 54-32-1 MLP on a batch of 32 costs ~30 µs there
against ~275 µs with autograd + ``torch.optim`` (``benchmarks/sgd_step.py``), and the local step
decides the speed of every experiment.

Parameters travel as a dict ``name -> float32 ndarray`` with PyTorch's state-dict names, in
``PARAM_NAMES`` order (``LOGREG_NAMES`` for the logistic regression; ``param_names`` tells them apart);
:func:`to_record` / :func:`from_record` convert to and from Flower ArrayRecords.
"""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import Array, ArrayRecord
from torch import nn

PARAM_NAMES = ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")  # the MLP
LOGREG_NAMES = ("fc.weight", "fc.bias")  # the logistic regression
MODELS = ("mlp", "logreg")
Params = dict[str, np.ndarray]


class MLP(nn.Module):
    def __init__(self, input_dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x))).squeeze(-1)


class LogReg(nn.Module):
    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(input_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).squeeze(-1)


def build(kind: str, input_dim: int, hidden: int) -> nn.Module:
    """The PyTorch module of model ``kind`` (``hidden`` is ignored by the logistic regression)."""
    if kind == "mlp":
        return MLP(input_dim, hidden)
    if kind == "logreg":
        return LogReg(input_dim)
    raise ValueError(f"unknown model {kind!r}; valid: {', '.join(MODELS)}")


def is_logreg(params) -> bool:
    """Whether ``params`` (a dict or an ArrayRecord) are a logistic regression's (else the MLP's)."""
    return LOGREG_NAMES[0] in params


def param_names(params) -> tuple[str, ...]:
    """The parameter names of the model ``params`` (a dict or an ArrayRecord) belongs to, in order."""
    return LOGREG_NAMES if is_logreg(params) else PARAM_NAMES


def init_params(input_dim: int, hidden: int, seed: int, kind: str = "mlp") -> Params:
    """PyTorch's default initialisation of model ``kind`` under ``seed`` (independent of global RNG state)."""
    gen_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = build(kind, input_dim, hidden)
    finally:
        torch.random.set_rng_state(gen_state)
    return {k: v.detach().numpy().astype(np.float32, copy=True) for k, v in model.state_dict().items()}


def to_record(params: Params) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(params[k])) for k in param_names(params)})


def from_record(record: ArrayRecord) -> Params:
    names = param_names(record)
    missing = [k for k in names if k not in record]
    if missing:
        raise ValueError(f"model record lacks {missing}; has {list(record.keys())}")
    return {k: record[k].numpy().astype(np.float32, copy=True) for k in names}


def flatten(params: Params) -> np.ndarray:
    return np.concatenate([params[k].ravel() for k in param_names(params)]).astype(np.float64)


def copy_params(params: Params) -> Params:
    return {k: v.copy() for k, v in params.items()}


# ---------------------------------------------------------------------------------------------
# NumPy forward / backward (float32). Verified against torch autograd in tests.
# ---------------------------------------------------------------------------------------------
def logits(params: Params, x: np.ndarray) -> np.ndarray:
    if is_logreg(params):
        return x @ params["fc.weight"][0] + params["fc.bias"][0]
    hidden = x @ params["fc1.weight"].T
    hidden += params["fc1.bias"]
    np.maximum(hidden, 0.0, out=hidden)
    return hidden @ params["fc2.weight"][0] + params["fc2.bias"][0]


def bce_with_logits(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-sample binary cross-entropy of logits z for labels y, numerically stable."""
    return np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))


def _dloss_dlogit(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """dL/dz of the mean BCE: (sigmoid(z) - y) / batch size."""
    return (1.0 / (1.0 + np.exp(-z)) - y) / len(y)


def loss_and_grads(params: Params, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
    """Mean BCE loss on (x, y) and its gradient with respect to every parameter."""
    if is_logreg(params):
        z = logits(params, x)
        dz = _dloss_dlogit(z, y)
        grads = {"fc.weight": (dz @ x)[None, :], "fc.bias": np.array([dz.sum()], dtype=dz.dtype)}
        return float(bce_with_logits(z, y).mean()), grads
    w1, b1, w2 = params["fc1.weight"], params["fc1.bias"], params["fc2.weight"][0]
    pre = x @ w1.T
    pre += b1
    act = np.maximum(pre, 0.0)
    z = act @ w2 + params["fc2.bias"][0]
    dz = _dloss_dlogit(z, y)
    dpre = np.outer(dz, w2)
    dpre *= pre > 0
    grads = {
        "fc1.weight": dpre.T @ x,
        "fc1.bias": dpre.sum(axis=0),
        "fc2.weight": (dz @ act)[None, :],
        "fc2.bias": np.array([dz.sum()], dtype=dz.dtype),
    }
    loss = float(bce_with_logits(z, y).mean())
    return loss, grads
