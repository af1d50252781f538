"""Early stopping's validation split is scikit-learn's: the same held-out samples for a seed (so the same
validation scores), stratified for binary targets, and scikit-learn's errors where it cannot be drawn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.neural_network import MLPClassifier as SkMLPClassifier

from mnist_accel import MLPClassifier


@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_same_split_gives_the_same_validation_scores(n_classes):
    X, y = make_classification(n_samples=250, n_features=8, n_informative=5, n_classes=n_classes, weights=None,
                               random_state=2)
    kw = dict(early_stopping=True, validation_fraction=0.2, hidden_layer_sizes=(8,), max_iter=15, shuffle=False,
              batch_size=50, random_state=4)
    ours, theirs = MLPClassifier(backend="numpy", **kw).fit(X, y), SkMLPClassifier(**kw).fit(X, y)
    assert ours.t_ == theirs.t_ == 200 * ours.n_iter_
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)
    assert ours.n_iter_ == theirs.n_iter_


def test_split_errors_are_sklearns():
    X, y = make_classification(n_samples=300, n_features=8, n_classes=3, n_informative=5, random_state=0)
    lonely = np.r_[np.zeros(len(y) - 1, int), 1]  # binary, so stratified: one class has one member
    for data in ((X, lonely), (X[:10], y[:10])):  # ... and a validation set of one
        errors = []
        for cls in (MLPClassifier, SkMLPClassifier):
            with pytest.raises(ValueError) as info:
                cls(early_stopping=True, validation_fraction=0.1).fit(*data)
            errors.append(str(info.value))
        assert errors[0] == errors[1]
    assert "The least populated classes in y have only 1 member" in errors[0] or "too small" in errors[0]
