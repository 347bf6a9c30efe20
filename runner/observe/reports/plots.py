"""The report's figures, drawn with matplotlib's Agg backend and kept as PNG bytes."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from runner.observe.reports.record import RunRecord
from runner.tasks import gain

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

TOP_CURVES = 5


@dataclass(frozen=True)
class Plot:
    """One rendered figure."""

    key: str
    title: str
    png: bytes


def all_plots(record: RunRecord) -> list[Plot]:
    """Every figure the run's artifacts allow, in report order."""
    plots = []
    if record.trials:  # a run without the sweep stage has none
        plots.append(_plot("history", "Optimization history", optimization_history(record)))
        plots += [
            _plot(f"param-{name}", f"{name} against {record.metric}", fig)
            for name, fig in params_vs_metric(record)
        ]
    if any(t["history"] for t in record.trials):
        plots.append(
            _plot("curves", f"Learning curves, top {TOP_CURVES} trials", learning_curves(record))
        )
    predictions = record.predictions()
    if predictions is not None and len(predictions):
        if _is_regression(predictions):
            plots.append(
                _plot("residuals", "Residuals of the best model (test)", residuals(predictions))
            )
            plots.append(
                _plot("predicted", "Predicted against true (test)", predicted_vs_true(predictions))
            )
        elif has_classes(predictions):
            if _is_binary(predictions):
                plots.append(
                    _plot(
                        "roc-pr",
                        "ROC and precision-recall curves (test)",
                        roc_pr_curves(predictions),
                    )
                )
            plots.append(
                _plot(
                    "confusion",
                    "Confusion matrix of the best model (test)",
                    confusion_matrix(predictions),
                )
            )
    stage_times = {k: v for k, v in record.summary.get("timings_s", {}).items() if k != "total"}
    if stage_times:
        plots.append(_plot("timings", "Time per stage", timings(stage_times)))
    return plots


def optimization_history(record: RunRecord) -> "Figure":
    """The metric of each complete trial by number, with the running best."""
    fig, ax = _figure()
    done = [t for t in record.trials if t["state"] == "COMPLETE" and record.metric in t["metrics"]]
    xs = [t["number"] for t in done]
    ys = [t["metrics"][record.metric] for t in done]
    ax.scatter(xs, ys, label="trial", zorder=3)
    pick = max if gain(record.direction) > 0 else min
    best = [pick(ys[: i + 1]) for i in range(len(ys))]
    ax.step(xs, best, where="post", color="tab:red", label="best so far")
    failed = [t["number"] for t in record.trials if t["state"] != "COMPLETE"]
    if failed and ys:
        ax.scatter(
            failed, [min(ys)] * len(failed), marker="x", color="grey", label="failed / pruned"
        )
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_ylabel(record.metric)
    ax.legend(loc="best")
    return fig


def params_vs_metric(record: RunRecord) -> list[tuple[str, "Figure"]]:
    """One scatter per searched parameter: its value against the metric."""
    done = [t for t in record.trials if t["state"] == "COMPLETE" and record.metric in t["metrics"]]
    names = sorted({name for t in done for name in t["params"]})
    out = []
    for name in names:
        pairs = [
            (t["params"][name], t["metrics"][record.metric]) for t in done if name in t["params"]
        ]
        fig, ax = _figure(width=4.5)
        values = [p[0] for p in pairs]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            ax.scatter(values, [p[1] for p in pairs])
            searched = str(record.config["search"].get("params", {}).get(name, ""))
            if min(values) > 0 and ("tag(log" in searched or max(values) / min(values) >= 100):
                ax.set_xscale("log")
                ax.xaxis.set_minor_formatter(_no_labels())
        else:  # categorical
            labels = sorted({str(v) for v in values})
            ax.scatter([labels.index(str(v)) for v in values], [p[1] for p in pairs])
            ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(name)
        ax.set_ylabel(record.metric)
        out.append((name, fig))
    return out


