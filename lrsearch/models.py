"""Models stage: turn ``--model`` into a factory ``seed -> uncompiled keras.Model`` and define each task's loss.

Specs:
- ``None`` / ``"default"``: an MLP with one hidden Dense layer of ``n_features`` units (relu) for tables, the classic
  small CNN (Conv2D 16/32/64, 3×3, relu, 2×2 max pooling, flatten) for images, plus the task's head.
- ``FILE.py:FUNCTION``: the user's ``FUNCTION(input_shape, n_outputs) -> keras.Model``.
- ``FILE.py:NAME`` *tunable*: a KerasTuner-style ``build(hp)`` function or a ``keras_tuner.HyperModel`` (class or
  instance) named ``NAME``; see :mod:`lrsearch.tuner`. ``make_trial_factory(spec, ...)(OptunaHP(trial))`` builds
  with the trial's hyperparameters (recorded as ``hp.<name>`` params); ``make_factory`` builds with every
  hyperparameter at its default (what the range test, run before any trial, uses).
- ``FILE.keras``: a saved model, whose architecture is reused with fresh weights for every trial.
"""

from __future__ import annotations

import importlib.util
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lrsearch.errors import ModelError, first_line

ModelFactory = Callable[[int], Any]
TrialFactory = Callable[[Any], ModelFactory]  # OptunaHP -> (seed -> model)


@dataclass(frozen=True)
class ModelSpec:
    """Where the model comes from; ``describe()`` is what the study records."""

    kind: str  # "default" | "python" | "keras_file"
    path: str | None = None
    function: str | None = None

    def describe(self) -> str:
        if self.kind == "default":
            return "default"
        if self.kind == "python":
            return f"{self.path}:{self.function}"
        return str(self.path)


def model_sha256(spec: ModelSpec) -> str | None:
    """SHA-256 of the model's file and the modules beside it that it imports (``None`` for the default model): a
    study refuses to resume with an edited one.

    A file that imports no module of its folder hashes as its bytes alone, as before helpers were counted.

    Example:
        >>> model_sha256(parse_model_spec("default")) is None
        True
    """
    if spec.path is None:
        return None
    reading = str(spec.path)
    try:
        digest = hashlib.sha256(Path(spec.path).read_bytes())
        folder = Path(spec.path).resolve().parent
        for helper in _local_imports(Path(spec.path)) if Path(spec.path).suffix == ".py" else []:
            reading = str(helper)
            # posix: one study's hash on Windows and on Linux alike
            digest.update(b"\0" + helper.relative_to(folder).as_posix().encode() + b"\0" + helper.read_bytes())
    except OSError as exc:
        which = (f"model file {spec.path!r}" if reading == str(spec.path)
                 else f"module {reading!r} (model file {spec.path!r} imports it)")
        raise ModelError(f"cannot read {which}: {exc.strerror or exc}; check the path") from None
    return digest.hexdigest()


def _local_imports(path: Path) -> list[Path]:
    """The ``.py`` files of ``path``'s folder that it imports, directly or through each other (a package: all of
    its files), sorted; read from the source, without running it."""
    import ast

    folder = path.resolve().parent
    found: set[Path] = set()
    todo = [path.resolve()]
    while todo:
        try:
            tree = ast.parse(todo.pop().read_bytes())
        except (SyntaxError, ValueError):  # importing it reports that, with its line
            continue
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level <= 1:
                if node.module:
                    names.add(node.module.split(".")[0])
                elif node.level == 1:  # from . import helper
                    names.update(alias.name for alias in node.names)
        for name in sorted(names):
            module, package = folder / f"{name}.py", folder / name
            files = [module] if module.is_file() else sorted(package.rglob("*.py")) if package.is_dir() else []
            for file in files:
                if file not in found:
                    found.add(file)
                    todo.append(file)
    found.discard(path.resolve())
    return sorted(found)


