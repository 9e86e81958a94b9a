"""ScheduleCallback: what it applies during a real model.fit, on every deterministic family and on reduce_on_plateau."""

from __future__ import annotations


import keras
import numpy as np
import pytest

from lrsearch.errors import ConfigError
from lrsearch.schedules import schedule_from_config
from lrsearch.schedules.callback import ScheduleCallback
from lrsearch.schedules.keras_schedule import StepSchedule
from schedule_cases import EXAMPLES

BATCH, ROWS = 8, 32  # 4 steps per epoch
SPE = ROWS // BATCH


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 3)).astype("float32")
    return x, (x @ np.array([[1.0], [-2.0], [0.5]], dtype="float32") + 0.1).astype("float32")


def _model(learning_rate=0.5, seed: int = 1) -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate), loss="mse")
    return model


def _lr_now(model: keras.Model) -> float:
    if hasattr(model, "jax_state_sync"):  # JAX keeps the optimizer variables out of the model during an epoch
        model.jax_state_sync()
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


class Recorder(keras.callbacks.Callback):
    """The optimizer's LR as the next train step will use it (placed after the ScheduleCallback)."""

    def __init__(self) -> None:
        super().__init__()
        self.lrs: list[float] = []

    def on_train_batch_begin(self, batch, logs=None) -> None:
        self.lrs.append(_lr_now(self.model))


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return _model()  # reused: Keras keeps the compiled train function between fits


def _fit(model: keras.Model, cb: keras.callbacks.Callback, epochs: int, **kwargs) -> tuple[Recorder, dict]:
    rec = Recorder()
    x, y = _data()
    history = model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0, callbacks=[cb, rec],
                        **kwargs)
    return rec, history.history


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_applies_lr_per_step_during_fit(model: keras.Model, name: str) -> None:
    schedule = schedule_from_config(EXAMPLES[name])
    cb = ScheduleCallback(EXAMPLES[name])
    rec, history = _fit(model, cb, epochs=3)
    expected = schedule.lr_per_step(3, SPE)
    np.testing.assert_allclose(rec.lrs, expected, rtol=1e-6)
    assert cb.lr_per_epoch == list(expected[::SPE])
    assert history["learning_rate"] == cb.lr_per_epoch
    assert all(type(v) is float for v in cb.lr_per_epoch)


@pytest.mark.parametrize("name", ["cosine_restarts", "step_decay", "warmup_cosine"])
def test_initial_epoch_continues_the_schedule(model: keras.Model, name: str) -> None:
    schedule = schedule_from_config(EXAMPLES[name])
    cb = ScheduleCallback(schedule, steps_per_epoch=SPE)
    rec, history = _fit(model, cb, epochs=4, initial_epoch=2)
    np.testing.assert_allclose(rec.lrs, schedule.lr_per_step(4, SPE, initial_epoch=2), rtol=1e-6)
    assert cb.lr_per_epoch == [schedule.lr_at(2, 0, SPE), schedule.lr_at(3, 0, SPE)]
    assert history["learning_rate"] == cb.lr_per_epoch


def test_an_explicit_steps_per_epoch_wins_over_the_actual_one(model: keras.Model) -> None:
    schedule = schedule_from_config(EXAMPLES["one_cycle"])
    rec, _ = _fit(model, ScheduleCallback(schedule, steps_per_epoch=8), epochs=2)
    expected = [schedule.lr_at(e, b, 8) for e in range(2) for b in range(SPE)]
    np.testing.assert_allclose(rec.lrs, expected, rtol=1e-6)


def _doc(name: str, steps_per_epoch: int) -> dict:
    return {"format": "lrsearch.schedule/1", "schedule": EXAMPLES[name],
            "optimizer": {"class_name": "SGD", "config": {}},
            "training": {"epochs": 3, "batch_size": BATCH, "steps_per_epoch": steps_per_epoch}}