def learning_curves(record: RunRecord) -> "Figure":
    """Per-epoch losses and the metric of the best few trials."""
    plt = _pyplot()
    top = [t for t in record.ranked() if t["history"]][:TOP_CURVES]
    has_metric = any(record.metric in h for t in top for h in t["history"])
    fig, axes = plt.subplots(
        1, 2 if has_metric else 1, figsize=(10 if has_metric else 6, 3.6), squeeze=False
    )
    for i, trial in enumerate(top):
        color = f"C{i}"
        epochs = [h["epoch"] for h in trial["history"]]
        for key, style in (("train_loss", "--"), ("val_loss", "-")):
            if key in trial["history"][0]:
                axes[0][0].plot(
                    epochs,
                    [h[key] for h in trial["history"]],
                    style,
                    color=color,
                    label=f"#{trial['number']} {key}",
                )
        if has_metric:
            axes[0][1].plot(
                epochs,
                [h.get(record.metric, math.nan) for h in trial["history"]],
                color=color,
                label=f"#{trial['number']}",
            )
    for ax, ylabel in zip(axes[0], ("loss", record.metric)):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.set_ylabel(ylabel)
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def confusion_counts(predictions: "pd.DataFrame") -> tuple[list[Any], list[list[int]]]:
    """Class labels and counts[true][predicted] over the test predictions."""
    labels = sorted(set(predictions["label"].tolist()) | set(predictions["prediction"].tolist()))
    index = {label: i for i, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for true, pred in zip(predictions["label"].tolist(), predictions["prediction"].tolist()):
        counts[index[true]][index[pred]] += 1
    return labels, counts


def confusion_matrix(predictions: "pd.DataFrame") -> "Figure":
    labels, counts = confusion_counts(predictions)
    size = min(8.0, 2.5 + 0.45 * len(labels))
    fig, ax = _figure(width=size, height=size)
    ax.imshow(counts, cmap="Blues")
    peak = max(max(row) for row in counts) or 1
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            if n:
                ax.text(
                    j,
                    i,
                    str(n),
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="white" if n > peak / 2 else "black",
                )
    ax.set_xticks(range(len(labels)), [str(v) for v in labels])
    ax.set_yticks(range(len(labels)), [str(v) for v in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return fig


def residuals(predictions: "pd.DataFrame") -> "Figure":
    """Prediction minus label against the label (regression)."""
    fig, ax = _figure()
    truth = predictions["label"].astype(float)
    ax.scatter(truth, predictions["prediction"].astype(float) - truth, s=12)
    ax.axhline(0.0, color="grey", lw=1)
    ax.set_xlabel("label")
    ax.set_ylabel("prediction - label")
    return fig


def predicted_vs_true(predictions: "pd.DataFrame") -> "Figure":
    """Each test row's prediction against its label, with the diagonal (regression)."""
    fig, ax = _figure()
    truth = predictions["label"].astype(float)
    ax.scatter(truth, predictions["prediction"].astype(float), s=12)
    low, high = float(truth.min()), float(truth.max())
    ax.plot([low, high], [low, high], color="grey", lw=1)
    ax.set_xlabel("label")
    ax.set_ylabel("prediction")
    return fig


def roc_pr_curves(predictions: "pd.DataFrame") -> "Figure":
    """ROC and precision-recall curves of the positive probability (binary)."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    labels = predictions["label"].astype(int)
    scores = predictions["probability"].astype(float)
    fig, axes = _pyplot().subplots(1, 2, figsize=(9.0, 3.6))
    fpr, tpr, _ = roc_curve(labels, scores)
    axes[0].plot(fpr, tpr, label=f"AUC {auc(fpr, tpr):.3f}")
    axes[0].plot([0, 1], [0, 1], color="grey", lw=1)
    axes[0].set_xlabel("false positive rate")
    axes[0].set_ylabel("true positive rate")
    axes[0].legend(fontsize="small")
    precision, recall, _ = precision_recall_curve(labels, scores)
    axes[1].plot(recall, precision)
    axes[1].set_xlabel("recall")
    axes[1].set_ylabel("precision")
    return fig


def timings(stage_times: dict[str, float]) -> "Figure":
    fig, ax = _figure(height=0.5 + 0.45 * len(stage_times))
    names = list(stage_times)
    ax.barh(names, [stage_times[n] for n in names])
    ax.invert_yaxis()
    for i, name in enumerate(names):
        ax.text(stage_times[name], i, f" {stage_times[name]:.1f}s", va="center")
    ax.set_xlabel("seconds")
    return fig


def has_classes(predictions: "pd.DataFrame") -> bool:
    """One predicted class per row (classification, binary), not a value or a set of tags."""
    return predictions["prediction"].dtype.kind in "iu"


def _is_binary(predictions: "pd.DataFrame") -> bool:
    """One probability per row (the positive class's), labels known."""
    return (
        "probability" in predictions
        and predictions["probability"].dtype.kind == "f"
        and predictions["label"].notna().all()
    )


def _is_regression(predictions: "pd.DataFrame") -> bool:
    """A value per row (not a class): the prediction itself is a float."""
    return predictions["prediction"].dtype.kind == "f"


def _no_labels():
    from matplotlib.ticker import NullFormatter

    return NullFormatter()


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: never a window, works without a display
    import matplotlib.pyplot as plt

    return plt


def _figure(width: float = 6.0, height: float = 3.6):
    return _pyplot().subplots(figsize=(width, height))


def _plot(key: str, title: str, fig: "Figure") -> Plot:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return Plot(key=key, title=title, png=buffer.getvalue())


def metric_by_override(records: list[RunRecord], group: Callable[[RunRecord], str]) -> bytes | None:
    """PNG: each run's best validation metric against the value of each override that
    varies across ``records`` (but ``data``, the groups), one series per ``group`` (data
    set), lines only between numeric values; None if no override varies."""
    values: dict[str, dict[int, str]] = {}  # override key -> run index -> value
    for i, r in enumerate(records):
        for override in r.overrides:
            key, _, value = override.lstrip("+~").partition("=")
            values.setdefault(key, {})[i] = value
    varying = [
        k
        for k, by_run in values.items()
        if k != "data" and (len(set(by_run.values())) > 1 or len(by_run) < len(records))
    ]
    if not varying:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(varying), figsize=(4.0 * len(varying), 3.4), squeeze=False)
    metric = records[0].metric
    for ax, key in zip(axes[0], varying):
        ticks = sorted(set(values[key].values()), key=_numeric_first)
        numeric = all(_numeric_first(t)[0] == 0 for t in ticks)
        for name in dict.fromkeys(group(r) for r in records):
            points = sorted(
                (ticks.index(values[key][i]), r.summary["best"]["metrics"].get(metric))
                for i, r in enumerate(records)
                if group(r) == name and i in values[key]
            )
            if points:
                ax.plot(*zip(*points), marker="o", linestyle="-" if numeric else "", label=name)
        ax.set_xticks(range(len(ticks)), ticks, rotation=30)
        ax.set_xlabel(key)
        ax.set_ylabel(f"best val {metric}")
    axes[0][0].legend(fontsize="small")
    fig.tight_layout()
    return _plot("by-override", f"{metric} by override", fig).png


def _numeric_first(value: str) -> tuple[int, float, str]:
    try:
        return 0, float(value), value
    except ValueError:
        return 1, 0.0, value
