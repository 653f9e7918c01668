"""The LIM picture as Plotly figure specs (plain dicts: the browser's plotly.js draws them; no plotly import
here) and tiny SVG sparklines for tables. Colours: the average curve is grey, a prompt's own is blue."""

from __future__ import annotations

from typing import Any

Figure = dict[str, Any]
_AVG = "#7f7f7f"
_PROMPT = "#1f77b4"
_KEPT = "#2ca02c"


def _layout(title: str, xaxis: str, yaxis: str, yrange: list[float] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "font": {"size": 14}, "x": 0.01, "xanchor": "left"},
        "margin": {"l": 50, "r": 20, "t": 40, "b": 45},
        "xaxis": {"title": {"text": xaxis}, "dtick": 1} if xaxis == "epoch" else {"title": {"text": xaxis}},
        "yaxis": {"title": {"text": yaxis}, **({"range": yrange} if yrange else {})},
        "height": 320,
        "showlegend": True,
        "legend": {"orientation": "h", "y": -0.25},
        **extra,
    }


def r_avg_figure(r_avg: list[float]) -> Figure:
    """The run's average learning curve: mean accuracy over the scored prompts, per epoch (the paper's r_avg)."""
    epochs = list(range(1, len(r_avg) + 1))
    trace = {"x": epochs, "y": r_avg, "mode": "lines+markers", "name": "r_avg", "line": {"color": _AVG}}
    return {
        "data": [trace],
        "layout": _layout("Average learning curve (r_avg)", "epoch", "accuracy", yrange=[0, 1]),
    }


def histogram_figure(hist: dict[str, Any], threshold: float) -> Figure:
    """LIM scores in bins over [0, 1] (plus a bar for scores below 0), with the threshold as a vertical line
    that the page's threshold control moves (shape 0)."""
    edges, counts = hist["edges"], hist["counts"]
    width = edges[1] - edges[0]
    centers = [(a + b) / 2 for a, b in zip(edges, edges[1:], strict=False)]
    data = [
        {
            "type": "bar",
            "x": centers,
            "y": counts,
            "width": width * 0.95,
            "name": "prompts",
            "marker": {"color": _PROMPT},
        }
    ]
    if hist.get("below_zero"):
        data.append(
            {"type": "bar", "x": [-width], "y": [hist["below_zero"]], "width": width * 0.95, "name": "score < 0",
             "marker": {"color": _AVG}}
        )  # fmt: skip
    line = {"type": "line", "x0": threshold, "x1": threshold, "y0": 0, "y1": 1, "yref": "paper",
            "line": {"color": "#d62728", "width": 2, "dash": "dash"}}  # fmt: skip
    return {"data": data, "layout": _layout("LIM score histogram", "LIM score", "prompts", shapes=[line])}


def trajectory_figure(accuracy: list[float | None], r_avg: list[float], prompt_id: str) -> Figure:
    """One prompt's accuracy per epoch against the run's average: LIM keeps prompts whose curve follows it."""
    epochs = list(range(1, len(accuracy) + 1))
    data = [
        {"x": epochs, "y": accuracy, "mode": "lines+markers", "name": prompt_id, "line": {"color": _PROMPT}},
        {
            "x": epochs[: len(r_avg)],
            "y": r_avg,
            "mode": "lines",
            "name": "r_avg",
            "line": {"color": _AVG, "dash": "dot"},
        },
    ]
    layout = _layout("Trajectory against the average", "epoch", "accuracy", yrange=[-0.02, 1.02])
    return {"data": data, "layout": layout}


def kept_curve_figure(table: dict[str, list], total: int) -> Figure:
    """Prompts kept as a function of the threshold (the size side of the threshold choice)."""
    trace = {"x": table["thresholds"], "y": table["kept"], "mode": "lines", "name": "kept", "line": {"color": _KEPT}}
    layout = _layout(f"Prompts kept by threshold (of {total} scored)", "threshold", "prompts kept", showlegend=False)
    return {"data": [trace], "layout": layout}


def sparkline(values: list[float | None], width: int = 90, height: int = 22) -> str:
    """SVG polyline points of a [0, 1] series (gaps skipped), for a table cell."""
    n = len(values)
    if n == 0:
        return ""
    step = width / max(1, n - 1)
    pts = [f"{i * step:.1f},{height - 2 - v * (height - 4):.1f}" for i, v in enumerate(values) if v is not None]
    return " ".join(pts)