@pytest.mark.parametrize("name", ["one_cycle", "cosine_restarts", "warmup_cosine"])
def test_load_callback_follows_your_steps_not_the_searchs(model: keras.Model, name: str) -> None:
    """The search had 8 steps per epoch; this training has 4 (e.g. another batch size): every epoch still gets
    its own part of the schedule, and no step runs into the next epoch's."""
    import lrsearch

    schedule = schedule_from_config(EXAMPLES[name])
    rec, _ = _fit(model, lrsearch.load_callback(_doc(name, steps_per_epoch=8)), epochs=3)
    np.testing.assert_allclose(rec.lrs, schedule.lr_per_step(3, SPE), rtol=1e-6)
    rec, _ = _fit(model, lrsearch.load_callback(_doc(name, 8), steps_per_epoch=8), epochs=1)  # forced
    np.testing.assert_allclose(rec.lrs, [schedule.lr_at(0, b, 8) for b in range(SPE)], rtol=1e-6)


def test_the_documents_count_is_the_fallback_when_keras_reports_none(model: keras.Model) -> None:
    import lrsearch

    schedule = schedule_from_config(EXAMPLES["one_cycle"])
    x, y = _data()

    def batches():  # a generator: Keras knows no step count before the epoch ends
        for i in range(0, ROWS, BATCH):
            yield x[i:i + BATCH], y[i:i + BATCH]

    rec = Recorder()
    model.fit(batches(), epochs=1, verbose=0, shuffle=False,
              callbacks=[lrsearch.load_callback(_doc("one_cycle", 8)), rec])
    # (Keras begins one batch more before it finds the generator exhausted.)
    assert len(rec.lrs) >= SPE
    np.testing.assert_allclose(rec.lrs, [schedule.lr_at(0, b, 8) for b in range(len(rec.lrs))], rtol=1e-6)


def test_load_schedule_and_a_scheduled_optimizer_take_your_steps_per_epoch() -> None:
    import lrsearch

    schedule = schedule_from_config(EXAMPLES["one_cycle"])
    doc = _doc("one_cycle", steps_per_epoch=8)
    for step_schedule in (lrsearch.load_schedule(doc, steps_per_epoch=SPE),
                          lrsearch.load_optimizer(doc, scheduled=True, steps_per_epoch=SPE)._learning_rate):
        got = [float(step_schedule(step)) for step in range(3 * SPE)]
        np.testing.assert_allclose(got, schedule.lr_per_step(3, SPE), rtol=1e-5)
    with pytest.raises(ConfigError, match="steps_per_epoch applies to load_optimizer\\(..., scheduled=True\\) only"):
        lrsearch.load_optimizer(doc, steps_per_epoch=SPE)  # would be ignored without the schedule
    searchs = lrsearch.load_schedule(doc)  # the document's count by default
    np.testing.assert_allclose([float(searchs(s)) for s in range(8)], [schedule.lr_at(0, b, 8) for b in range(8)],
                               rtol=1e-5)


@pytest.mark.parametrize("name", ["cosine_restarts", "piecewise", "warmup_step_decay"])
def test_same_training_as_step_schedule(name: str) -> None:
    """The LR the callback sets is the one the update uses: same weights as with the optimizer-side schedule."""
    x, y = _data()
    a = _model(0.5, seed=3)
    a.fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0, callbacks=[ScheduleCallback(EXAMPLES[name])])
    b = _model(StepSchedule(EXAMPLES[name], SPE), seed=3)
    b.fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0)
    c = _model(0.5, seed=3)  # control: a constant LR trains differently
    c.fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0)
    for wa, wb, wc in zip(a.get_weights(), b.get_weights(), c.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-6)
        assert not np.allclose(wa, wc, rtol=1e-3)


def test_refuses_an_optimizer_with_a_schedule() -> None:
    x, y = _data()
    m = _model(StepSchedule(EXAMPLES["constant"], SPE))
    with pytest.raises(ConfigError, match=r"lrsearch.load_optimizer\(src\)"):
        m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[ScheduleCallback(EXAMPLES["cosine"])])


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        ScheduleCallback(EXAMPLES["cosine"], steps_per_epoch=0)
    with pytest.raises(ConfigError, match="unknown schedule type"):
        ScheduleCallback({"type": "nope"})


def test_verbose_prints_the_lr(model: keras.Model, capsys) -> None:
    _fit(model, ScheduleCallback(EXAMPLES["time_decay"], verbose=1), epochs=2)
    out = capsys.readouterr().out
    assert "Epoch 1: ScheduleCallback (time_decay) sets the learning rate to 0.1." in out
    assert "Epoch 2:" in out


