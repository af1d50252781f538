"""scikit-learn's MLP estimators, accelerated: ``MLPClassifier`` and ``MLPRegressor`` with scikit-learn
1.9's parameters and behaviour on every backend (docs/sklearn.md). Needs scikit-learn."""

from mnist_accel.estimators.classifier import MLPClassifier
from mnist_accel.estimators.regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
