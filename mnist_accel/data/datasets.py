"""The datasets asked for by name (``--dataset``): MNIST and its drop-in replacements in the same IDX
format (four files, 28x28 images, 10 classes). One definition each: where its official copies are, the
SHA-256 digests of its files, its cache folder, its environment variables, and its class names.

A dataset's digests are either of the decompressed IDX bytes (``digest_of="raw"``: a file verifies raw or
gzipped, whatever compressed it) or, where only those are published, of the ``.gz`` files the mirrors serve
(``digest_of="gz"``: only the gzipped files verify).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from mnist_accel.errors import ConfigError

STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Dataset:
    name: str  # what --dataset takes
    title: str  # how summaries name it
    homepage: str
    licence: str
    mirrors: tuple[str, ...]  # base URLs, tried in turn; each serves <stem>.gz
    sha256: dict[str, str]  # per stem, of what ``digest_of`` says
    digest_of: str  # "raw" or "gz" (see the module's docstring)
    classes: tuple[str, ...]  # the name of each label, 0 to 9
    framing: str  # how a picture is made an input like this dataset's (see images.to_mnist)
    cache_subdir: str  # below the package's cache folder ("": the folder itself)
    env_prefix: str  # MNIST_ACCEL_<PREFIX>DATA and MNIST_ACCEL_<PREFIX>MIRRORS

    @property
    def data_env(self) -> str:
        """The environment variable naming a folder that holds this dataset's four files."""
        return f"MNIST_ACCEL_{self.env_prefix}DATA"

    @property
    def mirrors_env(self) -> str:
        """The environment variable replacing ``mirrors`` (comma-separated base URLs)."""
        return f"MNIST_ACCEL_{self.env_prefix}MIRRORS"

    def mirror_list(self) -> tuple[str, ...]:
        value = os.environ.get(self.mirrors_env, "").strip()
        return tuple(m.strip() for m in value.split(",") if m.strip()) or self.mirrors

    def cache_dir(self) -> Path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = Path(base) / "mnist_accel"
        return folder / self.cache_subdir if self.cache_subdir else folder

    def matches(self, stem: str, path: Path, raw: bytes | None = None) -> bool:
        """Whether the file at ``path`` (``raw``: its decompressed bytes, if already read) is the official one."""
        if self.digest_of == "gz":
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while block := f.read(_BLOCK):
                    digest.update(block)
            return digest.hexdigest() == self.sha256[stem]
        from mnist_accel.data import idx

        return hashlib.sha256(raw if raw is not None else idx.read_bytes(path)).hexdigest() == self.sha256[stem]


MNIST = Dataset(
    name="mnist", title="MNIST", homepage="http://yann.lecun.com/exdb/mnist/",
    licence="CC BY-SA 3.0 (as stated on its homepage)",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",  # torchvision's and numpy-tutorials' mirror
             "https://storage.googleapis.com/cvdf-datasets/mnist/"),  # Google's CVDF mirror
    # the digests every MNIST mirror agrees on
    sha256={"train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
    digest_of="raw", classes=tuple(str(d) for d in range(10)), framing="digit", cache_subdir="", env_prefix="")

FASHION_MNIST = Dataset(
    name="fashion-mnist", title="Fashion-MNIST", homepage="https://github.com/zalandoresearch/fashion-mnist",
    licence="MIT",
    mirrors=("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
             "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),  # the README's links (plain HTTP)
    # of the decompressed files: the official .gz files (MD5s in the dataset's README) and Debian's
    # re-compressed dataset-fashion-mnist package decompress to these
    sha256={"train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
    digest_of="raw",
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
             "Ankle boot"),
    framing="fill",  # its README: the longest edge resized to 28, the shorter one extended, centred
    cache_subdir="fashion-mnist", env_prefix="FASHION_MNIST_")

KMNIST = Dataset(
    name="kmnist", title="Kuzushiji-MNIST", homepage="https://github.com/rois-codh/kmnist",
    licence="CC BY-SA 4.0",
    mirrors=("https://codh.rois.ac.jp/kmnist/dataset/kmnist/",
             "http://codh.rois.ac.jp/kmnist/dataset/kmnist/"),  # the README's links
    # of the .gz files as served (the digests published for them; none are published for the IDX bytes)
    sha256={"train-images-idx3-ubyte": "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
            "train-labels-idx1-ubyte": "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
            "t10k-images-idx3-ubyte": "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
            "t10k-labels-idx1-ubyte": "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"},
    digest_of="gz",
    # the romanised hiragana (お き す つ な は ま や れ を): matplotlib's default font has no kana
    classes=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    framing="digit",  # MNIST's: no account of its framing is at hand to follow instead
    cache_subdir="kmnist", env_prefix="KMNIST_")

REGISTRY = {d.name: d for d in (MNIST, FASHION_MNIST, KMNIST)}
NAMES = tuple(REGISTRY)


def get(name: str) -> Dataset:
    """The dataset called ``name``; ConfigError naming the choices otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"--dataset {name!r} is not one of {', '.join(NAMES)}") from None


def class_names(name: str | None, n: int) -> list[str]:
    """The names of ``n`` labels of the dataset ``name`` (unknown, or a different count: the labels' numbers)."""
    d = REGISTRY.get(name or "")
    return list(d.classes) if d is not None and len(d.classes) == n else [str(i) for i in range(n)]
