"""Early stopping's validation split, drawn as scikit-learn draws it: ``train_test_split`` with the fit's
random state after the initial weights, stratified by the binarized targets for single-output
classification (not for multilabel or regression), so a seed holds out the samples scikit-learn holds
out, and a class with one member gets scikit-learn's error."""

from __future__ import annotations

import numpy as np
from sklearn.base import is_classifier
from sklearn.model_selection import train_test_split


def validation_split(est, X, Y):
    """(X_train, X_val, Y_train, Y_val); X may be dense, sparse or on the GPU (indexed where it is)."""
    stratify = Y if is_classifier(est) and est.n_outputs_ == 1 else None
    train, val = train_test_split(np.arange(X.shape[0]), random_state=est._random_state,
                                  test_size=est.validation_fraction, stratify=stratify)
    if len(val) < 2:
        raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of your "
                         "dataset.")
    return X[train], X[val], Y[train], Y[val]
