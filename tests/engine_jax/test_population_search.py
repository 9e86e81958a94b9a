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


def test_a_population_searches_optimizers_each_trial_with_its_own(workdir):
    """--optimizers in population mode: each trial trains with the optimizer it was given (grouped by program),
    its document names that optimizer, and its value equals the same trial trained alone."""
    from lrsearch.pipeline import find
    from lrsearch.space import suggest_optimizer

    kwargs = dict(trials=8, epochs=6, quiet=True, top_k=1, seeds=1, optimizers="sgd,adam",
                  schedules="constant,cosine")
    many = find("ionosphere", population=8, study="many", **kwargs)
    assert "population" not in " ".join(many.notes)
    trials = optuna.load_study(study_name="many", storage="sqlite:///studies/many.db").trials
    assert len(trials) == 8 and {t.params["optimizer"] for t in trials} == {"sgd", "adam"}
    for t in trials:
        spec = suggest_optimizer(optuna.trial.FixedTrial(t.params), ["sgd", "adam"])
        assert t.user_attrs["schedule"]["optimizer"] == spec, t.number
    # The same trials one at a time (the same study seed asks the same warm-start trials first).
    one = find("ionosphere", population=1, study="one", **kwargs)
    alone = optuna.load_study(study_name="one", storage="sqlite:///studies/one.db").trials
    warm = [t for t in trials if t.user_attrs.get("warm_start")]
    assert len(warm) >= 3 and {t.params["optimizer"] for t in warm} == {"sgd", "adam"}
    for x in warm:
        y = next(t for t in alone if t.number == x.number)
        assert x.params == y.params
        assert x.value == pytest.approx(y.value, rel=1e-4), x.number
    assert one.trials["complete"] + one.trials["pruned"] == 8


def test_reselection_in_a_population_ranks_as_one_by_one(workdir):
    """Reselection trains every candidate at once per split in population mode; the ranking is the same."""
    from lrsearch.pipeline import find

    kwargs = dict(trials=7, epochs=6, quiet=True, top_k=2, seeds=3, optimizers="sgd,adam",
                  schedules="constant,cosine,step_decay")
    one = find("ionosphere", population=1, study="one", **kwargs)
    many = find("ionosphere", population=4, study="many", **kwargs)
    rows = {}
    for name in ("one", "many"):
        rows[name] = optuna.load_study(study_name=name, storage=f"sqlite:///studies/{name}.db"
                                       ).user_attrs["reselection"]
    assert len(rows["one"]) >= 4 and [r["trial"] for r in rows["one"]] == [r["trial"] for r in rows["many"]]
    for a, b in zip(rows["one"], rows["many"]):
        assert len(a["val_loss"]) == 3
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)
        assert b["val_accuracy"] == pytest.approx(a["val_accuracy"], abs=1e-6)
    assert one.best_trial == many.best_trial


def test_the_trainings_after_a_population_search_are_counted(workdir):
    import io
    import re

    from lrsearch.pipeline import find

    said = io.StringIO()
    find("ionosphere", trials=4, epochs=3, population=2, top_k=2, seeds=2, artifacts="none", stream=said, live=True)
    out = said.getvalue()
    total = int(re.search(r"\(up to (\d+) trainings\)", out)[1])
    assert "pace" not in out  # a population's trials overlap: no estimate from their durations
    study = optuna.load_study(study_name="ionosphere", storage="sqlite:///studies/ionosphere.db")
    ranking = study.user_attrs["reselection"]
    winner_is_classic = next(t for t in study.trials if t.number == ranking[0]["trial"]).user_attrs.get("warm_start")
    done = total - 1 if winner_is_classic else total
    assert re.search(rf"\rre-scoring: \[#{{24}}\] {done}/{done} trainings", out), out


def test_population_mode_is_said_only_when_trials_will_train(workdir):
    import io

    from lrsearch.pipeline import find

    first, again = io.StringIO(), io.StringIO()
    find("ionosphere", trials=2, epochs=2, population=2, top_k=1, seeds=1, artifacts="none", stream=first, live=False)
    find("ionosphere", trials=2, epochs=2, population=2, top_k=1, seeds=1, artifacts="none", stream=again, live=False)
    assert "population mode: 2 trials trained at once" in first.getvalue()
    said = again.getvalue()
    assert "nothing to run" in said and "population mode" not in said, said
