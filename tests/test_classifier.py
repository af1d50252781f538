"""``mnist_accel.classifier`` still exports the estimators (they live in ``mnist_accel.estimators``, tested in
tests/estimators/)."""

from __future__ import annotations


def test_the_old_import_paths_still_work():
    import mnist_accel
    from mnist_accel.classifier import MLPClassifier, MLPRegressor
    from mnist_accel.estimators import MLPClassifier as Classifier, MLPRegressor as Regressor

    assert MLPClassifier is Classifier is mnist_accel.MLPClassifier
    assert MLPRegressor is Regressor is mnist_accel.MLPRegressor
