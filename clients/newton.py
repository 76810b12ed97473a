"""Exact local fitting of the logistic regression: the client routine ``newton``.

FL+HC's personalization (SPEC §3.2, line 3) trains the warm-up model on each client's data. Run long enough, SGD
on the convex logistic loss ends at the client's own optimum θ_i* = argmin_θ F_i(θ), whatever it started from;
the synthetic study of Fig. 7 wants exactly that point (Δ then measures how the clients' tasks differ, not how far
training went). ``personalize-solver = "newton"`` asks for it directly instead of thousands of SGD epochs:

    θ ← θ − t · H(θ)⁻¹ ∇F_i(θ),   ∇F_i = X̃ᵀ(σ(X̃θ) − y) / n,   H = X̃ᵀ diag(σ(1 − σ)) X̃ / n,   X̃ = [x, 1]

with a backtracking step t (Armijo), in float64, from the received model, until ‖∇F_i‖∞ ≤ ``NEWTON_TOL`` or
``NEWTON_MAX_ITER`` steps. Full batch, no learning rate, no randomness. Logistic regression only (the MLP's loss
is not convex; asking for it there is an error that names the fix).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from clients.routines import ROUTINES
from fairfl_flower.data import ClientData
from fairfl_flower.model import Params, bce_with_logits, is_logreg

NEWTON_MAX_ITER = 100  # steps; a non-separable problem converges quadratically in ~10
NEWTON_TOL = 1e-9  # stop when every gradient component is at most this


def _loss(theta: np.ndarray, xt: np.ndarray, y: np.ndarray) -> float:
    return float(bce_with_logits(xt @ theta, y).mean())


def newton_logreg(params: Params, x: np.ndarray, y: np.ndarray, *, tol: float = NEWTON_TOL,
                  max_iter: int = NEWTON_MAX_ITER) -> tuple[Params, float, int]:
    """Minimize the mean BCE of the logistic regression on (x, y) from ``params`` by damped Newton steps.
    Returns the parameters (float32, as every model travels), the final mean loss and the steps taken."""
    if not is_logreg(params):
        raise ValueError('the "newton" solver fits the logistic regression only; set model = "logreg", '
                         'or personalize-solver = "sgd"')
    xt = np.hstack([np.asarray(x, dtype=np.float64), np.ones((len(y), 1))])
    yy = np.asarray(y, dtype=np.float64)
    theta = np.concatenate([params["fc.weight"][0], params["fc.bias"]]).astype(np.float64)
    loss = _loss(theta, xt, yy)
    steps = 0
    for steps in range(1, max_iter + 1):
        p = expit(xt @ theta)
        grad = xt.T @ (p - yy) / len(yy)
        if np.max(np.abs(grad)) <= tol:
            steps -= 1
            break
        hess = (xt * (p * (1.0 - p))[:, None]).T @ xt / len(yy)
        try:
            direction = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            direction = np.linalg.lstsq(hess, grad, rcond=None)[0]
        t, slope = 1.0, float(grad @ direction)
        while t > 1e-10:
            candidate = theta - t * direction
            new_loss = _loss(candidate, xt, yy)
            if new_loss <= loss - 1e-4 * t * slope:
                break
            t *= 0.5
        else:  # no decrease along the Newton direction: at the optimum up to rounding
            break
        theta, loss = candidate, new_loss
    out = {"fc.weight": theta[None, :-1].astype(np.float32), "fc.bias": theta[-1:].astype(np.float32)}
    return out, loss, steps


@ROUTINES.register("newton")
def newton(params: Params, data: ClientData, conf: Any, rng: np.random.Generator) -> tuple[Params, float]:
    """The client's exact logistic-regression optimum from ``params`` (``rng`` unused: deterministic)."""
    fitted, loss, _ = newton_logreg(params, data.x_train, data.y_train)
    return fitted, loss
