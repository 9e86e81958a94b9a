"""KerasTuner-style model builders, with hyperparameters drawn from the Optuna trial.

``--model FILE.py:NAME`` accepts, besides the classic ``NAME(input_shape, n_outputs)`` function, a KerasTuner
``build(hp)`` function or a ``keras_tuner.HyperModel`` (class or instance). Such a builder receives an
:class:`OptunaHP`, a stand-in for ``keras_tuner.HyperParameters`` whose values come from the Optuna trial, so the
architecture is tuned together with the schedule. Every value is recorded as an Optuna parameter named
``hp.<name>`` (the prefix keeps it apart from the schedule's ``family``, ``initial_lr`` and ``<family>.<param>``).

Importing this module imports neither KerasTuner nor TensorFlow: KerasTuner is imported only to recognise a
``HyperModel`` class or instance.

Example:
    >>> import optuna
    >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
    >>> def build(hp):  # what a KerasTuner user writes (the model itself is left out here)
    ...     return {"units": hp.Int("units", 8, 32, step=8), "act": hp.Choice("act", ["relu", "tanh"])}
    >>> trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    >>> hp = OptunaHP(trial)
    >>> arch = hp_builder(build)(hp)
    >>> arch["units"] in (8, 16, 24, 32), sorted(trial.params)
    (True, ['hp.act', 'hp.units'])
    >>> hp_builder(build)(OptunaHP.fixed(trial.params)) == arch   # replay a finished trial
    True
    >>> hp_builder(build)(OptunaHP.defaults())                      # KerasTuner defaults: min_value, first choice
    {'units': 8, 'act': 'relu'}
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterator, Mapping, Sequence

from lrsearch.errors import ModelError

#: Prefix of the Optuna parameter names of model hyperparameters (``hp.units`` for ``hp.Int("units", ...)``).
PREFIX = "hp."

@dataclass(frozen=True)
class _Scope:
    parent_name: str
    parent_values: tuple[Any, ...]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class OptunaHP:
    """The part of ``keras_tuner.HyperParameters`` that build functions use, backed by an Optuna trial.

    Three modes:

    - ``OptunaHP(trial)``: every new name is suggested by ``trial`` (``suggest_int``, ``suggest_float`` or
      ``suggest_categorical``) under the Optuna name ``hp.<name>``.
    - ``OptunaHP.fixed(params)``: replays the ``hp.*`` entries of a finished trial's ``params`` (to retrain the
      best trial); a name missing from ``params`` takes its explicit ``default=`` (``Boolean`` and ``Fixed``
      always have one), else :class:`~lrsearch.errors.ModelError`.
    - ``OptunaHP.defaults()``: every name takes its KerasTuner default (explicit ``default=``, else ``min_value``
      for ``Int``/``Float``, the first value for ``Choice``); the range test builds the model this way.

    As in KerasTuner, asking for a name a second time returns the value it already has (the new arguments are
    ignored), and a name asked inside an inactive :meth:`conditional_scope` gets its default without being
    suggested or recorded. Arguments are validated in every mode, so a bad build function fails before a search.

    Args:
        trial: An Optuna trial (``optuna.Trial`` from ``study.ask()`` or an objective, or ``optuna.trial.FixedTrial``).

    Example:
        >>> import optuna
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> trial = optuna.create_study().ask()
        >>> hp = OptunaHP(trial)
        >>> units = hp.Int("units", 8, 32, step=8)
        >>> units in (8, 16, 24, 32) and hp.Int("units", 8, 32, step=8) == units
        True
        >>> "units" in hp, list(trial.params)
        (True, ['hp.units'])
    """

    def __init__(self, trial: Any) -> None:
        if trial is None or not hasattr(trial, "suggest_categorical"):
            raise ModelError(f"trial must be an Optuna trial, but got trial={trial!r}; use OptunaHP.defaults() "
                             "or OptunaHP.fixed(params) without one")
        self._setup("trial", trial, {})

    def _setup(self, mode: str, trial: Any, replay: dict[str, Any]) -> None:
        self._mode = mode
        self._trial = trial
        self._replay = replay
        self._values: dict[str, Any] = {}
        self._suggesters: dict[str, Callable[[Any, str], Any]] = {}
        self._defined: set[str] = set()
        self._scopes: list[_Scope] = []

    @classmethod
    def fixed(cls, params: Mapping[str, Any]) -> OptunaHP:
        """Replay the ``hp.*`` entries of a finished trial's ``params`` (other entries are ignored).

        Args:
            params: A trial's parameters, e.g. ``study.best_trial.params``.

        Returns:
            An ``OptunaHP`` that asks no trial.

        Example:
            >>> hp = OptunaHP.fixed({"family": "constant", "hp.units": 24})
            >>> hp.Int("units", 8, 32, step=8), hp.Float("dropout", 0.0, 0.5, default=0.25)
            (24, 0.25)
            >>> hp.values
            {'units': 24, 'dropout': 0.25}
        """
        if not isinstance(params, Mapping):
            raise ModelError(f"params must be a dict of a trial's parameters, but got params={params!r}")
        hp = cls.__new__(cls)
        hp._setup("fixed", None, {k[len(PREFIX):]: v for k, v in params.items()
                                  if isinstance(k, str) and k.startswith(PREFIX)})
        return hp

    @classmethod
    def defaults(cls) -> OptunaHP:
        """Every hyperparameter at its KerasTuner default (no trial needed; the range test builds this way).

        Example:
            >>> hp = OptunaHP.defaults()
            >>> hp.Int("units", 8, 32), hp.Float("lr", 1e-4, 1e-2, sampling="log"), hp.Choice("act", ["tanh", "relu"])
            (8, 0.0001, 'tanh')
        """
        hp = cls.__new__(cls)
        hp._setup("defaults", None, {})
        return hp

    def copy(self) -> OptunaHP:
        """A copy that keeps the current values and gives any new name its default (no trial is asked).

        KerasTuner calls this for a ``HyperModel(tunable=False)``.

        Example:
            >>> hp = OptunaHP.fixed({"hp.units": 16})
            >>> _ = hp.Int("units", 8, 32)
            >>> c = hp.copy()
            >>> c.get("units"), c.Int("layers", 1, 3)
            (16, 1)
        """
        hp = type(self).__new__(type(self))
        hp._setup("defaults", None, {})
        hp._values = dict(self._values)
        hp._suggesters = dict(self._suggesters)
        hp._defined = set(self._defined)
        return hp

    # ------------------------------------------------------------------ state

    @property
    def values(self) -> dict[str, Any]:
        """The active hyperparameters asked so far, ``name -> value`` (without the ``hp.`` prefix)."""
        return dict(self._values)

    @property
    def params(self) -> dict[str, Any]:
        """:attr:`values` under their Optuna names (``hp.<name>``), as recorded in the trial.

        Example:
            >>> hp = OptunaHP.defaults()
            >>> _ = hp.Boolean("bn")
            >>> hp.params
            {'hp.bn': False}
        """
        return {PREFIX + k: v for k, v in self._values.items()}

    def __getattr__(self, name: str) -> Any:
        # Only for names not found otherwise: a KerasTuner method this adapter does not offer, said as the user's
        # build(hp) can act on it (a bare AttributeError would name a class they never wrote).
        if name.startswith("_"):
            raise AttributeError(name)
        raise ModelError(f"build(hp) called hp.{name}, which lrsearch's hp does not offer; it offers hp.Int, "
                         "hp.Float, hp.Choice, hp.Boolean, hp.Fixed, hp.get, hp.values and hp.conditional_scope")

    def get(self, name: str) -> Any:
        """The current value of ``name``.

        Raises:
            ModelError: ``name`` was not defined yet, or only inside an inactive conditional scope.

        Example:
            >>> hp = OptunaHP.defaults()
            >>> hp.Choice("act", ["relu", "tanh"]) == hp.get("act") == hp["act"]
            True
        """
        if name in self._values:
            return self._values[name]
        if name in self._defined:
            raise ModelError(f"hyperparameter {name!r} is inactive (its conditional scope does not hold); "
                             "read it only inside that scope")
        raise ModelError(f"hyperparameter {name!r} is not defined; define it with hp.Int/Float/Choice/Boolean/Fixed "
                         "before reading it")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __repr__(self) -> str:
        """What it holds: the values asked so far and, replaying a trial, the values it will give.

        Example:
            >>> OptunaHP.fixed({"hp.layers": 3, "family": "constant"})
            OptunaHP(mode='fixed', values={}, replays={'layers': 3})
        """
        replays = f", replays={self._replay!r}" if self._mode == "fixed" else ""
        return f"OptunaHP(mode={self._mode!r}, values={self._values!r}{replays})"

    # ------------------------------------------------------------------ scopes

    def _active(self) -> bool:
        return all(s.parent_name in self._values and self._values[s.parent_name] in s.parent_values
                   for s in self._scopes)

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """Hyperparameters asked inside are active only while ``parent_name``'s value is in ``parent_values``.

        An inactive hyperparameter is neither suggested nor recorded; it returns its default. Scopes nest (all
        must hold).

        Args:
            parent_name: A hyperparameter defined before the scope.
            parent_values: One value or a list of values of the parent that activate the scope.

        Example:
            >>> hp = OptunaHP.fixed({"hp.kind": "cnn", "hp.filters": 64})
            >>> kind = hp.Choice("kind", ["mlp", "cnn"])
            >>> with hp.conditional_scope("kind", ["mlp"]):
            ...     units = hp.Int("units", 16, 64, default=32)
            >>> with hp.conditional_scope("kind", "cnn"):
            ...     filters = hp.Int("filters", 16, 64)
            >>> units, filters, hp.values
            (32, 64, {'kind': 'cnn', 'filters': 64})
        """
        if not isinstance(parent_name, str) or parent_name not in self._defined:
            raise ModelError(f"conditional_scope parent_name must be a hyperparameter defined before the scope, "
                             f"but got parent_name={parent_name!r}")
        if isinstance(parent_values, (list, tuple, set, frozenset)):
            values = tuple(parent_values)
        else:
            values = (parent_values,)
        if not values:
            raise ModelError(f"conditional_scope parent_values must be a non-empty list of values of "
                             f"{parent_name!r}, but got parent_values={parent_values!r}")
        self._scopes.append(_Scope(parent_name, values))
        try:
            yield
        finally:
            self._scopes.pop()

    # ------------------------------------------------------------------ core

    def _retrieve(self, name: str, default: Any, suggest: Callable[[Any, str], Any],
                  has_explicit_default: bool) -> Any:
        """The value of ``name``: cached, default (inactive / defaults mode), replayed or suggested."""
        if name in self._values:
            return self._values[name]
        self._defined.add(name)
        if not self._active():
            return default
        if self._mode == "defaults":
            value = default
        elif self._mode == "fixed":
            if name in self._replay:
                value = self._replay_value(name, suggest)
            elif has_explicit_default:
                value = default
            else:
                raise ModelError(f"hyperparameter {name!r} is not in the trial's (or export's) params and has no "
                                 f"default; give it default=..., or rebuild with the build function the study used")
        else:
            try:
                value = suggest(self._trial, PREFIX + name)
            except ModelError:
                raise
            except (ValueError, TypeError) as exc:
                raise ModelError(f"hyperparameter {name!r} cannot be suggested: {exc}; keep its type and choices as "
                                 f"in the study's earlier trials, or start a new study") from None
        self._values[name] = value
        self._suggesters[name] = suggest
        return value

    def _replay_value(self, name: str, suggest: Callable[[Any, str], Any]) -> Any:
        """A replayed value, checked against (and converted by) its definition, as a trial fixed to it would be."""
        import warnings

        import optuna

        key, value = PREFIX + name, self._replay[name]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # off a linear grid: kept, as Optuna keeps an enqueued value
                return suggest(optuna.trial.FixedTrial({key: value}), key)
        except (ValueError, TypeError) as exc:
            raise ModelError(f"hyperparameter {name!r}={value!r} does not fit its definition in build ({exc}); "
                             "rebuild with the build function the study used") from None

    def enqueueable_params(self) -> dict[str, Any]:
        """:attr:`params` an Optuna trial can be fixed to (``study.enqueue_trial``): a KerasTuner default off its
        own grid, e.g. ``hp.Int("units", 8, 32, step=2, sampling="log", default=12)`` (the grid is 8, 16, 32), is
        left out, to be suggested.

        Example:
            >>> hp = OptunaHP.defaults()
            >>> hp.Int("units", 8, 32, step=2, sampling="log", default=12), hp.Choice("act", ["relu", "tanh"])
            (12, 'relu')
            >>> hp.enqueueable_params()
            {'hp.act': 'relu'}
        """
        import warnings

        import optuna

        out = {}
        for name, value in self._values.items():
            key = PREFIX + name
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a value off a linear grid: Optuna warns and keeps it
                    self._suggesters[name](optuna.trial.FixedTrial({key: value}), key)
            except (ValueError, TypeError):
                continue
            out[key] = value
        return out

    @contextlib.contextmanager
    def _maybe_scope(self, parent_name: str | None, parent_values: Any) -> Iterator[None]:
        if parent_name is None:
            yield
        else:
            with self.conditional_scope(parent_name, parent_values):
                yield

    @staticmethod
    def _check_name(method: str, name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ModelError(f"hp.{method} name must be a non-empty string, but got name={name!r}")

    # ------------------------------------------------------------------ KerasTuner methods

    def Int(self, name: str, min_value: int, max_value: int, step: int | None = None, sampling: str = "linear",
            default: int | None = None, parent_name: str | None = None, parent_values: Any = None) -> int:
        """An integer in ``[min_value, max_value]`` (both included).

        ``step`` is the spacing of the values for ``sampling="linear"`` (``suggest_int(step=...)``; ``max_value`` is
        lowered onto the grid) and, as in KerasTuner, the factor between them for ``sampling="log"`` (the values
        ``min_value * step**k`` are suggested as a categorical). ``sampling="log"`` without a step is
        ``suggest_int(log=True)``. Default: ``default``, else ``min_value``.

        Example:
            >>> OptunaHP.defaults().Int("units", 16, 128, step=16, default=64)
            64
        """
        self._check_name("Int", name)
        if not _is_int(min_value):
            raise ModelError(f"hp.Int({name!r}) min_value must be an int, but got min_value={min_value!r}")
        if not _is_int(max_value) or max_value < min_value:
            raise ModelError(f"hp.Int({name!r}) max_value must be an int >= min_value={min_value}, but got "
                             f"max_value={max_value!r}")
        log = self._check_sampling("Int", name, sampling, min_value)
        if step is not None and (not _is_int(step) or step < (2 if log else 1)):
            raise ModelError(f"hp.Int({name!r}) step must be an int >= {2 if log else 1}"
                             f"{' (a factor, with sampling=log)' if log else ''}, but got step={step!r}")
        if default is not None and not (_is_int(default) and min_value <= default <= max_value):
            raise ModelError(f"hp.Int({name!r}) default must be an int in [{min_value}, {max_value}], but got "
                             f"default={default!r}")
        grid: list[int] | None = None
        high = max_value
        if log and step is not None:
            grid = []
            v = min_value
            while v <= max_value:
                grid.append(v)
                v *= step
        elif step is not None:
            high = min_value + (max_value - min_value) // step * step

        def suggest(trial: Any, key: str) -> int:
            if grid is not None:
                return int(trial.suggest_categorical(key, grid))
            return int(trial.suggest_int(key, min_value, high, step=step or 1, log=log))

        with self._maybe_scope(parent_name, parent_values):
            return self._retrieve(name, min_value if default is None else default, suggest, default is not None)

    def Float(self, name: str, min_value: float, max_value: float, step: float | None = None,
              sampling: str = "linear", default: float | None = None, parent_name: str | None = None,
              parent_values: Any = None) -> float:
        """A float in ``[min_value, max_value]``.

        ``suggest_float(log=sampling == "log")``; with ``step``: ``suggest_float(step=...)`` for linear sampling
        (``max_value`` is lowered onto the grid), or, as in KerasTuner, the values ``min_value * step**k`` as a
        categorical for log sampling. Default: ``default``, else ``min_value``.

        Example:
            >>> OptunaHP.defaults().Float("dropout", 0.0, 0.5, step=0.1, default=0.2)
            0.2
        """
        self._check_name("Float", name)
        if not _is_number(min_value):
            raise ModelError(f"hp.Float({name!r}) min_value must be a finite number, but got min_value={min_value!r}")
        if not _is_number(max_value) or max_value < min_value:
            raise ModelError(f"hp.Float({name!r}) max_value must be a finite number >= min_value={min_value}, but "
                             f"got max_value={max_value!r}")
        log = self._check_sampling("Float", name, sampling, min_value)
        if step is not None and not (_is_number(step) and step > (1 if log else 0)):
            raise ModelError(f"hp.Float({name!r}) step must be a number > {1 if log else 0}"
                             f"{' (a factor, with sampling=log)' if log else ''}, but got step={step!r}")
        if default is not None and not (_is_number(default) and min_value <= default <= max_value):
            raise ModelError(f"hp.Float({name!r}) default must be a number in [{min_value}, {max_value}], but got "
                             f"default={default!r}")
        lo, hi = float(min_value), float(max_value)
        grid: list[float] | None = None
        if log and step is not None:
            n = int(math.floor(math.log(hi / lo) / math.log(step) + 1e-9))
            grid = [lo * float(step) ** k for k in range(n + 1)]
        elif step is not None:
            d_lo, d_step = Decimal(str(lo)), Decimal(str(step))
            hi = float(d_lo + (Decimal(str(hi)) - d_lo) // d_step * d_step)

        def suggest(trial: Any, key: str) -> float:
            if grid is not None:
                return float(trial.suggest_categorical(key, grid))
            return float(trial.suggest_float(key, lo, hi, step=None if step is None else float(step), log=log))

        with self._maybe_scope(parent_name, parent_values):
            return self._retrieve(name, lo if default is None else float(default), suggest, default is not None)

    def Choice(self, name: str, values: Sequence[Any], ordered: bool | None = None, default: Any = None,
               parent_name: str | None = None, parent_values: Any = None) -> Any:
        """One of ``values`` (all strings, all numbers or all booleans): ``suggest_categorical``.

        ``ordered`` is accepted for compatibility (Optuna treats choices as unordered). Default: ``default``, else
        the first value.

        Example:
            >>> OptunaHP.defaults().Choice("act", ["relu", "tanh"], default="tanh")
            'tanh'
        """
        self._check_name("Choice", name)
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ModelError(f"hp.Choice({name!r}) values must be a non-empty list, but got values={values!r}")
        choices = list(values)
        kinds = {"bool" if isinstance(v, bool) else "str" if isinstance(v, str) else
                 "number" if _is_number(v) else "other" for v in choices}
        if len(kinds) != 1 or "other" in kinds:
            raise ModelError(f"hp.Choice({name!r}) values must be all strings, all numbers or all booleans, but got "
                             f"values={values!r}")
        if len(set(choices)) != len(choices):
            raise ModelError(f"hp.Choice({name!r}) values must be distinct, but got values={values!r}")
        if ordered is not None and not isinstance(ordered, bool):
            raise ModelError(f"hp.Choice({name!r}) ordered must be True, False or None, but got ordered={ordered!r}")
        if default is not None and default not in choices:
            raise ModelError(f"hp.Choice({name!r}) default must be one of {choices!r}, but got default={default!r}")

        def suggest(trial: Any, key: str) -> Any:
            return trial.suggest_categorical(key, choices)

        with self._maybe_scope(parent_name, parent_values):
            return self._retrieve(name, choices[0] if default is None else default, suggest, default is not None)

    def Boolean(self, name: str, default: bool = False, parent_name: str | None = None,
                parent_values: Any = None) -> bool:
        """``True`` or ``False``: ``suggest_categorical(..., [False, True])``.

        Example:
            >>> OptunaHP.defaults().Boolean("batch_norm")
            False
        """
        self._check_name("Boolean", name)
        if not isinstance(default, bool):
            raise ModelError(f"hp.Boolean({name!r}) default must be True or False, but got default={default!r}")

        def suggest(trial: Any, key: str) -> bool:
            return bool(trial.suggest_categorical(key, [False, True]))

        with self._maybe_scope(parent_name, parent_values):
            return self._retrieve(name, default, suggest, True)

    def Fixed(self, name: str, value: Any, parent_name: str | None = None, parent_values: Any = None) -> Any:
        """Always ``value`` (a string, number or boolean); recorded as a one-choice categorical.

        Example:
            >>> OptunaHP.defaults().Fixed("layers", 2)
            2
        """
        self._check_name("Fixed", name)
        if not (isinstance(value, (str, bool)) or _is_number(value)):
            raise ModelError(f"hp.Fixed({name!r}) value must be a string, number or boolean, but got value={value!r}")

        def suggest(trial: Any, key: str) -> Any:
            return trial.suggest_categorical(key, [value])

        with self._maybe_scope(parent_name, parent_values):
            return self._retrieve(name, value, suggest, True)

    @staticmethod
    def _check_sampling(method: str, name: str, sampling: Any, min_value: float) -> bool:
        if sampling is None:
            sampling = "linear"
        if not isinstance(sampling, str) or sampling.lower() not in ("linear", "log"):
            raise ModelError(f"hp.{method}({name!r}) sampling must be 'linear' or 'log', but got "
                             f"sampling={sampling!r}")
        log = sampling.lower() == "log"
        if log and not min_value > 0:
            raise ModelError(f"hp.{method}({name!r}) min_value must be > 0 with sampling='log', but got "
                             f"min_value={min_value!r}")
        return log


def overrides_fit(fn_or_obj: Any) -> bool:
    """Whether ``fn_or_obj`` is a ``keras_tuner.HyperModel`` (class or instance) with a ``fit`` of its own, which
    lrsearch does not call (it trains the model itself).

    Example:
        >>> overrides_fit(lambda hp: None)
        False
    """
    cls = fn_or_obj if isinstance(fn_or_obj, type) else type(fn_or_obj)
    if not _is_hypermodel_class(cls):
        return False
    import keras_tuner

    return getattr(cls, "fit", None) is not keras_tuner.HyperModel.fit


def _is_hypermodel_class(obj: Any) -> bool:
    try:
        import keras_tuner  # only here: recognising a HyperModel needs its class
    except ImportError:
        return False
    return isinstance(obj, type) and issubclass(obj, keras_tuner.HyperModel)


def _is_hypermodel(obj: Any) -> bool:
    try:
        import keras_tuner
    except ImportError:
        return False
    return isinstance(obj, keras_tuner.HyperModel)


def hp_builder(fn_or_obj: Any) -> Callable[[OptunaHP], Any] | None:
    """The KerasTuner-style builder in ``fn_or_obj`` as ``hp -> model``, or None for anything else.

    Recognised: a ``keras_tuner.HyperModel`` instance (its ``build(hp)`` is called), a ``HyperModel`` subclass
    (instantiated without arguments), or a callable with one required parameter (KerasTuner calls it ``hp``; any
    name but ``input_shape``, ``input_dim``, ``shape`` or ``inputs`` is accepted, as KerasTuner accepts it). A classic
    ``(input_shape, n_outputs)`` function gives None. Only ``build`` of a HyperModel is used: lrsearch trains the
    model itself, so a custom ``HyperModel.fit`` is ignored.

    Raises:
        ModelError: A HyperModel subclass that cannot be instantiated without arguments.

    Example:
        >>> def build(hp):
        ...     return hp.Int("units", 8, 32)
        >>> hp_builder(build)(OptunaHP.defaults())
        8
        >>> hp_builder(lambda input_shape, n_outputs: None) is None
        True
    """
    if isinstance(fn_or_obj, type):
        if not _is_hypermodel_class(fn_or_obj):
            return None
        try:
            instance = fn_or_obj()
        except Exception as exc:
            raise ModelError(f"HyperModel {fn_or_obj.__name__}() cannot be created without arguments "
                             f"({type(exc).__name__}: {exc}); define an instance in the file and name it instead"
                             ) from None
        return instance.build
    if not (inspect.isroutine(fn_or_obj) or isinstance(fn_or_obj, functools.partial)) \
            and _is_hypermodel(fn_or_obj):
        return fn_or_obj.build
    if not callable(fn_or_obj):
        return None
    try:
        signature = inspect.signature(fn_or_obj)
    except (TypeError, ValueError):
        return None
    required = [p for p in signature.parameters.values()
                if p.default is inspect.Parameter.empty
                and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    if len(required) != 1 or required[0].name in ("input_shape", "input_dim", "shape", "inputs"):
        return None  # a classic function whose n_outputs has a default
    fn = fn_or_obj
    if required[0].kind is inspect.Parameter.KEYWORD_ONLY:
        return lambda hp: fn(hp=hp)
    return lambda hp: fn(hp)
