"""``lrsearch report``: one self-contained HTML page (plus its PNGs) that sums up a study.

:func:`write_report` opens an existing study read-only, reads what the search stored on it (see
:mod:`lrsearch.search`: the ``range_test``, ``lrsearch`` and ``best_schedule`` study attrs; each trial's ``family``,
``schedule``, ``lr_per_epoch``, ``history`` and intermediate values) and writes, into ``report/`` in the study's
folder by default (``studies/<study>/report/``; for another storage, beside its file: :func:`lrsearch.search.study_folder`):

``range_test.png``
    the range-test curve with the suggested LR and the spread of the repeats' suggestions;
``lr_curves.png`` / ``val_curves.png``
    LR per epoch and validation curves of the best complete trials (same colour per trial in both);
``history.png``
    final validation loss of every trial in order, the best so far, pruned and failed trials marked;
``importance.png``
    parameter importance (:func:`optuna.importance.get_param_importances`) on the parameters all complete trials
    share, and within the best trial's family when it has enough trials; skipped, with a note, when it cannot
    be computed;
``families.png``
    final validation loss by schedule family;
``report.html``
    all of the above embedded as ``data:`` URIs (the page has no external reference: it can be mailed or archived
    as one file), with the study's settings, the best schedule and a table of the top trials.

Only numpy, matplotlib and optuna are used (no Keras): a report can be made on a machine without TensorFlow.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from lrsearch import plotstyle
from lrsearch.errors import LrSearchError
from lrsearch.folders import make_folder

#: The PNGs a report can contain, in page order.
PLOTS = ("range_test", "lr_curves", "val_curves", "history", "importance", "families")
#: Trials overlaid in lr_curves/val_curves, and rows of the top-trials table.
TOP_CURVES = 5
TOP_TABLE = 10
#: Importance needs some spread of outcomes to say anything; below this it is skipped.
MIN_IMPORTANCE_TRIALS = 3
#: Within-family importance is computed only when the best family has at least this many complete trials.
MIN_FAMILY_TRIALS = 4


@dataclass
class ReportResult:
    """What :func:`write_report` wrote.

    Attributes:
        html: the self-contained ``report.html``.
        files: plot name (see :data:`PLOTS`) -> PNG written; a plot that could not be drawn is absent.
        study: the study's name.
        notes: why a plot was skipped, and other remarks (also shown in the page).
    """

    html: Path
    files: dict[str, Path]
    study: str
    notes: list[str] = field(default_factory=list)


class _Skip(Exception):
    """A plot that cannot be drawn from what the study holds; the message goes to the notes."""


# ----------------------------------------------------------------------------------------------------------------
# reading the study


@dataclass
class _Trial:
    """The parts of one Optuna trial the report uses (plain data: plots draw these, nothing else)."""

    number: int
    state: str  # "complete", "pruned", "failed", "running", "waiting"
    value: float | None  # final val_loss (complete) or last reported one (pruned)
    family: str  # e.g. "cosine+warmup"
    base_family: str  # e.g. "cosine" (the ``family`` parameter)
    params: dict[str, Any]
    lr_per_epoch: list[float]
    val_loss: list[float]  # per epoch: history's val_loss, else the intermediate values
    history: dict[str, list[float]]
    prune_reason: str | None
    frozen: Any  # the optuna FrozenTrial (for importance)


def _floats(values: Any) -> list[float]:
    if values is None:
        return []
    if isinstance(values, dict):
        values = [values[k] for k in sorted(values)]
    return [float("nan") if v is None else float(v) for v in values]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _trial(t: Any) -> _Trial:
    ua = t.user_attrs
    history = {k: _floats(v) for k, v in (ua.get("history") or {}).items()}
    val_loss = history.get("val_loss") or _floats(t.intermediate_values)
    state = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}.get(t.state.name, t.state.name.lower())
    values = t.values or []  # t.value raises on a multi-objective study; lrsearch's studies have one objective
    value = values[0] if len(values) == 1 and _finite(values[0]) else None
    if state == "pruned" and value is None:
        value = next((v for v in reversed(val_loss) if math.isfinite(v)), None)
    family = str(ua.get("family") or t.params.get("family") or "unknown")
    return _Trial(number=t.number, state=state, value=value, family=family,
                  base_family=str(t.params.get("family") or family.split("+")[0]), params=dict(t.params),
                  lr_per_epoch=_floats(ua.get("lr_per_epoch")), val_loss=val_loss, history=history,
                  prune_reason=ua.get("prune_reason"), frozen=t)


def _metric_name(trials: Iterable[_Trial], best_doc: dict[str, Any] | None) -> str | None:
    """The validation score of the study (``val_accuracy``, ``val_mae``): from a history, else the export."""
    for t in trials:
        for k in t.history:
            if k.startswith("val_") and k != "val_loss":
                return k
    for k in (best_doc or {}).get("metrics", {}):
        if k.startswith("val_") and k != "val_loss":
            return k
    return None


def _final(t: _Trial, name: str | None) -> float | None:
    if name is None:
        return None
    vs = [v for v in t.history.get(name, []) if math.isfinite(v)]
    if vs:
        return vs[-1]
    v = ((t.frozen.user_attrs.get("schedule") or {}).get("metrics") or {}).get(name)
    return float(v) if _finite(v) else None


# ----------------------------------------------------------------------------------------------------------------
# formatting


def _fmt(v: Any) -> str:
    """A value for the page: 4 significant digits, yes/no, lists in brackets."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    return str(v)


