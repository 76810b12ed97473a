"""The models' NumPy forward/backward against torch autograd, and the client routines."""

import numpy as np
import pytest
import torch

from clients.evaluate import evaluate
from clients.maml import maml_step
from clients.newton import newton_logreg
from clients.sgd import batches, local_sgd
from fairfl_flower.config import RunConfig
from fairfl_flower.model import (
    LOGREG_NAMES,
    MLP,
    MODELS,
    PARAM_NAMES,
    LogReg,
    build,
    copy_params,
    flatten,
    from_record,
    init_params,
    is_logreg,
    logits,
    loss_and_grads,
    to_record,
)


def torch_reference(params, x, y):
    model = LogReg(x.shape[1]) if is_logreg(params) else MLP(x.shape[1], params["fc1.weight"].shape[0])
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in params.items()})
    out = model(torch.from_numpy(x))
    loss = torch.nn.functional.binary_cross_entropy_with_logits(out, torch.from_numpy(y))
    loss.backward()
    grads = {k: p.grad.numpy() for k, p in model.named_parameters()}
    return out.detach().numpy(), loss.item(), grads


def assert_matches_torch(params, x, y) -> float:
    """The NumPy logits, loss and gradients of ``params`` equal torch autograd's; returns the loss."""
    ref_out, ref_loss, ref_grads = torch_reference(params, x, y)
    loss, grads = loss_and_grads(params, x, y)
    np.testing.assert_allclose(logits(params, x), ref_out, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for k in params:
        np.testing.assert_allclose(grads[k], ref_grads[k], rtol=1e-4, atol=1e-6)
    return loss


def test_numpy_gradients_match_torch_autograd():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 9)).astype(np.float32)
    y = (rng.random(37) < 0.4).astype(np.float32)
    assert_matches_torch(init_params(9, 16, seed=3), x, y)


def test_logistic_regression_matches_torch_and_roundtrips():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((41, 6)).astype(np.float32)
    y = (rng.random(41) < 0.5).astype(np.float32)
    params = init_params(6, 32, seed=2, kind="logreg")  # hidden is ignored
    assert list(params) == list(LOGREG_NAMES) and params["fc.weight"].shape == (1, 6)
    loss = assert_matches_torch(params, x, y)
    back = from_record(to_record(params))
    assert list(back) == list(LOGREG_NAMES) and np.array_equal(flatten(back), flatten(params))
    assert flatten(params).shape == (7,)
    trained, _ = local_sgd(params, x, y, lr=0.5, epochs=3, batch_size=8, rng=np.random.default_rng(0))
    assert loss_and_grads(trained, x, y)[0] < loss  # SGD and MAML both train it
    meta, _ = maml_step(copy_params(params), (x, y), (x, y), (x, y), alpha=0.1, beta=0.1)
    assert list(meta) == list(LOGREG_NAMES) and not np.array_equal(meta["fc.weight"], params["fc.weight"])


def test_model_names_are_the_run_config_choices():
    for kind in MODELS:
        assert RunConfig.defaults(model=kind).model == kind
    with pytest.raises(ValueError, match="mlp.*logreg"):
        RunConfig.defaults(model="cnn")
    with pytest.raises(ValueError, match="valid: mlp, logreg"):
        build("cnn", 3, 4)


def test_init_is_seeded_and_roundtrips_through_arrayrecord():
    a, b, c = init_params(5, 8, 1), init_params(5, 8, 1), init_params(5, 8, 2)
    assert all(np.array_equal(a[k], b[k]) for k in PARAM_NAMES)
    assert not np.array_equal(a["fc1.weight"], c["fc1.weight"])
    back = from_record(to_record(a))
    assert list(back) == list(PARAM_NAMES) and all(np.array_equal(a[k], back[k]) for k in PARAM_NAMES)
    assert a["fc1.weight"].shape == (8, 5) and a["fc2.weight"].shape == (1, 8)


