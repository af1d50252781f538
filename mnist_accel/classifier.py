"""``mnist_accel.classifier.MLPClassifier``, where it has always been importable; the estimators live in
``mnist_accel.estimators``."""

from mnist_accel.estimators.classifier import MLPClassifier
from mnist_accel.estimators.regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
