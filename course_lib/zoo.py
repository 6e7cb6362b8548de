"""Reference models shipped with the course: trained once, on request, and loaded everywhere else.

``get_model("teacher")`` loads the weights that ship inside the package (``course_lib/weights/``), the same
bytes on every machine: a chapter that starts from a zoo model gives the same outputs wherever it runs,
whereas training, even seeded, gives other last bits on another CPU (AVX-512 or AVX2 kernels, thread
count) and a few epochs turn them into another accuracy. Each file is listed in ``weights/manifest.json``
with the recipe that trained it, its SHA-256 and the accuracies it reached; loading checks the checksum
and uses ``torch.load(..., weights_only=True)``, which cannot run code.

Training happens only when asked: ``python -m course_lib.zoo train NAME`` trains the recipe from scratch and
reports the result against the shipped model's recorded accuracy; it writes a separate file and never
replaces the shipped one, except with ``--ship`` (``make zoo``, for maintainers, who then commit the new
weights and re-execute the notebooks). ``python -m course_lib.zoo list`` and ``verify`` show and check
what ships.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._validation import changes_model, reads_model
from .data import load_dataset, make_loaders
from .models import build_model
from .training import evaluate, set_seed, train

WEIGHTS = Path(__file__).resolve().parent / "weights"
MANIFEST = WEIGHTS / "manifest.json"


@dataclass(frozen=True)
class Recipe:
    """How a reference model is trained: model and data set names, and the optimisation settings (AdamW with
    a cosine schedule, :func:`course_lib.training.train`; ``augment`` = random shifts of up to that many pixels)."""

    model: str
    dataset: str = "mnist5k"
    epochs: int = 12
    lr: float = 2e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    augment: int = 2


# Settings chosen on the validation split. The teacher's hidden layer is batch-normalised (see models.ConvNet), so
# every unit stays alive; LeNet-300-100, which has no convolution to make it tolerant of shifts, needs the
# shifts, a longer schedule and stronger weight decay (with 15 epochs, no shifts and weight decay 1e-4 it
# reached 94.1% on the test split).
RECIPES = {
    "teacher": Recipe("teacher", epochs=20, lr=1e-3, weight_decay=1e-4),
    "student": Recipe("student", epochs=20, lr=2e-3, weight_decay=5e-2),
    "lenet300": Recipe("lenet300", epochs=40, lr=2e-3, weight_decay=5e-2, augment=1),
    "lenet5": Recipe("lenet5"),
}


class ZooError(RuntimeError):
    """A shipped weight file is missing, damaged or does not fit its model."""


def _check_name(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown reference model {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def manifest() -> dict[str, dict[str, Any]]:
    """The shipped models' records: ``{name: {"file", "sha256", "bytes", "recipe", "seed", "accuracy",
    "trained_on"}}``."""
    try:
        return json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ZooError(f"the zoo manifest {MANIFEST} is missing or unreadable ({e}); reinstall course_lib") from None


def sha256(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _shipped_file(name: str) -> tuple[Path, dict[str, Any]]:
    """The verified path of ``name``'s shipped weights and its manifest record."""
    recipe = _check_name(name)
    record = manifest().get(name)
    if record is None:
        raise ZooError(f"no shipped weights for {name!r} in {MANIFEST}; train them with "
                       f"`python -m course_lib.zoo train {name} --ship`")
    if record["recipe"] != asdict(recipe):
        raise ZooError(f"the shipped {name} ({record['file']}) was trained with {record['recipe']}, but the code's "
                       f"recipe is {asdict(recipe)}; retrain it (`python -m course_lib.zoo train {name} --ship`)")
    path = WEIGHTS / record["file"]
    if not path.is_file():
        raise ZooError(f"shipped weights {path} are missing; reinstall course_lib")
    digest = sha256(path)
    if digest != record["sha256"]:
        raise ZooError(f"shipped weights {path} are damaged: SHA-256 {digest[:16]}..., expected "
                       f"{record['sha256'][:16]}... (manifest); reinstall course_lib")
    return path, record


@changes_model
def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the state dict at ``path`` (``torch.load(weights_only=True)``, which cannot run code) into ``model``."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError, ValueError, EOFError, AttributeError, pickle.UnpicklingError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ZooError(f"cannot load {path} into {type(model).__name__}: {type(e).__name__}: {first}") from None
    return model.eval()


def get_model(name: str) -> nn.Module:
    """The shipped reference model ``name`` (``teacher``, ``student``, ``lenet300``, ``lenet5``), trained on
    MNIST-5k, in eval mode on the CPU; identical on every machine.

    The caller's random state advances as for building one untrained model (the model is built, then its
    weights are loaded), so a notebook's later random draws do not depend on the zoo. Raises
    :class:`ZooError` naming the file if it is missing, damaged (checksum) or does not fit.
    """
    path, _ = _shipped_file(name)
    return load_weights(build_model(name, RECIPES[name].dataset), path)


