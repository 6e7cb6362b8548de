"""course_lib: the package behind *Compress & Accelerate*, a course on making neural networks smaller and faster.

Layers (imports only point down):

- ground floor: :mod:`~course_lib.data` (MNIST-5k, MNIST, CIFAR-10), :mod:`~course_lib.models`;
- shared model utilities: :mod:`~course_lib.training` (the training loop, ``evaluate``, ``evaluating``,
  ``recalibrate_batchnorm``), :mod:`~course_lib.metrics` (parameters, size, sparsity, ``layer_macs``),
  :mod:`~course_lib.timing` (the one timing helper: interleaved rounds, wall and CPU time, load and CPU recorded),
  the model zoo :mod:`~course_lib.zoo`;
- one package per technique: :mod:`~course_lib.distillation`, :mod:`~course_lib.pruning`,
  :mod:`~course_lib.acceleration`, :mod:`~course_lib.quantization` (builds on acceleration's folding and
  compilation), :mod:`~course_lib.compression` (builds on pruning and quantization) and :mod:`~course_lib.llm`
  (transformer compression: group quantization, GPTQ, AWQ, SmoothQuant, Wanda, LM distillation);
- on top: :mod:`~course_lib.grading` (learner checks, authoring, confinement, grading, deployment) and
  :mod:`~course_lib.benchmark` (the figures of the book's results page).

The contract of every model-level verb. The verbs are the functions decorated with
:func:`course_lib._validation.verb`; every other public function that takes a model is registered
:func:`~course_lib._validation.reads_model` (it leaves the model as it was: ``evaluate``, ``layer_macs``, ...) or
:func:`~course_lib._validation.changes_model` (it changes the model by design: ``train``, ``distillation_step``,
``load_weights``, ...). ``tests/test_contract.py`` checks each promise for every registered function and fails for a
public function taking a model that is not registered.

1. **It returns a new model and leaves its argument untouched**: its state, parametrizations, the train/eval mode of
   every submodule, classes and ``requires_grad`` flags. The copy is made by :func:`course_lib._validation.copy_model`,
   which shares nothing with the argument (not even a parametrized class), so PyTorch's own
   ``remove_parametrizations`` on a result leaves the argument working. :func:`course_lib.training.train` is the
   exception by design: it is the training loop, and it trains the model it is given, in place.
2. **It returns the model**, or, if it trains (``distill``, ``hint_train``, ``gradual_prune``,
   ``quantization_aware_train``, ``fine_tune``, ``train_lm``), a :class:`~course_lib.training.Trained`
   ``(model, history)``; ``deep_compress`` returns its :class:`~course_lib.compression.Result`.
3. **The model and its data come first, everything else is keyword-only**: ``magnitude_prune(model,
   sparsity=0.9)``, ``distill(student, teacher, loader, epochs=3, temperature=4.0)``.
4. **One keyword chooses layers**: ``layers=`` (an iterable of names as in ``model.named_modules()``;
   ``None``: every layer the verb applies to). Per-layer settings are mappings with such names as keys
   (``sparsity={"net.1": 0.92}``, ``bits={"features.0": 8}``); an unknown key is reported as
   ``"the keys of <argument> must name ..."``.
5. **Names say what they mean**: ``sparsity`` is the fraction removed (weights or channels), ``scope`` is
   ``"global"`` or ``"layer"``, ``bits`` is a code width, ``prune_during`` a share of the training steps.
6. **Bad arguments fail early and alike**, before any training: a wrong type raises ``TypeError``, a bad value
   ``ValueError``, with the message ``"<argument> must be <what is allowed>, got <what was given>"``. A loader must
   yield at least one batch (empty: ``ValueError``; ``None``: ``TypeError``).
7. **A verb that trains a copy takes** ``optimizer=`` **as a factory**, ``lambda params: torch.optim.SGD(params,
   lr=0.1)``, called with the copy's trainable parameters; an optimizer built on other parameters (the argument's)
   would train nothing, and raises ``ValueError``.

Pruning masks, binary weights and shared weights are all :mod:`torch.nn.utils.parametrize`
parametrizations of ``weight``: ``layer.weight`` is what the layer computes with, training updates the
tensor behind it, any such model can be deep-copied, and :func:`course_lib.pruning.make_permanent` folds them.
The pure tensor functions that the exercises reimplement (``soft_targets``, ``magnitude_mask``,
``quantize``, ``huffman_code``, ``fake_group_quantize``, ...) keep their plain positional signatures.

How to add

- **a technique**: a package ``course_lib/<technique>/`` with its pure tensor functions first (testable against a
  formula or a PyTorch op), then its verbs; it imports only the ground floor and the shared utilities (not another
  technique, except as the layers above say); tests in ``tests/test_<technique>.py``.
- **a verb**: decorate it with ``@verb``, check its arguments first (``course_lib._validation``'s ``check_*``), copy
  with ``copy_model``, take settings keyword-only, and add its ``Case`` to ``VERBS`` in ``tests/test_contract.py``
  (the test fails until you do).
- **a benchmark section**: a module ``course_lib/benchmark/<section>.py`` with ``run(quick, seeds) -> dict``, added to
  the one registry of sections in :mod:`course_lib.benchmark` (its keys, tables and claims are declared there too);
  then ``python -m course_lib.benchmark --only <section> --update``.
- **an exercise**: a master notebook ``solutions/NN_<name>.ipynb`` (solution code between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``), its spec (public and hidden cases, hints, questions) in
  ``course_lib/grading/authoring/specs/<name>/``, registered with the other specs; then ``make exercises``
  generates ``exercises/NN_<name>.ipynb`` and the grader tests pick it up.
"""
from __future__ import annotations

__version__ = "0.1.0"


def release_ref() -> str:
    """The git tag of this version, ``"v" + __version__`` (``make release`` creates it): the one ref that the book's
    launch buttons open and that the notebooks' install cell and the GitHub Classroom workflow install."""
    return f"v{__version__}"


def repository_url() -> str:
    """The course's source repository, ``[project.urls] Repository`` of ``pyproject.toml`` (the one setting)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("course_lib").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository":
            return url.strip()
    raise RuntimeError("course_lib is not installed with its metadata (pip install -e .); "
                       "the repository address is [project.urls] Repository in pyproject.toml")