def parse_model_spec(spec: str | None) -> ModelSpec:
    """Parse ``--model``.

    Example:
        >>> parse_model_spec(None)
        ModelSpec(kind='default', path=None, function=None)
    """
    if spec is None or spec == "default":
        return ModelSpec("default")
    if spec.endswith(".keras"):
        if not Path(spec).is_file():
            raise ModelError(f"model file {spec!r} not found; give a saved .keras model or FILE.py:FUNCTION")
        return ModelSpec("keras_file", spec)
    path, sep, function = spec.rpartition(":")
    if not sep or not path.endswith(".py") or not function.isidentifier():
        raise ModelError(
            f"--model must be 'default', FILE.keras or FILE.py:FUNCTION, but got --model={spec!r}"
        )
    if not Path(path).is_file():
        raise ModelError(f"model file {path!r} not found; give FILE.py:FUNCTION with an existing file")
    return ModelSpec("python", path, function)


def task_loss(task: str, from_logits: bool = False) -> Any:
    """The Keras loss object lrsearch compiles with for ``task``."""
    import keras

    if task == "binary":
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    if task == "multiclass":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    return keras.losses.MeanSquaredError()


def loss_description(task: str, from_logits: bool = False) -> dict[str, Any]:
    """How :func:`task_loss` is named in an export's provenance, for the user's own ``model.compile``.

    Example:
        >>> loss_description("binary", from_logits=True)
        {'loss': 'binary_crossentropy', 'from_logits': True}
        >>> loss_description("regression")
        {'loss': 'mean_squared_error'}
    """
    if task == "regression":
        return {"loss": "mean_squared_error"}
    name = "binary_crossentropy" if task == "binary" else "sparse_categorical_crossentropy"
    return {"loss": name, "from_logits": bool(from_logits)}


def task_metric(task: str) -> str:
    """Name of the score reported for ``task`` (higher is better for accuracy, lower for mae)."""
    return "mae" if task == "regression" else "accuracy"


def outputs_logits(model: Any, input_shape: tuple[int, ...] | None = None) -> bool:
    """True when the model outputs logits (no sigmoid or softmax at its end), so the loss needs ``from_logits``.

    Read from the operation that computes the output: the output layer's activation, or a ``keras.ops.sigmoid`` /
    ``softmax`` applied to it (a head sub-model is looked into). A subclassed model has no graph to read (its
    ``layers`` are in the order they were assigned, not called), so with ``input_shape`` its outputs on a random
    batch decide: probabilities lie strictly between 0 and 1 (and sum to 1 over classes); logits of an untrained
    head do not. Without ``input_shape`` the last layer listed decides.

    Args:
        model: A built Keras model.
        input_shape: The shape of one input, for the probe of a model without a graph.

    Returns:
        Whether the loss must be computed ``from_logits``.

    Example:
        >>> import keras
        >>> head = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        >>> outputs_logits(keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), head]))
        True
        >>> x = keras.Input((4,))
        >>> outputs_logits(keras.Model(x, keras.ops.sigmoid(keras.layers.Dense(1)(x))))
        False
    """
    said = _says_logits(_output_operation(model))
    if said is not None:
        return said
    if input_shape is not None:
        return _probe_logits(model, input_shape)
    last = model
    while getattr(last, "layers", None):  # a model (or a nested one): its last layer
        last = last.layers[-1]
    return _says_logits(None if last is model else last) is True


def _output_operation(model: Any) -> Any:
    """The operation (layer or ``keras.ops`` call) that computes a graph model's one output; None without a graph."""
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):  # a subclassed model: no symbolic outputs
        return None
    if not isinstance(outputs, (list, tuple)) or len(outputs) != 1:
        return None
    op = getattr(getattr(outputs[0], "_keras_history", None), "operation", None)
    if op is not None and op is not model and getattr(op, "layers", None) is not None:  # a head sub-model
        return _output_operation(op) or op
    return op


def _says_logits(op: Any) -> bool | None:
    """Whether ``op``'s output is logits, or None when ``op`` does not say (no activation of its own)."""
    if op is None:
        return None
    if type(op).__name__ in ("Sigmoid", "Softmax"):  # keras.ops.sigmoid / softmax in a functional model
        return False
    activation = getattr(op, "activation", None)
    if activation is None:
        return None
    return getattr(activation, "__name__", "") == "linear"