def train_reference(name: str, seed: int = 0, progress: bool | None = False) -> nn.Module:
    """Train ``name``'s recipe from scratch with ``seed`` on the CPU and return the model (eval mode).

    Deterministic on one machine; on another CPU the weights differ in their last bits and the accuracy by a
    few test images. The caller's random state is left where it was.
    """
    recipe = _check_name(name)
    with torch.random.fork_rng(devices=[]):
        set_seed(seed)
        splits = load_dataset(recipe.dataset)
        loaders = make_loaders(splits, batch_size=recipe.batch_size, seed=seed)
        model = build_model(recipe.model, recipe.dataset)
        train(model, loaders.train, recipe.epochs, lr=recipe.lr, weight_decay=recipe.weight_decay,
              augment=recipe.augment, device="cpu", progress=progress)
    return model.eval()


@reads_model
def accuracies(model: nn.Module, name: str) -> dict[str, float]:
    """Validation and test accuracy (fractions) of ``model`` on ``name``'s data set."""
    loaders = make_loaders(load_dataset(_check_name(name).dataset))
    return {"val": evaluate(model, loaders.val, device="cpu"), "test": evaluate(model, loaders.test, device="cpu")}


def _machine() -> dict[str, Any]:
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "machine": platform.machine(), "python": platform.python_version()}


def ship(name: str, model: nn.Module, seed: int = 0) -> dict[str, Any]:
    """Write ``model`` as the shipped ``name`` and update its manifest record (maintainers only); return the record."""
    recipe = _check_name(name)
    path = WEIGHTS / f"{name}.pt"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    record = {"file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size, "recipe": asdict(recipe),
              "seed": seed, "accuracy": accuracies(model, name), "trained_on": _machine()}
    records = manifest() if MANIFEST.exists() else {}
    records[name] = record
    MANIFEST.write_text(json.dumps(dict(sorted(records.items())), indent=2) + "\n", encoding="utf-8")
    return record


def _points(x: float) -> str:
    return f"{100 * x:.1f}%"


def _list() -> int:
    for name, r in manifest().items():
        acc = r["accuracy"]
        print(f"{name:9} {r['file']:13} {r['bytes']:>9,} B  val {_points(acc['val'])}  test {_points(acc['test'])}  "
              f"sha256 {r['sha256'][:12]}  trained with torch {r['trained_on']['torch']} "
              f"({r['trained_on']['cpu_capability']}, {r['trained_on']['threads']} threads)")
    return 0


def _verify() -> int:
    bad = 0
    for name in RECIPES:
        try:
            get_model(name)
            print(f"{name}: ok")
        except ZooError as e:
            bad += 1
            print(f"{name}: {e}", file=sys.stderr)
    return 1 if bad else 0


def _train(names: list[str], seed: int, out: Path | None, ship_it: bool) -> int:
    for name in names:
        model = train_reference(name, seed, progress=None)
        got = accuracies(model, name)
        shipped = (manifest() if MANIFEST.exists() else {}).get(name, {}).get("accuracy")
        line = f"{name} (seed {seed}): val {_points(got['val'])}, test {_points(got['test'])}"
        if shipped:
            line += (f"; shipped: val {_points(shipped['val'])}, test {_points(shipped['test'])} "
                     f"(test {100 * (got['test'] - shipped['test']):+.1f} points)")
        print(line)
        if ship_it:
            print(f"  shipped as {WEIGHTS / ship(name, model, seed)['file']} (commit it, then `make notebooks`)")
        else:
            target = out if out is not None and len(names) == 1 else Path(f"{name}-s{seed}.pt")
            torch.save(model.state_dict(), target)
            print(f"  written to {target} (the shipped file is unchanged; load it with "
                  f"course_lib.zoo.load_weights(build_model({name!r}), {str(target)!r}))")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.zoo", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the shipped models, their recipes' results and checksums")
    sub.add_parser("verify", help="check every shipped file against the manifest (exit 1 if one is bad)")
    t = sub.add_parser("train", help="train reference models from scratch and compare with the shipped ones")
    t.add_argument("names", nargs="+", choices=[*RECIPES, "all"], metavar="NAME",
                   help=f"{', '.join(RECIPES)} or all")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", type=Path, help="file for the trained weights (one model; default NAME-sSEED.pt)")
    t.add_argument("--ship", action="store_true", help="replace the shipped weights and manifest (maintainers)")
    args = parser.parse_args(argv)
    if args.command == "list":
        return _list()
    if args.command == "verify":
        return _verify()
    if args.seed < 0:
        parser.error(f"--seed must be a non-negative integer, got {args.seed}")
    names = list(RECIPES) if "all" in args.names else list(dict.fromkeys(args.names))
    return _train(names, args.seed, args.out, args.ship)


if __name__ == "__main__":
    sys.exit(main())