def separable(n=400, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = (x @ np.arange(1, d + 1) > 0).astype(np.float32)
    return x, y


def test_one_epoch_of_sgd_lowers_the_training_loss():
    x, y = separable()
    params = init_params(x.shape[1], 16, seed=0)
    before, _ = loss_and_grads(params, x, y)
    trained, _ = local_sgd(params, x, y, lr=0.1, epochs=1, batch_size=32, rng=np.random.default_rng(0))
    after, _ = loss_and_grads(trained, x, y)
    assert after < before - 0.05
    assert not np.array_equal(params["fc1.weight"], trained["fc1.weight"])  # input left untouched


def test_sgd_is_reproducible_with_the_same_generator():
    x, y = separable()
    p = init_params(x.shape[1], 8, seed=0)
    a, _ = local_sgd(p, x, y, lr=0.05, epochs=2, batch_size=32, rng=np.random.default_rng(5))
    b, _ = local_sgd(p, x, y, lr=0.05, epochs=2, batch_size=32, rng=np.random.default_rng(5))
    assert all(np.array_equal(a[k], b[k]) for k in PARAM_NAMES)


def test_batches_cover_every_index_once():
    idx = np.concatenate(list(batches(103, 32, np.random.default_rng(0))))
    assert sorted(idx.tolist()) == list(range(103))
    assert [len(b) for b in batches(103, 32, np.random.default_rng(0))] == [32, 32, 32, 7]


def test_proximal_term_keeps_the_model_closer_to_its_start():
    x, y = separable()
    p = init_params(x.shape[1], 8, seed=0)

    def drift(mu):
        w, _ = local_sgd(p, x, y, lr=0.05, epochs=3, batch_size=32, rng=np.random.default_rng(1), prox_mu=mu)
        return sum(float(np.sum((w[k] - p[k]) ** 2)) for k in PARAM_NAMES)

    assert drift(0.0) > drift(1.0) > drift(10.0)


def test_evaluation_counts_add_up():
    rng = np.random.default_rng(2)
    x, y = separable(300)
    g = (rng.random(300) < 0.3).astype(np.int8)
    params = init_params(x.shape[1], 8, seed=4)
    ev = evaluate(params, x, y, g)
    assert ev.counts.n.sum() == ev.n == 300
    assert ev.counts.n[1].sum() == int(g.sum()) and ev.counts.n[:, 1].sum() == int(y.sum())
    assert (ev.counts.pos <= ev.counts.n).all()
    pred = (logits(params, x) >= 0).astype(int)
    assert ev.counts.pos.sum() == pred.sum()
    assert ev.accuracy == pytest.approx(float((pred == y).mean()))
    assert ev.counts.accuracy == pytest.approx(ev.accuracy)


def test_newton_finds_the_logistic_optimum_from_any_start():
    """The ``newton`` routine ends at the unique minimizer of the mean BCE (scipy's BFGS as the oracle), whatever
    model it starts from, with a zero gradient; it refuses the MLP, naming the fix."""
    from scipy.optimize import minimize
    from scipy.special import expit

    rng = np.random.default_rng(4)
    x = (rng.standard_normal((3000, 3)) * [1.0, 8.0, 0.3]).astype(np.float32)  # badly scaled, as Fig. 7's
    y = (rng.random(3000) < expit(x @ [1.0, -0.2, 2.0] + 0.5)).astype(np.float32)
    xt = np.hstack([x.astype(np.float64), np.ones((len(y), 1))])

    def f(t):
        z = xt @ t
        return np.logaddexp(0, z).mean() - y @ z / len(y), xt.T @ (expit(z) - y) / len(y)

    oracle = minimize(f, np.zeros(4), jac=True, method="BFGS", options={"gtol": 1e-12}).x
    fits = []
    for seed in (0, 1):
        start = init_params(3, 1, seed=seed, kind="logreg")
        start["fc.weight"] *= 50  # far from the optimum
        fit, loss, steps = newton_logreg(start, x, y)
        theta = flatten(fit)
        np.testing.assert_allclose(theta, oracle, atol=1e-5)
        assert loss == pytest.approx(f(oracle)[0], abs=1e-9) and steps < 50
        assert np.abs(loss_and_grads(fit, x, y)[1]["fc.weight"]).max() < 1e-4
        fits.append(theta)
    np.testing.assert_allclose(fits[0], fits[1], atol=1e-6)
    with pytest.raises(ValueError, match='set model = "logreg", or personalize-solver = "sgd"'):
        newton_logreg(init_params(3, 4, seed=0), x, y)
