"""Reference models shipped with the course: trained once, on request, and loaded everywhere else.

``get_model("teacher")`` (or ``"student"``, ``"lenet300"``, ``"lenet5"``: MNIST-5k classifiers; ``"gpt"``: the
byte-level language model of :mod:`course_lib.llm`, trained on the shipped corpus) loads the weights that ship
inside the package (``course_lib/weights/``), the same bytes on every machine: a chapter that starts from a zoo
model gives the same outputs wherever it runs, whereas training, even seeded, gives other last bits on another
CPU (AVX-512 or AVX2 kernels, thread count) and a few epochs turn them into another accuracy. Each file is listed
in ``weights/manifest.json`` with the recipe that trained it, its SHA-256 and the accuracies (the language model:
perplexities) it reached; loading checks the checksum and uses ``torch.load(..., weights_only=True)``, which
cannot run code.

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
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._validation import changes_model, reads_model
from .data import load_corpus, load_dataset, make_loaders
from .llm import GPT, GPTConfig, LMRecipe, perplexity, train_lm
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


@dataclass(frozen=True)
class LMZooRecipe:
    """How the shipped language model is trained: a :class:`~course_lib.llm.GPT` of shape ``config``, trained
    by :func:`~course_lib.llm.train_lm` with ``training`` on the corpus's train split
    (:func:`course_lib.data.load_corpus`),
    its validation perplexity measured every ``training.eval_every`` steps on the first ``training.eval_tokens``
    validation tokens; ``census_steps``: the steps at which the activation census of the training run is recorded
    (:func:`course_lib.benchmark.llm.census_summary`)."""

    config: GPTConfig
    training: LMRecipe
    census_steps: tuple[int, ...] = ()


# The language model: GPTConfig's default shape (4 layers, width 192, 6 heads, context 128, 1.9 M parameters),
# without dropout (600 steps of 24 windows see 1.8 M training characters, less than one pass over the 2 M: nothing
# to over-fit), AdamW at 2e-3 with a cosine to 2e-4. It trained in about 3 minutes on 2 quiet cores (AMD EPYC,
# evaluations and census included; several times longer on a busy machine). Longer training lowers the perplexity
# further (the validation curve in the manifest still falls).
GPT_RECIPE = LMZooRecipe(
    GPTConfig(dropout=0.0),
    LMRecipe(steps=600, batch_size=24, lr=2e-3, min_lr=2e-4, warmup_steps=60, weight_decay=0.1,
             eval_every=50, eval_tokens=32768, seed=0),
    census_steps=(100, 200, 300, 450, 600))
# Retrain a language model yourself in a minute or two on 2 cores: the same model, a third of the steps
# (``train_lm(GPT(RECIPES["gpt"].config), load_corpus().train, recipe=GPT_SHORT_RECIPE)``); it stops at a higher
# perplexity than the shipped model.
GPT_SHORT_RECIPE = LMRecipe(steps=200, batch_size=24, lr=2e-3, min_lr=2e-4, warmup_steps=20, weight_decay=0.1,
                            eval_every=50, eval_tokens=32768, seed=0)


# Settings chosen on the validation split. The teacher's hidden layer is batch-normalised (see models.ConvNet), so
# every unit stays alive; LeNet-300-100, which has no convolution to make it tolerant of shifts, needs the
# shifts, a longer schedule and stronger weight decay (with 15 epochs, no shifts and weight decay 1e-4 it
# reached 94.1% on the test split).
RECIPES: dict[str, Recipe | LMZooRecipe] = {
    "teacher": Recipe("teacher", epochs=20, lr=1e-3, weight_decay=1e-4),
    "student": Recipe("student", epochs=20, lr=2e-3, weight_decay=5e-2),
    "lenet300": Recipe("lenet300", epochs=40, lr=2e-3, weight_decay=5e-2, augment=1),
    "lenet5": Recipe("lenet5"),
    "gpt": GPT_RECIPE,
}


class ZooError(RuntimeError):
    """A shipped weight file is missing, damaged or does not fit its model."""


def _check_name(name: str) -> Recipe | LMZooRecipe:
    if name not in RECIPES:
        raise ValueError(f"unknown reference model {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


def recipe_record(recipe: Recipe | LMZooRecipe) -> dict[str, Any]:
    """``recipe`` as the manifest stores it: its fields as JSON values (tuples become lists)."""
    return json.loads(json.dumps(asdict(recipe)))


def manifest() -> dict[str, dict[str, Any]]:
    """The shipped models' records: ``{name: {"file", "sha256", "bytes", "recipe", "seed", "accuracy",
    "trained_on"}}``; the language model has ``"perplexity"`` (``val``, ``test``: whole splits) instead of
    ``"accuracy"``, and the ``"history"`` of its training run (``step``, ``loss``, ``val_perplexity``, ``census``:
    :func:`course_lib.benchmark.llm.census_summary` at each of the recipe's ``census_steps``)."""
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
    if record["recipe"] != recipe_record(recipe):
        raise ZooError(f"the shipped {name} ({record['file']}) was trained with {record['recipe']}, but the "
                       f"code's recipe is {recipe_record(recipe)}; retrain it "
                       f"(`python -m course_lib.zoo train {name} --ship`)")
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


def _untrained(name: str) -> nn.Module:
    recipe = _check_name(name)
    return GPT(recipe.config) if isinstance(recipe, LMZooRecipe) else build_model(name, recipe.dataset)


def get_model(name: str) -> nn.Module:
    """The shipped reference model ``name`` (``teacher``, ``student``, ``lenet300``, ``lenet5``, trained on
    MNIST-5k; ``gpt``, the language model), in eval mode on the CPU; identical on every machine.

    The caller's random state advances as for building one untrained model (the model is built, then its
    weights are loaded), so a notebook's later random draws do not depend on the zoo. Raises
    :class:`ZooError` naming the file if it is missing, damaged (checksum) or does not fit.
    """
    path, _ = _shipped_file(name)
    return load_weights(_untrained(name), path)


def train_reference(name: str, seed: int = 0, progress: bool | None = False) -> nn.Module:
    """Train ``name``'s recipe from scratch with ``seed`` on the CPU and return the model (eval mode).

    Deterministic on one machine; on another CPU the weights differ in their last bits and the accuracy by a
    few test images. The caller's random state is left where it was. For the language model, the training
    history (:func:`manifest`) is in the returned model's attribute ``history``.
    """
    recipe = _check_name(name)
    if isinstance(recipe, LMZooRecipe):
        return _train_lm_reference(recipe, seed, progress)
    with torch.random.fork_rng(devices=[]):
        set_seed(seed)
        splits = load_dataset(recipe.dataset)
        loaders = make_loaders(splits, batch_size=recipe.batch_size, seed=seed)
        model = build_model(recipe.model, recipe.dataset)
        train(model, loaders.train, recipe.epochs, lr=recipe.lr, weight_decay=recipe.weight_decay,
              augment=recipe.augment, device="cpu", progress=progress)
    return model.eval()


def _train_lm_reference(recipe: LMZooRecipe, seed: int, progress: bool | None) -> nn.Module:
    from .benchmark.llm import census_summary  # the census reads the model as the chapter does

    corpus, census = load_corpus(), {}

    def on_eval(step: int, model: nn.Module) -> None:
        if step in recipe.census_steps:
            census[str(step)] = census_summary(model, corpus.val)

    with torch.random.fork_rng(devices=[]):
        set_seed(seed)
        trained = train_lm(GPT(recipe.config), corpus.train, recipe=replace(recipe.training, seed=seed),
                           val_tokens=corpus.val, device="cpu", progress=progress, on_eval=on_eval)
    model, h = trained.model.eval(), trained.history
    model.history = {"step": h.step, "loss": h.loss, "val_perplexity": h.val_perplexity, "census": census}
    return model


@reads_model
def perplexities(model: nn.Module) -> dict[str, float]:
    """Validation and test perplexity of the language model ``model`` on the whole corpus splits (non-overlapping
    windows of its context, :func:`course_lib.llm.perplexity`)."""
    corpus, context = load_corpus(), model.config.context
    return {"val": perplexity(model, corpus.val, context), "test": perplexity(model, corpus.test, context)}


def _scores(model: nn.Module, name: str) -> dict[str, dict[str, float]]:
    """What the manifest records of a trained model: ``{"accuracy": ...}`` or, for the LM, ``{"perplexity": ...}``."""
    if isinstance(_check_name(name), LMZooRecipe):
        return {"perplexity": perplexities(model)}
    return {"accuracy": accuracies(model, name)}


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
    record = {"file": path.name, "sha256": sha256(path), "bytes": path.stat().st_size, "recipe": recipe_record(recipe),
              "seed": seed, **_scores(model, name), "trained_on": _machine()}
    if isinstance(recipe, LMZooRecipe):
        record["history"] = model.history
    records = manifest() if MANIFEST.exists() else {}
    records[name] = record
    MANIFEST.write_text(json.dumps(dict(sorted(records.items())), indent=2) + "\n", encoding="utf-8")
    return record


def _points(x: float) -> str:
    return f"{100 * x:.1f}%"


def _score_text(scores: dict[str, dict[str, float]]) -> str:
    """``val 97.0%, test 97.2%`` (accuracies) or ``val perplexity 3.10, test perplexity 3.20``."""
    if "perplexity" in scores:
        return ", ".join(f"{k} perplexity {v:.3f}" for k, v in scores["perplexity"].items())
    return ", ".join(f"{k} {_points(v)}" for k, v in scores["accuracy"].items())


def _list() -> int:
    for name, r in manifest().items():
        print(f"{name:9} {r['file']:13} {r['bytes']:>9,} B  {_score_text(r)}  "
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
        got = _scores(model, name)
        shipped = (manifest() if MANIFEST.exists() else {}).get(name, {})
        line = f"{name} (seed {seed}): {_score_text(got)}"
        if "accuracy" in got and "accuracy" in shipped:
            line += (f"; shipped: {_score_text(shipped)} "
                     f"(test {100 * (got['accuracy']['test'] - shipped['accuracy']['test']):+.1f} points)")
        elif "perplexity" in got and "perplexity" in shipped:
            line += f"; shipped: {_score_text(shipped)}"
        print(line)
        if ship_it:
            print(f"  shipped as {WEIGHTS / ship(name, model, seed)['file']} (commit it, then `make notebooks`)")
        else:
            target = out if out is not None and len(names) == 1 else Path(f"{name}-s{seed}.pt")
            torch.save(model.state_dict(), target)
            build = "GPT(RECIPES['gpt'].config)" if name == "gpt" else f"build_model({name!r})"
            print(f"  written to {target} (the shipped file is unchanged; load it with "
                  f"course_lib.zoo.load_weights({build}, {str(target)!r}))")
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
