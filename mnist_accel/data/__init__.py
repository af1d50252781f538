"""MNIST and its kind: the datasets by name (``datasets``), IDX files (``idx``), where they come from
(``download``), the loaded set (``mnist``) and pictures of digits (``images``). ``load_mnist`` and the array
helpers are re-exported here, where users import them: ``from mnist_accel.data import load_mnist, normalize``
(``load_mnist(dataset="fashion-mnist")`` for another dataset)."""

from mnist_accel.data.datasets import NAMES as DATASETS
from mnist_accel.data.mnist import MnistData, load_mnist, normalize, one_hot

__all__ = ["DATASETS", "MnistData", "load_mnist", "normalize", "one_hot"]