# -- reduce_on_plateau ------------------------------------------------------------------------------------------
class FakeMetric(keras.callbacks.Callback):
    """Writes a scripted ``fake`` metric into the epoch logs (placed before the LR callback)."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None) -> None:
        logs["fake"] = self.values[epoch]


def test_plateau_matches_keras_through_fit() -> None:
    metrics = [1.0, 0.75, 0.75, 0.75, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25]
    params = dict(factor=0.5, patience=1, cooldown=2, min_delta=0.0, min_lr=0.01)
    x, y = _data()
    ours = ScheduleCallback({"type": "reduce_on_plateau", "initial_lr": 0.1, "monitor": "fake", **params})
    a = _model(0.1)
    rec = Recorder()
    h_ours = a.fit(x, y, batch_size=BATCH, epochs=len(metrics), verbose=0,
                   callbacks=[FakeMetric(metrics), ours, rec]).history
    b = _model(0.1)
    h_keras = b.fit(x, y, batch_size=BATCH, epochs=len(metrics), verbose=0,
                    callbacks=[FakeMetric(metrics),
                               keras.callbacks.ReduceLROnPlateau(monitor="fake", mode="min", **params)]
                    ).history
    np.testing.assert_allclose(h_ours["learning_rate"], h_keras["learning_rate"], rtol=1e-6)
    assert h_ours["learning_rate"] == ours.lr_per_epoch
    assert len(set(ours.lr_per_epoch)) > 2
    # the LR is constant within each epoch
    np.testing.assert_allclose(rec.lrs, np.repeat(ours.lr_per_epoch, SPE), rtol=1e-6)


def test_plateau_reraise_through_fit(model: keras.Model) -> None:
    cb = ScheduleCallback({"type": "reduce_on_plateau", "initial_lr": 0.1, "factor": 0.5, "patience": 0,
                           "monitor": "fake", "reraise_after": 2, "min_delta": 0.0})
    rec = Recorder()
    x, y = _data()
    model.fit(x, y, batch_size=BATCH, epochs=6, verbose=0, callbacks=[FakeMetric([1.0] * 6), cb, rec])
    # the first value is always an improvement; then every epoch reduces, and the second reduction re-raises
    assert cb.lr_per_epoch == pytest.approx([0.1, 0.1, 0.05, 0.1, 0.05, 0.1])
    np.testing.assert_allclose(rec.lrs, np.repeat(cb.lr_per_epoch, SPE), rtol=1e-6)


def test_plateau_holds_the_lr_on_epochs_without_the_monitored_metric_and_says_what_to_do(model: keras.Model) -> None:
    """Counted as no improvement, a missing val_loss would cut the LR every few epochs: not the schedule found."""
    import warnings

    cb = ScheduleCallback({"type": "reduce_on_plateau", "initial_lr": 0.1, "factor": 0.5, "patience": 1,
                           "monitor": "val_loss"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, history = _fit(model, cb, epochs=4)
    mine = [str(w.message) for w in caught if "lrsearch" in str(w.message)]
    assert mine == ["lrsearch: reduce_on_plateau monitors 'val_loss', which epoch 1 does not log (it logs: loss); "
                    "the LR is held until it does: pass validation_data (or validation_split) to model.fit and validate "
                    "every epoch (validation_freq=1)"]
    assert history["learning_rate"] == pytest.approx([0.1] * 4)

class StepRecorder(keras.callbacks.Callback):
    """The LR the next train step will use, by (epoch, batch) (placed after the ScheduleCallback)."""

    def __init__(self) -> None:
        super().__init__()
        self.lrs: dict[tuple[int, int], float] = {}

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch, logs=None) -> None:
        self.lrs[(self.epoch, batch)] = _lr_now(self.model)


def test_data_of_unknown_length_is_counted_in_its_first_epoch() -> None:
    """Keras reports no steps for a filtered tf.data pipeline: the first epoch uses the search's count (8) and
    holds its last LR past it, with one warning; later epochs use the 20 steps counted, never the next epoch's LR."""
    import warnings

    import lrsearch

    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(640, 3)).astype("float32")
    y = x[:, :1].copy()
    data = tf.data.Dataset.from_tensor_slices((x, y)).filter(lambda a, b: True).batch(32)  # 20 batches, unknown
    schedule = schedule_from_config(EXAMPLES["cosine"])
    model, rec = _model(0.5), StepRecorder()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(data, epochs=3, verbose=0, callbacks=[lrsearch.load_callback(_doc("cosine", 8)), rec])
    mine = [str(w.message) for w in caught if "lrsearch" in str(w.message)]
    assert len(mine) == 1 and "more than 8 steps" in mine[0] and "unknown length" in mine[0]
    first = [schedule.lr_at(0, min(b, 7), 8) for b in range(20)]
    np.testing.assert_allclose([rec.lrs[(0, b)] for b in range(20)], first, rtol=1e-6)
    for epoch in (1, 2):
        np.testing.assert_allclose([rec.lrs[(epoch, b)] for b in range(20)],
                                   [schedule.lr_at(epoch, b, 20) for b in range(20)], rtol=1e-6)
        # Keras's extra begin after the last batch (it finds the data exhausted in that step) holds the LR too
        assert rec.lrs[(epoch, 20)] == pytest.approx(schedule.lr_at(epoch, 19, 20), rel=1e-6)
    assert schedule.lr_at(1, 19, 20) > schedule.lr_at(2, 0, 20)  # so holding is not the next epoch's LR