def _key_params(t: _Trial) -> str:
    """``initial_lr=0.0076, alpha=0.059, warmup=yes``: the trial's parameters without the family prefixes."""
    parts = []
    for k, v in t.params.items():
        if k == "family":
            continue
        parts.append(f"{k.split('.', 1)[1] if '.' in k else k}={_fmt(v)}")
    return ", ".join(parts)


def _schedule_rows(sched: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flatten a schedule config to (name, value) rows; a wrapped schedule's parameters come first."""
    rows: list[tuple[str, str]] = []
    inner = [(k, v) for k, v in sched.items() if isinstance(v, dict) and "type" in v]
    for k, v in inner:
        rows += _schedule_rows(v, prefix)
    for k, v in sched.items():
        if k == "type" or (isinstance(v, dict) and "type" in v):
            continue
        rows.append((prefix + k, _fmt(v)))
    return rows


def _schedule_type(sched: dict[str, Any]) -> str:
    """``cosine_restarts+warmup`` for a wrapped schedule, else the type (as trials' ``family`` names them)."""
    inner = next((v for v in sched.values() if isinstance(v, dict) and "type" in v), None)
    return f"{_schedule_type(inner)}+{sched.get('type')}" if inner is not None else str(sched.get("type"))


# ----------------------------------------------------------------------------------------------------------------
# plots (each draws given data, returns its caption, or raises _Skip)


def _plot_range_test(rt: dict[str, Any] | None, path: Path) -> str:
    from lrsearch.plots import plot_range_test

    curve = (rt or {}).get("curve") or {}
    if not curve.get("lr") or not curve.get("loss"):
        raise _Skip("range_test.png: the study holds no range-test curve (study attr 'range_test')")
    repeats = int(rt.get("repeats") or 1)
    interval = rt.get("interval")
    plot_range_test(curve["lr"], curve["loss"], path, smoothed=curve.get("smoothed"), suggestion=rt.get("suggestion"),
                    method=rt.get("method") or "", interval=interval, unstable=bool(rt.get("unstable")),
                    stop_reason=rt.get("stop_reason") or "", repeats=repeats, loss_kind=rt.get("loss_kind", "batch"))
    runs = f"the first of {repeats} runs" if repeats > 1 else "one run"
    text = (f"LR range test: loss against learning rate ({runs}); dashed line: suggested initial LR "
            f"{_fmt(rt.get('suggestion'))} ({rt.get('method') or 'auto'})")
    if interval:
        text += f"; band: the runs' suggestions, {_fmt(interval[0])} – {_fmt(interval[1])}"
    return text + (" (unstable: they differ by more than 10×)" if rt.get("unstable") else "") + "."


def _label(t: _Trial) -> str:
    return f"#{t.number} {t.family} ({_fmt(t.value)})"


def _plot_lr_curves(top: Sequence[_Trial], path: Path) -> str:
    drawn = [t for t in top if t.lr_per_epoch]
    if not drawn:
        raise _Skip("lr_curves.png: no complete trial recorded its LR per epoch (trial attr 'lr_per_epoch')")
    with plotstyle.style():
        fig, ax = plotstyle.new_figure(8, 4.2)
        all_lrs: list[float] = []
        for i, t in enumerate(drawn):
            ax.plot(range(1, len(t.lr_per_epoch) + 1), t.lr_per_epoch, "o-", ms=3.5, lw=2.4 if i == 0 else 1.5,
                    color=plotstyle.COLORS[i % len(plotstyle.COLORS)], label=_label(t), zorder=3 - i / 10)
            all_lrs += t.lr_per_epoch
        plotstyle.lr_axis(ax, all_lrs)
        plotstyle.epoch_axis(ax, n=max(len(t.lr_per_epoch) for t in drawn))
        ax.set_title(f"LR per epoch of the {len(drawn)} best trials")
        ax.legend(title="trial, family (final val_loss)", loc="center left", bbox_to_anchor=(1.01, 0.5))
        plotstyle.save(fig, path)
    return (f"LR per epoch of the {len(drawn)} best complete trials (thick line: the best; legend: trial number, "
            "schedule family, final validation loss).")


def _plot_val_curves(top: Sequence[_Trial], metric: str | None, path: Path) -> str:
    drawn = [t for t in top if t.val_loss]
    if not drawn:
        raise _Skip("val_curves.png: no complete trial recorded validation values")
    with_metric = metric is not None and any(t.history.get(metric) for t in drawn)
    with plotstyle.style():
        fig, axes = plotstyle.new_figure(11 if with_metric else 8, 4.2, ncols=2 if with_metric else 1)
        ax_loss = axes[0] if with_metric else axes
        values: list[float] = []
        n = 1
        for i, t in enumerate(drawn):
            color = plotstyle.COLORS[i % len(plotstyle.COLORS)]
            ax_loss.plot(range(1, len(t.val_loss) + 1), t.val_loss, "o-", ms=3.5, lw=2.4 if i == 0 else 1.5,
                         color=color, label=_label(t), zorder=3 - i / 10)
            values += t.val_loss
            n = max(n, len(t.val_loss))
            if with_metric and t.history.get(metric):
                ys = t.history[metric]
                axes[1].plot(range(1, len(ys) + 1), ys, "o-", ms=3.5, lw=2.4 if i == 0 else 1.5, color=color,
                             zorder=3 - i / 10)
        plotstyle.loss_axis(ax_loss, values, label="validation loss")
        plotstyle.epoch_axis(ax_loss, n=n)
        ax_loss.set_title("validation loss per epoch")
        if with_metric:
            axes[1].set_ylabel(plotstyle.metric_label(metric))
            plotstyle.epoch_axis(axes[1], n=n)
            axes[1].set_title(f"{metric.replace('_', ' ')} per epoch")
            axes[1].legend(ax_loss.get_lines(), [ln.get_label() for ln in ax_loss.get_lines()],
                           title="trial, family (final val_loss)", loc="center left", bbox_to_anchor=(1.02, 0.5))
        else:
            ax_loss.legend(title="trial, family (final val_loss)", loc="center left", bbox_to_anchor=(1.01, 0.5))
        plotstyle.save(fig, path)
    return (f"Validation loss{' and ' + metric.replace('_', ' ') if with_metric else ''} per epoch of the same "
            "trials (same colours as the LR curves).")


def _plot_history(trials: Sequence[_Trial], path: Path) -> str:
    complete = [t for t in trials if t.state == "complete" and t.value is not None]
    pruned = [t for t in trials if t.state == "pruned" and t.value is not None]
    failed = [t for t in trials if t.state == "failed" or (t.state == "pruned" and t.value is None)]
    colors = plotstyle.COLORS
    with plotstyle.style():
        fig, ax = plotstyle.new_figure(8, 4.2)
        ax.plot([t.number for t in complete], [t.value for t in complete], "o", color=colors[0], ms=6,
                label=f"complete ({len(complete)})", zorder=3)
        # Best so far, as a step line through trial order (complete trials only: they are what find() ranks).
        xs, ys, best = [], [], math.inf
        for t in sorted(complete, key=lambda t: t.number):
            best = min(best, t.value)
            xs.append(t.number)
            ys.append(best)
        ax.step(xs, ys, where="post", color=colors[1], lw=2, label="best so far", zorder=4)
        winner = min(complete, key=lambda t: t.value)
        ax.plot([winner.number], [winner.value], "*", color=colors[1], ms=14, mec="black", mew=0.6, zorder=5,
                label=f"best: trial #{winner.number}")
        # The scale follows the complete trials: a pruned trial that diverged would squash them all to one line.
        vals = [t.value for t in complete]
        lo, hi = min(vals), max(vals)
        if plotstyle.loss_axis(ax, vals, label="final validation loss"):
            bottom, top = lo / 1.5, hi * 2.0
        else:
            span = (hi - lo) or abs(hi) * 0.2 or 1.0
            bottom, top = lo - 0.1 * span, hi + 0.3 * span
        inside = [t for t in pruned if t.value <= top]
        above = [t for t in pruned if t.value > top]
        if inside:
            ax.plot([t.number for t in inside], [t.value for t in inside], "o", mfc="none", mec="#555555",
                    ms=7, mew=1.5, label=f"pruned: last reported value ({len(inside)})", zorder=2)
        if above:
            ax.plot([t.number for t in above], [top] * len(above), "^", mfc="none", mec="#555555", ms=8, mew=1.5,
                    clip_on=False, label=f"pruned, above the scale ({len(above)})", zorder=2)
        ax.set_ylim(bottom, top)
        if failed:  # failed trials have no value: a cross on the bottom edge marks when they happened
            ax.plot([t.number for t in failed], [0.0] * len(failed), "x", color=colors[3], ms=7, mew=1.5,
                    transform=ax.get_xaxis_transform(), clip_on=False, label=f"failed ({len(failed)})")
        plotstyle.epoch_axis(ax, label="trial number")
        ax.set_xlim(-0.5, max(t.number for t in trials) + 0.5)
        ax.set_title("objective (final validation loss) over trials")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: a legend inside hides trials
        plotstyle.save(fig, path)
    return ("Final validation loss of each trial in the order they ran; line: best so far; star: the best trial; "
            "open grey circles: pruned trials at their last reported value (triangles: above the scale)"
            + ("; crosses: failed trials" if failed else "") + ".")


def _widened(frozen: Sequence[Any]) -> list[Any]:
    """Copies of ``frozen`` trials whose numeric distributions all span every trial's range and value.

    Warm-start trials (the classic schedules) are enqueued with values outside the range the search draws from,
    and a resumed study's range can differ from its first run's: an in-memory study refuses such a trial, and the
    importance evaluator needs one distribution per parameter.
    """
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution

    low: dict[str, float] = {}
    high: dict[str, float] = {}
    for t in frozen:
        for k, d in t.distributions.items():
            if isinstance(d, (FloatDistribution, IntDistribution)):
                v = t.params[k]
                low[k] = min(low.get(k, d.low), d.low, v)
                high[k] = max(high.get(k, d.high), d.high, v)
    out = []
    for t in frozen:
        dists = dict(t.distributions)
        for k, d in dists.items():
            if isinstance(d, FloatDistribution):
                dists[k] = FloatDistribution(low[k], high[k], log=d.log, step=d.step)
            elif isinstance(d, IntDistribution):
                dists[k] = IntDistribution(int(low[k]), int(high[k]), log=d.log, step=d.step)
        out.append(optuna.trial.create_trial(state=t.state, value=t.value, params=t.params, distributions=dists,
                                             intermediate_values=t.intermediate_values))
    return out


def _importance(trials: Sequence[_Trial], params: list[str]) -> dict[str, float]:
    """optuna.importance on a throw-away in-memory study holding ``trials`` (never the user's study)."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created in memory ..." is noise here
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tmp = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))
            tmp.add_trials(_widened([t.frozen for t in trials]))
            # PED-ANOVA named explicitly: the default differs across Optuna versions (fANOVA before 5.0, which
            # needs scikit-learn), and this one needs nothing beyond numpy.
            result = optuna.importance.get_param_importances(
                tmp, params=params, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
    except (ValueError, RuntimeError, ZeroDivisionError, ImportError) as exc:
        raise _Skip(f"importance could not be computed ({exc})") from None
    finally:
        optuna.logging.set_verbosity(verbosity)
    if any("too small" in str(w.message) for w in caught):
        raise _Skip(f"importance needs more trials than {len(trials)}")
    return {k: float(v) for k, v in result.items() if math.isfinite(v)}


def _importance_panels(complete: Sequence[_Trial], best: _Trial,
                       notes: list[str]) -> list[tuple[str, dict[str, float]]] | _Skip:
    """The parameter importances to draw, as (title, importances) panels, or why there are none."""
    try:
        return _importance_panels_or_raise(complete, best, notes)
    except _Skip as exc:
        return exc


def _importance_panels_or_raise(complete: Sequence[_Trial], best: _Trial,
                                notes: list[str]) -> list[tuple[str, dict[str, float]]]:
    panels: list[tuple[str, dict[str, float]]] = []
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        raise _Skip(f"importance.png: parameter importance needs at least {MIN_IMPORTANCE_TRIALS} complete trials "
                    f"(the study has {len(complete)}); run more --trials")
    # The space is conditional (each family has its own parameters): across families only the shared ones compare.
    common = sorted(set.intersection(*(set(t.params) for t in complete)))
    if common:
        try:
            panels.append((f"all complete trials (n={len(complete)})", _importance(complete, common)))
        except _Skip as exc:
            notes.append(f"importance over all trials skipped: {exc}")
    same = [t for t in complete if t.base_family == best.base_family]
    if len(same) >= MIN_FAMILY_TRIALS:
        fam_params = sorted(set.intersection(*(set(t.params) for t in same)) - {"family"})
        try:
            panels.append((f"within {best.base_family} (n={len(same)})", _importance(same, fam_params)))
        except _Skip as exc:
            notes.append(f"importance within family {best.base_family} skipped: {exc}")
    else:
        notes.append(f"importance within the best family ({best.base_family}) needs at least {MIN_FAMILY_TRIALS} "
                     f"complete trials of it; the study has {len(same)}")
    panels = [(title, imp) for title, imp in panels if imp]
    if not panels:
        raise _Skip("importance.png: parameter importance could not be computed from this study's trials")
    return panels


def _plot_importance(panels: list[tuple[str, dict[str, float]]] | _Skip, path: Path) -> str:
    """Draw the importance panels (computed by :func:`_importance_panels`), or raise why there are none."""
    if isinstance(panels, _Skip):
        raise panels
    colors = plotstyle.COLORS
    n_rows = max(len(imp) for _, imp in panels)
    with plotstyle.style():
        longest = max(len(k) for _, imp in panels for k in imp)
        # Room between panels for the right one's parameter names (e.g. "time_decay.decay"), which sit left of it.
        fig, axes = plotstyle.new_figure(5.6 * len(panels), 1.4 + 0.38 * n_rows, ncols=len(panels),
                                         gridspec_kw={"wspace": min(1.5, 0.25 + 0.018 * longest)})
        axes = list(axes) if len(panels) > 1 else [axes]
        for i, (ax, (title, imp)) in enumerate(zip(axes, panels)):
            names = list(imp)[::-1]  # most important on top
            vals = [imp[k] for k in names]
            ax.barh(range(len(names)), vals, color=colors[2 * i % len(colors)], height=0.6)
            ax.set_yticks(range(len(names)), names)
            for y, v in enumerate(vals):
                ax.text(v, y, f" {v:.2f}", va="center", fontsize=9)
            ax.set_xlim(0, max(1e-9, max(vals)) * 1.25)
            ax.set_xlabel("importance (share of 1)")
            ax.grid(False, axis="y")
            ax.set_title(f"parameter importance: {title}")
        plotstyle.save(fig, path)
    return ("Parameter importance (optuna.importance, PED-ANOVA; shares sum to 1): "
            + "; ".join(title for title, _ in panels)
            + ". Across families only the parameters every trial has are compared.")


def _box(ax: Any, data: list[list[float]], positions: list[float]) -> None:
    """Horizontal box plot, with the keyword matplotlib >= 3.10 wants (``vert`` is deprecated there)."""
    import matplotlib

    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    orient = {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}
    ax.boxplot(data, positions=positions, widths=0.5, showfliers=False, manage_ticks=False, zorder=1,
               medianprops={"color": "black"}, boxprops={"color": plotstyle.GREY},
               whiskerprops={"color": plotstyle.GREY}, capprops={"color": plotstyle.GREY}, **orient)


def _plot_families(trials: Sequence[_Trial], path: Path) -> str:
    complete = [t for t in trials if t.state == "complete" and t.value is not None]
    fams: dict[str, list[_Trial]] = {}
    for t in complete:
        fams.setdefault(t.base_family, []).append(t)
    pruned: dict[str, int] = {}
    for t in trials:
        if t.state == "pruned":
            pruned[t.base_family] = pruned.get(t.base_family, 0) + 1
    order = sorted(fams, key=lambda f: min(t.value for t in fams[f]), reverse=True)  # best family on top
    colors = plotstyle.COLORS
    with plotstyle.style():
        fig, ax = plotstyle.new_figure(8, 1.5 + 0.5 * len(order))
        boxes = [(y, [t.value for t in fams[f]]) for y, f in enumerate(order) if len(fams[f]) >= 3]
        if boxes:
            _box(ax, [v for _, v in boxes], [float(y) for y, _ in boxes])
        shown: set[bool] = set()
        for y, f in enumerate(order):
            for j, t in enumerate(sorted(fams[f], key=lambda t: t.number)):
                warm = t.family.endswith("+warmup")
                # Deterministic jitter (golden-ratio sequence): points of one family do not hide each other.
                jitter = ((j * 0.618034) % 1.0 - 0.5) * 0.36
                ax.plot([t.value], [y + jitter], "o", ms=6, color=colors[0], mfc="none" if warm else colors[0],
                        mew=1.4, zorder=3, label=None if warm in shown else ("with warmup" if warm else "no warmup"))
                shown.add(warm)
        labels = [f"{f} (n={len(fams[f])}" + (f", +{pruned[f]} pruned" if pruned.get(f) else "") + ")"
                  for f in order]
        ax.set_yticks(range(len(order)), labels)
        ax.set_ylim(-0.6, len(order) - 0.4)
        ax.grid(False, axis="y")
        plotstyle.loss_axis(ax, [t.value for t in complete], axis="x", label="final validation loss")
        ax.set_title("final validation loss by schedule family (lower is better)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        plotstyle.save(fig, path)
    return ("Final validation loss of the complete trials by schedule family, best family on top (n: complete "
            "trials; filled: no warmup, open: with warmup; boxes for families with 3 or more trials).")


# ----------------------------------------------------------------------------------------------------------------
# the page

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}tr.best td{background:#fff6e0}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1.2em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444;margin-top:.3em}code{background:#f3f3f3;padding:0 .25em}
.meta{color:#555}.note{color:#7a4b00}
"""


def _dicts(value: Any) -> list[dict[str, Any]]:
    """A list-of-objects study attr, or [] when it is absent or not that shape (studies of older versions)."""
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        return []
    return value


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], *, num: Sequence[int] = (),
           best_row: int | None = None) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        cls = ' class="best"' if i == best_row else ""
        cells = "".join(f'<td class="num">{_e(c)}</td>' if j in num else f"<td>{_e(c)}</td>" for j, c in enumerate(row))
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</table>")
    return "\n".join(out)


