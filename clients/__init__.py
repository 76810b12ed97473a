"""Client-side routines: local training (plain, proximal, MAML, exact Newton for the logistic regression) and evaluation with group counts.

Training routines are found by name (the ``routine`` key of a train message's config) in ``ROUTINES``;
each has the signature ``routine(params, data, conf, rng) -> (params, mean_train_loss)``.
"""

from clients.routines import ROUTINES  # noqa: F401

from clients import maml, newton  # noqa: E402,F401  # isort: skip