PLATEAU = {"type": "reduce_on_plateau", "initial_lr": 0.1, "factor": 0.5, "patience": 0, "monitor": "fake",
           "min_delta": 0.0}


def test_a_resumed_plateau_run_continues_from_the_optimizers_lr() -> None:
    """fit(initial_epoch=k) with a fresh callback (a restored model) keeps the LR the run had reached, as Keras's
    ReduceLROnPlateau does, instead of going back to initial_lr."""
    x, y = _data()
    model = _model(0.1)
    model.fit(x, y, batch_size=BATCH, epochs=3, verbose=0,
              callbacks=[FakeMetric([1.0] * 6), ScheduleCallback(PLATEAU)])  # 0.1, 0.1 (first value), 0.05
    reached = _lr_now(model)
    assert reached == pytest.approx(0.025)
    resumed = ScheduleCallback(PLATEAU)
    h = model.fit(x, y, batch_size=BATCH, epochs=5, initial_epoch=3, verbose=0,
                  callbacks=[FakeMetric([1.0] * 6), resumed]).history
    assert h["learning_rate"] == pytest.approx([0.025, 0.025])  # a fresh patience: the first value improves
    fresh = ScheduleCallback(PLATEAU)  # a new run from epoch 0 starts at initial_lr whatever the optimizer holds
    h = _model(0.7).fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[FakeMetric([1.0] * 6), fresh]).history
    assert h["learning_rate"] == pytest.approx([0.1, 0.1])


def test_a_plateau_callback_reused_on_another_model_starts_afresh() -> None:
    """The state carries over to a later fit of the same model only: each new model gets the exported schedule."""
    x, y = _data()
    cb = ScheduleCallback(PLATEAU)
    runs = []
    for seed in (1, 2):
        m = _model(0.1, seed=seed)
        runs.append(m.fit(x, y, batch_size=BATCH, epochs=3, verbose=0,
                          callbacks=[FakeMetric([1.0] * 3), cb]).history["learning_rate"])
    assert runs[0] == pytest.approx([0.1, 0.1, 0.05]) and runs[1] == runs[0]
    again = m.fit(x, y, batch_size=BATCH, epochs=2, verbose=0, callbacks=[FakeMetric([1.0] * 3), cb])
    assert again.history["learning_rate"] == pytest.approx([0.025, 0.0125])  # the same model: carried over


def test_load_callback_warns_when_the_optimizer_is_not_the_one_searched() -> None:
    import warnings

    import lrsearch

    x, y = _data()
    for optimizer, warned in (("adam", True), ("sgd", False)):
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        m.compile(optimizer=optimizer, loss="mse")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, callbacks=[lrsearch.load_callback(_doc("cosine", 4))])
        mine = [str(w.message) for w in caught if "lrsearch" in str(w.message)]
        assert mine == (["lrsearch: this schedule was found with SGD, and this model trains with Adam: learning "
                         "rates do not carry over between optimizers; compile with lrsearch.load_optimizer(...) for "
                         "the optimizer it was found with"] if warned else [])
