"""Population mode in the search (JAX backend): trials asked in batches, trained together, each still its own
Optuna trial with its intermediate values, pruning and user attrs. Run with KERAS_BACKEND=jax (CI does)."""

from __future__ import annotations

import keras
import optuna
import pytest

if keras.backend.backend() != "jax":
    pytest.skip("population mode runs on the JAX backend (KERAS_BACKEND=jax)", allow_module_level=True)


def test_find_with_a_population_keeps_every_trial_separate(workdir):
    from lrsearch.pipeline import find

    r = find("ionosphere", trials=11, epochs=10, population=4, quiet=True, top_k=2, seeds=2)
    assert "population" not in " ".join(r.notes)
    study = optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 11 and "RUNNING" not in states
    assert study.trials[0].params == {"family": "constant", "initial_lr": 0.001}  # warm start still first
    for t in study.trials:
        assert t.user_attrs["schedule"]["format"] == "lrsearch.schedule/1"
        if t.state.name == "COMPLETE":
            assert len(t.intermediate_values) == 10 == len(t.user_attrs["lr_per_epoch"])
            assert t.value == pytest.approx(t.intermediate_values[9])
        else:
            assert t.user_attrs.get("prune_reason")
    assert r.files["schedule"]


def test_a_population_member_matches_the_same_trial_trained_alone(workdir):
    """Same schedule, same seed: the population's trial value equals one-at-a-time training."""
    from lrsearch.pipeline import find

    one = find("ionosphere", trials=3, epochs=6, population=1, quiet=True, study="one", top_k=1, seeds=1,
               schedules="constant,cosine")
    many = find("ionosphere", trials=3, epochs=6, population=3, quiet=True, study="many", top_k=1, seeds=1,
                schedules="constant,cosine")
    a = optuna.load_study(study_name="one", storage="sqlite:///studies/one.db").trials
    b = optuna.load_study(study_name="many", storage="sqlite:///studies/many.db").trials
    # The two warm-start trials are the same schedules in both studies.
    for x, y in zip(a[:2], b[:2]):
        assert x.params == y.params
        assert x.value == pytest.approx(y.value, rel=1e-4)
    assert one.trials["complete"] + one.trials["pruned"] == many.trials["complete"] + many.trials["pruned"] == 3
