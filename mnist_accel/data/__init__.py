"""MNIST and its kind: IDX files (``idx``), where they come from (``download``), the loaded set
(``mnist``) and pictures of digits (``images``). ``load_mnist`` and the array helpers are re-exported here,
where users import them: ``from mnist_accel.data import load_mnist, normalize``."""

from mnist_accel.data.mnist import MnistData, load_mnist, normalize, one_hot

__all__ = ["MnistData", "load_mnist", "normalize", "one_hot"]