def _says_softmax(model: Any, input_shape: tuple[int, ...]) -> bool:
    """Whether the model's output comes from a softmax: its graph says so, or (no graph) the output is exactly 1 for
    every row of a random batch, as a softmax over one unit always is (``exp`` of zero inputs is 1 too: not zeros)."""
    import numpy as np

    op = _output_operation(model)
    if op is not None:
        return type(op).__name__ == "Softmax" or getattr(getattr(op, "activation", None), "__name__", "") == "softmax"
    out = _random_outputs(model, input_shape)
    return out is not None and bool(np.all(out == 1.0))


#: Output activations whose values lie in a bounded range: (low, high).
_BOUNDED = {"sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0), "tanh": (-1.0, 1.0), "hard_sigmoid": (0.0, 1.0)}


def check_target_range(build: Callable[[], Any], label: str, task: str, y: Any, target: str) -> None:
    """Refuse a regression model whose output activation cannot reach the target's values (a sigmoid for a target
    of 25..346 trains every trial to the same huge loss, and the range test then suggests nonsense).

    ``build()`` makes the model; it is called for regression only (a build can cost seconds).

    Raises:
        ModelError: the model ends in a bounded activation and the training target lies outside its range.

    Example:
        >>> import keras, numpy as np
        >>> m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
        >>> check_target_range(lambda: m, "m", "regression", np.array([0.2, 0.7]), "y")  # within (0, 1): fine
    """
    import numpy as np

    if task != "regression":
        return
    op = _output_operation(build())
    name = type(op).__name__.lower() if op is not None else ""
    name = getattr(getattr(op, "activation", None), "__name__", "") or name
    if name not in _BOUNDED or np.size(y) == 0:
        return
    low, high = _BOUNDED[name]
    y_min, y_max = float(np.min(y)), float(np.max(y))
    if y_min < low or y_max > high:
        raise ModelError(f"model {label} ends in a {name}, whose outputs lie in [{low:g}, {high:g}], but target "
                         f"{target!r} ranges from {y_min:.4g} to {y_max:.4g}, which it cannot reach; end the model "
                         "with no activation (linear) for regression")


def user_compiled(model: Any) -> bool:
    """Whether the user's model came compiled (its optimizer, loss and metrics are replaced by lrsearch's).

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        >>> user_compiled(model), (model.compile(loss="mse"), user_compiled(model))[1]
        (False, True)
    """
    return bool(getattr(model, "compiled", False))


def _random_outputs(model: Any, input_shape: tuple[int, ...]) -> Any:
    """The model's outputs on a fixed random batch of 64 rows, as float64 (64, units); None when it cannot run."""
    import numpy as np

    x = np.random.default_rng(0).normal(size=(64, *input_shape)).astype("float32")
    try:
        return np.asarray(model(x, training=False), dtype="float64").reshape(64, -1)
    except Exception:  # the caller's own checks report a model that cannot run
        return None


def _probe_logits(model: Any, input_shape: tuple[int, ...]) -> bool:
    import numpy as np

    out = _random_outputs(model, input_shape)
    if out is None:
        return False
    probabilities = bool(np.all((out > 0) & (out < 1)))
    if out.shape[1] > 1:
        probabilities = probabilities and bool(np.allclose(out.sum(axis=1), 1.0, atol=1e-3))
    return not probabilities


def default_model(input_shape: tuple[int, ...], n_outputs: int, task: str) -> Any:
    """The default model for a data shape and task (uncompiled).

    Images (height, width, channels) get a Conv16/32/64 network with 2x2 max pooling after each convolution
    while the image is 2 pixels or more across; other shapes a hidden Dense layer as wide as the features (at
    most 256), after a Flatten for shapes of more than one axis.

    Example:
        >>> m = default_model((34,), 1, "binary")
        >>> [layer.units for layer in m.layers]
        [34, 1]
        >>> default_model((8, 8, 1), 10, "multiclass").output_shape
        (None, 10)
    """
    import keras
    from keras import layers

    head = {"binary": "sigmoid", "multiclass": "softmax"}.get(task, "linear")
    if len(input_shape) == 3:  # images: the classic Conv16/32/64 network, pooling only while there is room
        side = min(int(input_shape[0]), int(input_shape[1]))
        body = [layers.Conv2D(16, 3, activation="relu", padding="valid" if side >= 3 else "same")]
        side = side - 2 if side >= 3 else side
        for i, filters in enumerate((32, 64)):
            if side >= 2:  # a 2x2 pool of a 1-pixel image has no output (8x8 digits reach 1 pixel)
                body.append(layers.MaxPooling2D(2))
                side //= 2
            body.append(layers.Conv2D(filters, 3, activation="relu", padding="same"))
        if side >= 2:
            body.append(layers.MaxPooling2D(2))
        body.append(layers.Flatten())
    else:  # a row of features (or any other shape, flattened)
        width = int(max(1, min(256, math.prod(input_shape))))
        body = ([] if len(input_shape) == 1 else [layers.Flatten()]) + [layers.Dense(width, activation="relu")]
    return keras.Sequential([keras.Input(input_shape), *body, layers.Dense(n_outputs, activation=head)],
                            name="lrsearch_default")


def _load_user_function(spec: ModelSpec) -> Any:
    """The object named ``spec.function`` in ``spec.path``: a function, or a KerasTuner HyperModel class/instance."""
    name = "lrsearch_user_model_" + hashlib.sha1(str(Path(spec.path).resolve()).encode()).hexdigest()[:8]
    module_spec = importlib.util.spec_from_file_location(name, spec.path)
    if module_spec is None or module_spec.loader is None:
        raise ModelError(f"cannot import {spec.path!r}; is it a Python file?")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: any error is theirs to fix
        raise ModelError(f"importing {spec.path!r} failed: {type(exc).__name__}: {first_line(exc)}") from None
    fn = getattr(module, spec.function, None)
    if fn is None:
        raise ModelError(f"{spec.path!r} has no function or KerasTuner HyperModel named {spec.function!r}")
    import keras

    if isinstance(fn, keras.Model):  # one model object: every trial must start from fresh weights of its own
        raise ModelError(f"{spec.path}:{spec.function} is a keras.Model object; name a function that builds it "
                         "(def make(input_shape, n_outputs): return ...), or save it with model.save('m.keras') "
                         "and pass --model m.keras")
    if not (callable(fn) or callable(getattr(fn, "build", None))):
        raise ModelError(f"{spec.path}:{spec.function} is a value of type {type(fn).__name__}, not a function or "
                         "KerasTuner HyperModel; name the function that builds the model")
    return fn


def _hp_builder(spec: ModelSpec) -> tuple[Any, Callable[[Any], Any] | None]:
    from lrsearch.tuner import hp_builder

    obj = _load_user_function(spec)
    return obj, hp_builder(obj)


def is_tunable(spec: ModelSpec) -> bool:
    """True when ``spec`` names a KerasTuner-style ``build(hp)`` function or ``HyperModel`` (imports the file).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "m.py")
        >>> with open(path, "w") as f:
        ...     _ = f.write("def build(hp):\\n    pass\\ndef classic(input_shape, n_outputs):\\n    pass\\n")
        >>> is_tunable(parse_model_spec(path + ":build")), is_tunable(parse_model_spec(path + ":classic"))
        (True, False)
    """
    if spec.kind != "python":
        return False
    return _hp_builder(spec)[1] is not None


def _build_with(builder: Callable[[Any], Any], hp: Any, spec: ModelSpec) -> Any:
    import keras

    from lrsearch.errors import LrSearchError

    try:
        model = builder(hp)
    except LrSearchError:
        raise  # e.g. a bad hp.Int(...) call: its message already says what to fix
    except Exception as exc:
        values = ", ".join(f"{k}={v!r}" for k, v in getattr(hp, "values", {}).items())
        raise ModelError(f"{spec.describe()}{f' (hp {values})' if values else ''} raised {type(exc).__name__}: "
                         f"{first_line(exc)}") from None
    if not isinstance(model, keras.Model):
        raise ModelError(f"{spec.describe()} must return a keras.Model, but returned {type(model).__name__}")
    return model


def _seeded(build: Callable[[], Any], input_shape: tuple[int, ...]) -> ModelFactory:
    import keras
    import numpy as np

    def factory(seed: int) -> Any:
        keras.utils.set_random_seed(int(seed))
        model = build()
        if not model.built:  # a subclassed model makes its weights at its first call: every caller needs them
            try:
                model(np.zeros((1, *input_shape), dtype="float32"))
            except Exception:
                pass  # _check_shapes reports it, with the model's name
        return model

    return factory


def make_factory(spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int, task: str) -> ModelFactory:
    """A function ``seed -> uncompiled keras.Model`` whose initial weights depend only on ``seed``.

    The factory is checked once here (a bad model fails before any search starts). For a tunable spec (see
    :func:`is_tunable`) the model is built with every hyperparameter at its default (``OptunaHP.defaults()``); use
    :func:`make_trial_factory` to build with a trial's hyperparameters.
    """
    import keras

    if spec.kind == "default":
        def build() -> Any:
            return default_model(input_shape, n_outputs, task)
    elif spec.kind == "python":
        fn, builder = _hp_builder(spec)
        if builder is not None:
            from lrsearch.tuner import OptunaHP

            def build() -> Any:
                return _build_with(builder, OptunaHP.defaults(), spec)
        else:
            def build() -> Any:
                try:
                    model = fn(input_shape, n_outputs)
                except Exception as exc:
                    raise ModelError(f"{spec.describe()} raised {type(exc).__name__}: {first_line(exc)}") from None
                if not isinstance(model, keras.Model):
                    raise ModelError(
                        f"{spec.describe()} must return a keras.Model, but returned {type(model).__name__}")
                return model
    else:
        import zipfile

        if str(spec.path).endswith(".keras") and Path(spec.path).is_file() and not zipfile.is_zipfile(spec.path):
            raise ModelError(f"cannot load {spec.path!r}: it is not a saved Keras model (a .keras file is a zip "
                             "archive, as model.save('m.keras') writes it); save the model again")
        try:
            template = keras.models.load_model(spec.path, compile=False, safe_mode=True)
        except Exception as exc:
            if "safe_mode" in str(exc):  # a Lambda layer: its code would run while loading, which lrsearch refuses
                raise ModelError(f"cannot load {spec.path!r}: it holds a Lambda layer (Python code that Keras runs "
                                 "only with safe_mode=False, which lrsearch never sets); give the model as "
                                 "FILE.py:FUNCTION that builds it instead") from None
            raise ModelError(f"cannot load {spec.path!r}: {type(exc).__name__}: {first_line(exc)}") from None

        def build() -> Any:
            return keras.models.clone_model(template)  # same architecture, freshly initialised weights

    factory = _seeded(build, input_shape)
    model = factory(0)
    _check_shapes(model, spec, input_shape, n_outputs, task=task)
    factory.user_compiled = user_compiled(model)  # type: ignore[attr-defined]
    return factory


def make_trial_factory(spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int,
                       task: str) -> TrialFactory:
    """A function ``hp -> factory``: the model factory (``seed -> uncompiled keras.Model``) for hyperparameters ``hp``.

    ``hp`` is an :class:`lrsearch.tuner.OptunaHP`: ``OptunaHP(trial)`` during a search (the build asks the trial,
    which records ``hp.<name>`` params), ``OptunaHP.fixed(best.params)`` to rebuild the best trial. Calling
    ``make_trial_factory(...)(hp)`` builds once (seed 0) to draw the hyperparameters and checks the model's input
    and output shapes against the data as :func:`make_factory` does, raising :class:`ModelError` naming the values
    on a mismatch; the returned factory rebuilds with the same values for any seed. For a spec that is not tunable,
    ``hp`` is ignored and every call returns the one :func:`make_factory` factory, so callers need no branch.

    Example:
        >>> import os, tempfile, optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> path = os.path.join(tempfile.mkdtemp(), "m.py")
        >>> with open(path, "w") as f:
        ...     _ = f.write(
        ...         "import keras\\n"
        ...         "def build(hp):\\n"
        ...         "    units = hp.Int('units', 8, 32, step=8)\\n"
        ...         "    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(units),\\n"
        ...         "                             keras.layers.Dense(1, activation='sigmoid')])\\n")
        >>> from lrsearch.tuner import OptunaHP
        >>> for_hp = make_trial_factory(parse_model_spec(path + ":build"), (4,), 1, "binary")
        >>> trial = optuna.create_study().ask()
        >>> model = for_hp(OptunaHP(trial))(seed=1)
        >>> model.layers[0].units == trial.params["hp.units"]
        True
        >>> for_hp(OptunaHP.fixed({"hp.units": 24}))(0).layers[0].units
        24
    """
    if spec.kind != "python":
        factory = make_factory(spec, input_shape, n_outputs, task)
        return lambda hp: factory
    fn, builder = _hp_builder(spec)
    if builder is None:
        factory = make_factory(spec, input_shape, n_outputs, task)
        return lambda hp: factory

    def for_hp(hp: Any) -> ModelFactory:
        factory = _seeded(lambda: _build_with(builder, hp, spec), input_shape)
        model = factory(0)  # draws the values; later builds get the same ones (repeated names keep their value)
        values = ", ".join(f"{k}={v!r}" for k, v in hp.values.items())
        _check_shapes(model, spec, input_shape, n_outputs, label=f"{spec.describe()} (hp {values or 'none'})",
                      task=task)
        return factory

    from lrsearch.tuner import overrides_fit

    for_hp.overrides_fit = overrides_fit(fn)  # type: ignore[attr-defined]  # said once, by find
    return for_hp


def _check_shapes(model: Any, spec: ModelSpec, input_shape: tuple[int, ...], n_outputs: int,
                  label: str | None = None, task: str | None = None) -> None:
    import numpy as np

    label = label or spec.describe()

    try:
        out = model(np.zeros((2, *input_shape), dtype="float32"))
    except Exception as exc:
        detail = first_line(exc)
        if "[[" in detail:  # Keras quotes the whole input array after "for input": its first line is noise
            detail = detail.split("[[")[0].rstrip(" :,")
        expects = ""
        try:
            shape = model.input_shape  # a model with an Input knows what it expects
        except Exception:  # a subclassed model that was never built: nothing to say
            shape = None
        if isinstance(shape, tuple) and shape and all(d is None or isinstance(d, int) for d in shape):
            expects = f"; it expects (batch, {', '.join(map(str, shape[1:]))})"
        raise ModelError(
            f"model {label} does not accept inputs of shape (batch, {', '.join(map(str, input_shape))}){expects}: "
            f"{type(exc).__name__}: {detail}"
        ) from None
    if isinstance(out, (list, tuple, dict)):
        raise ModelError(f"model {label} has {len(out)} outputs; lrsearch trains a model with one output, for the "
                         "target: return a model with that output alone")
    if n_outputs == 1 and tuple(out.shape[1:]) == (1,) and _says_softmax(model, input_shape):
        raise ModelError(f"model {label} ends in a softmax over 1 unit, which always outputs 1: nothing can be "
                         "learnt; use a sigmoid (binary) or no activation (regression)")
    if tuple(out.shape[1:]) != (n_outputs,):
        raise ModelError(
            f"model {label} outputs shape {tuple(out.shape[1:])} per example, but the task needs "
            f"({n_outputs},); change its last layer"
            + ("; or, for two classes, give --task multiclass (a 2-unit softmax)"
               if task == "binary" and tuple(out.shape[1:]) == (2,) else "")
        )
