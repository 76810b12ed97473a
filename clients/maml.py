"""The Per-FedAvg local step (Fallah et al. 2020), MAML-FL's client routine ``maml``.

One meta-step from θ uses independent mini-batches B, B′ (and B″):

* first order (``maml-order = "first"``, the default):
      θ̃ = θ − α ∇F(θ; B),        θ ← θ − β ∇F(θ̃; B′)
* Hessian-free (``maml-order = "hessian-free"``):
      θ ← θ − β (I − α ∇²F(θ; B″)) ∇F(θ̃; B′)
  with the Hessian-vector product taken by a central finite difference of gradients,
      ∇²F(θ; B″) v ≈ [∇F(θ + δv; B″) − ∇F(θ − δv; B″)] / 2δ,   δ = FD_STEP / ‖v‖,
  as Per-FedAvg HF does.

α = ``maml-alpha``, β = ``maml-beta``; ``epochs`` epochs of ``batch-size`` batches. One epoch is
⌈n / batch-size⌉ meta-steps: B, B′ and B″ are the k-th batches of independent shuffles of the training
split, so every sample serves once in each role per epoch (and an epoch takes as many steps as plain SGD).
The reported loss is the meta-objective F(θ̃; B′), averaged over the last epoch. ``lr`` is not used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clients.routines import ROUTINES
from clients.sgd import batches
from fairfl_flower.data import ClientData
from fairfl_flower.model import Params, copy_params, loss_and_grads, param_names

# Length of the finite-difference perturbation δv in parameter space. Small, so that (almost) no ReLU
# of the batch changes side between θ − δv and θ + δv (a crossing would add a spurious jump); the
# difference is taken in float64, so rounding stays far below the step.
FD_STEP = 1e-6


def _grad(params: Params, x: np.ndarray, y: np.ndarray) -> Params:
    return loss_and_grads(params, x, y)[1]  # float64 parameters give float64 gradients


def hvp_finite_difference(params: Params, x: np.ndarray, y: np.ndarray, v: Params, step: float = FD_STEP) -> Params:
    """∇²F(θ; x, y) v by a central difference of gradients, computed in float64."""
    names = param_names(params)
    theta = {k: params[k].astype(np.float64) for k in names}
    vec = {k: v[k].astype(np.float64) for k in names}
    norm = float(np.sqrt(sum(np.sum(vec[k] ** 2) for k in names)))
    if norm == 0.0:
        return {k: np.zeros_like(vec[k]) for k in names}
    delta = step / norm
    plus = _grad({k: theta[k] + delta * vec[k] for k in names}, x, y)
    minus = _grad({k: theta[k] - delta * vec[k] for k in names}, x, y)
    return {k: (plus[k] - minus[k]) / (2.0 * delta) for k in names}


def maml_step(params: Params, batch: tuple, batch2: tuple, batch3: tuple | None, alpha: float, beta: float) -> tuple[Params, float]:
    """One Per-FedAvg meta-step in place on ``params``; ``batch3`` given = Hessian-free. Returns
    (params, F(θ̃; B′))."""
    names = param_names(params)
    _, g = loss_and_grads(params, *batch)
    adapted = {k: params[k] - alpha * g[k] for k in names}
    meta_loss, g2 = loss_and_grads(adapted, *batch2)
    if batch3 is not None:
        hv = hvp_finite_difference(params, *batch3, v=g2)
        g2 = {k: (g2[k] - alpha * hv[k]).astype(params[k].dtype) for k in names}
    for k in names:
        params[k] -= beta * g2[k]
    return params, meta_loss


@ROUTINES.register("maml")
def maml(params: Params, data: ClientData, conf: Any, rng: np.random.Generator) -> tuple[Params, float]:
    """Per-FedAvg local training: ``maml-alpha``, ``maml-beta``, ``maml-order``, ``epochs``, ``batch-size``."""
    alpha, beta = float(conf["maml-alpha"]), float(conf["maml-beta"])
    order = str(conf.get("maml-order", "first"))
    if order not in ("first", "hessian-free"):
        raise ValueError(f"maml-order must be first or hessian-free, got {order!r}")
    epochs, batch_size = int(conf["epochs"]), int(conf["batch-size"])
    x, y = data.x_train, data.y_train
    w = copy_params(params)
    last_epoch_loss = float("nan")
    for _ in range(epochs):
        roles = [batches(len(y), batch_size, rng) for _ in range(3 if order == "hessian-free" else 2)]
        total, count = 0.0, 0
        for idx in zip(*roles, strict=True):
            b3 = (x[idx[2]], y[idx[2]]) if len(idx) == 3 else None
            w, loss = maml_step(w, (x[idx[0]], y[idx[0]]), (x[idx[1]], y[idx[1]]), b3, alpha, beta)
            total += loss * len(idx[1])
            count += len(idx[1])
        last_epoch_loss = total / max(count, 1)
    return w, last_epoch_loss