def _render(name: str, storage: str, settings: dict[str, Any], counts: dict[str, int], best: _Trial,
            best_doc: dict[str, Any] | None, ranked: Sequence[_Trial], metric: str | None,
            images: Sequence[tuple[str, Path, str]], notes: Sequence[str],
            reselection: Sequence[dict[str, Any]] = (), baselines: Sequence[dict[str, Any]] = ()) -> str:
    """The HTML page: every text escaped, every image inline, no script, no external reference."""
    from lrsearch.search import dashboard_command

    opt = settings.get("optimizer")
    opt_name = opt.get("class_name") if isinstance(opt, dict) else opt
    meta = [("data", settings.get("data")), ("task", settings.get("task")), ("model", settings.get("model")),
            ("epochs", settings.get("epochs")), ("batch size", settings.get("batch_size")),
            ("optimizer", opt_name), ("seed", settings.get("seed"))]
    meta_text = " · ".join(f"{k}: {_fmt(v)}" for k, v in meta if v is not None)
    trials_text = (f"{counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed"
                   + (f", {counts['running']} running" if counts.get("running") else ""))
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>lrsearch report: {_e(name)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        f"<h1>lrsearch report: study {_e(name)}</h1>",
        f'<p class="meta">{_e(meta_text)}</p>' if meta_text else "",
        f'<p class="meta">trials: {_e(trials_text)} · storage: <code>{_e(storage)}</code> · made {_e(now)}</p>',
        "<h2>Best schedule</h2>",
    ]
    metric_label = metric or "val metric"
    if best_doc and isinstance(best_doc.get("schedule"), dict):
        sched = best_doc["schedule"]
        doc_trial = (best_doc.get("provenance") or {}).get("trial")
        seeds = (best_doc.get("metrics") or {}).get("seeds")
        retrained = f"retraining it with {_fmt(seeds)} seeds (mean and sd)" if seeds else "retraining it once"
        parts.append(f"<p><b>{_e(_schedule_type(sched))}</b> from trial #{_e(_fmt(doc_trial))} "
                     f"(the exported <code>best_schedule.json</code>; its metrics come from {_e(retrained)} on the "
                     "search's split and scoring on its validation and test rows).</p>")
        parts.append(_table(["parameter", "value"], _schedule_rows(sched), num=(1,)))
        model_hp = (best_doc.get("provenance") or {}).get("model_hp")
        if isinstance(model_hp, dict) and model_hp:  # a build(hp) model: the architecture it was found for
            parts.append("<p>Model hyperparameters (<code>build(hp)</code>) of the export:</p>")
            parts.append(_table(["hyperparameter", "value"], [(k, _fmt(v)) for k, v in model_hp.items()],
                                num=(1,)))
        metrics = best_doc.get("metrics") or {}
        if metrics:
            parts.append(_table(["metric", "value"], [(k, _fmt(v)) for k, v in metrics.items()], num=(1,)))
        reselected = {r.get("trial") for r in reselection}
        if doc_trial is not None and doc_trial != best.number and best.number not in reselected:
            parts.append(f'<p class="note">The best trial is now #{_e(best.number)} (the export is from trial '
                         f"#{_e(doc_trial)}): run lrsearch find again to re-export it.</p>")
    else:
        parts.append(f"<p>Best trial: <b>#{_e(best.number)}</b>, {_e(best.family)}, final validation loss "
                     f"{_e(_fmt(best.value))} ({_e(_key_params(best))}). No schedule has been exported yet "
                     "(lrsearch find exports <code>best_schedule.json</code> when its search ends).</p>")
    if reselection:
        score = next((k[:-5] for k in reselection[0] if k.startswith("val_") and k.endswith("_mean")), None)
        parts.append("<h2>Reselection</h2>")
        splits = len(reselection[0].get("val_loss") or [])
        parts.append(f"<p>The best trials and the warm-start classics, re-scored on {splits} fresh validation "
                     "splits (re-splits of the training and validation rows, not the search's own split), best "
                     "first: the first row was exported.</p>")
        parts.append(_table(["trial", "schedule", f"mean {score or 'metric'}", "mean val_loss", "per split"],
                            [(f"#{r.get('trial')}", r.get("label") or r.get("family"), _fmt(r.get(f"{score}_mean")),
                              _fmt(r.get("mean")), ", ".join(_fmt(v) for v in r.get(score) or []))
                             for r in reselection], num=(0, 2, 3), best_row=0))
    if baselines:
        test = next((k for k in baselines[0] if k.startswith("test_") and k != "test_loss"), "test score")
        parts.append("<h2>Against the classics</h2>")
        parts.append("<p>The export and the warm-start classic schedules trained on the same split with the same "
                     "seed and scored once on the test split.</p>")
        parts.append(_table(["trial", "schedule", test, "test_loss"],
                            [(f"#{b.get('trial')}", (b.get("label") or "") + (" (exported)" if b.get("exported")
                                                                              else ""),
                              _fmt(b.get(test)), _fmt(b.get("test_loss"))) for b in baselines],
                            num=(0, 2, 3), best_row=0))
    parts.append(f"<h2>Top {len(ranked)} trials</h2>")
    parts.append(f"<p>Ranked by the search's objective, the final validation loss on the search's split: lowest "
                 f"#{_e(best.number)} ({_e(best.family)})"
                 + (" (the export was chosen among the best by re-scoring, above)." if reselection else ".")
                 + "</p>")
    parts.append(_table(["trial", "family", "parameters", "final val_loss", f"final {metric_label}"],
                        [(f"#{t.number}", t.family, _key_params(t), _fmt(t.value), _fmt(_final(t, metric)))
                         for t in ranked], num=(0, 3, 4), best_row=0))
    if images:
        parts.append("<h2>Plots</h2>")
    for key, path, caption in images:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f'<figure id="{_e(key)}"><img src="data:image/png;base64,{data}" alt="{_e(caption)}">'
                     f"<figcaption>{_e(caption)}</figcaption></figure>")
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f'<li class="note">{_e(n)}</li>' for n in notes) + "</ul>")
    parts.append(f'<p class="meta">Explore the study interactively: <code>{_e(dashboard_command(name, storage))}'
                 "</code></p>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(p for p in parts if p)


# ----------------------------------------------------------------------------------------------------------------
# entry point


def write_report(study: str | None = None, storage: str | None = None,
                 out: str | Path | None = None) -> ReportResult:
    """Write ``report.html`` and its PNGs for an existing study (opened read-only: the search may still run).

    Args:
        study: the study name (default: the only study in ``storage``, or the only ``studies/*.db`` here).
        storage: Optuna storage URL (default: ``sqlite:///studies/<study>.db``).
        out: output folder (default: ``report/`` in the study's folder, :func:`lrsearch.search.study_folder`:
            ``studies/<study>/report/`` for the default storage); PNGs of an earlier report that this one could
            not draw are removed, so the folder always matches the page.

    Returns:
        A :class:`ReportResult` with the page, the PNGs written and notes on what was skipped.

    Raises:
        StorageError: the storage cannot be opened or has no such study.
        LrSearchError: the study has no complete trial yet, or the output folder cannot be written.

    Example:
        >>> import optuna, tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> url = f"sqlite:///{d}/demo.db"
        >>> optuna.logging.set_verbosity(optuna.logging.WARNING)
        >>> s = optuna.create_study(study_name="demo", storage=url)
        >>> s.optimize(lambda t: (t.suggest_float("initial_lr", 1e-4, 1e-1, log=True) - 0.01) ** 2, n_trials=5)
        >>> r = write_report("demo", url, out=os.path.join(d, "report"))
        >>> r.html.name, sorted(r.files)
        ('report.html', ['families', 'history', 'importance'])
    """
    from lrsearch.search import load_existing, redact, resolve_study, study_folder

    st = load_existing(study, storage)
    name = st.study_name
    url = redact(resolve_study(name, storage)[1])
    trials = [_trial(t) for t in st.get_trials(deepcopy=False)]
    counts = {s: sum(t.state == s for t in trials) for s in ("complete", "pruned", "failed", "running")}
    complete = [t for t in trials if t.state == "complete" and t.value is not None]
    if not complete:
        raise LrSearchError(f"study {name!r} has no complete trial yet ({counts['pruned']} pruned, "
                            f"{counts['failed']} failed, {counts['running']} running); let the search finish "
                            "or run lrsearch find with more --trials or --epochs, then report again")
    attrs = st.user_attrs
    settings = attrs.get("lrsearch") or {}
    best_doc = attrs.get("best_schedule")
    ranked = sorted(complete, key=lambda t: (t.value, t.number))
    best = ranked[0]
    metric = _metric_name(ranked, best_doc)

    out_dir = Path(out) if out is not None else study_folder(name, resolve_study(name, storage)[1]) / "report"
    make_folder(out_dir, "report folder")

    notes: list[str] = []
    top = ranked[:TOP_CURVES]
    importance = _importance_panels(complete, best, notes)  # computed here; the plot only draws it
    makers = {
        "range_test": lambda p: _plot_range_test(attrs.get("range_test"), p),
        "lr_curves": lambda p: _plot_lr_curves(top, p),
        "val_curves": lambda p: _plot_val_curves(top, metric, p),
        "history": lambda p: _plot_history(trials, p),
        "importance": lambda p: _plot_importance(importance, p),
        "families": lambda p: _plot_families(trials, p),
    }
    files: dict[str, Path] = {}
    images: list[tuple[str, Path, str]] = []
    try:
        for key in PLOTS:
            path = out_dir / f"{key}.png"
            try:
                caption = makers[key](path)
            except _Skip as exc:
                notes.append(str(exc))
                path.unlink(missing_ok=True)  # a stale PNG from an earlier report would contradict the page
                continue
            files[key] = path
            images.append((key, path, caption))
        page = _render(name, url, settings, counts, best, best_doc, ranked[:TOP_TABLE], metric, images, notes,
                       _dicts(attrs.get("reselection")), _dicts(attrs.get("baselines")))
        html_path = out_dir / "report.html"
        html_path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise LrSearchError(f"cannot write the report into {str(out_dir)!r} ({exc.strerror}); choose another "
                            "--out") from None
    return ReportResult(html=html_path, files=files, study=name, notes=notes)
