"""Drawing of a network: feeders coloured, switches, NOPs and meters marked (cf. the paper's Fig. 3).

Draws with matplotlib's Agg canvas directly (no pyplot, no global backend switch); coordinates are
the buses' ``x``, ``y``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sma3_grid.model import Network

_FEEDER_COLOURS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#9467bd",
    "#ff7f0e",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#393b79",
    "#637939",
)


def _xy(net: Network, bus_id: str) -> tuple[float, float]:
    bus = net.buses[bus_id]
    return bus.x, bus.y


def _along(net: Network, from_bus: str, to_bus: str, fraction: float) -> tuple[float, float]:
    x0, y0 = _xy(net, from_bus)
    x1, y1 = _xy(net, to_bus)
    return x0 + fraction * (x1 - x0), y0 + fraction * (y1 - y0)


def plot_network(
    net: Network,
    out: str | Path,
    highlight: str | None = None,
    fault: tuple[str, float] | None = None,
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Draw a network to an image file.

    Parameters
    ----------
    net : Network
        The network, in its current switch state (energized lines coloured by feeder, open lines
        dashed grey).
    out : str or Path
        Output file; the format follows the suffix (``.png``, ``.svg``, ``.pdf``).
    highlight : str, optional
        Id of a line to emphasise (e.g. the faulted section).
    fault : (str, float), optional
        Line id and position of a fault as a fraction (0..1) of the line from its upstream end.
    title : str, optional
        Figure title; default the network name and counts.
    dpi : int
        Resolution of raster output (dots per inch).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    KeyError, ValueError
        Unknown line, or a fault on a line that is not energized or outside 0..1.
    """
    if highlight is not None and highlight not in net.lines:
        raise KeyError(f"unknown line '{highlight}' to highlight")
    if fault is not None:
        line_id, position = fault
        net.upstream_bus(line_id)  # raises for unknown or de-energized lines
        if not 0.0 <= position <= 1.0:
            raise ValueError(f"fault position {position} is outside 0..1 (fraction from the upstream end)")
    xs = [b.x for b in net.buses.values()]
    ys = [b.y for b in net.buses.values()]
    span_x = max(xs) - min(xs) or 1.0
    span_y = max(ys) - min(ys) or 1.0
    width = min(24.0, max(8.0, 0.62 * span_x + 3.0)) if span_x > 5 else 9.0
    height = min(16.0, max(5.0, width * span_y / span_x + 1.5))
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    source = net.info.source_bus
    feeders = net.feeders()
    colour = {f: _FEEDER_COLOURS[i % len(_FEEDER_COLOURS)] for i, f in enumerate(feeders)}

    # lines
    segments: dict[str, list] = {f: [] for f in feeders}
    open_segments = []
    for line_id, line in net.lines.items():
        seg = [_xy(net, line.bus_a), _xy(net, line.bus_b)]
        if net.is_energized(line_id):
            segments[net.feeder_of(line_id)].append(seg)
        else:
            open_segments.append(seg)
    if highlight is not None:
        line = net.lines[highlight]
        ax.add_collection(
            LineCollection(
                [[_xy(net, line.bus_a), _xy(net, line.bus_b)]], colors="#ffd700", linewidths=9, zorder=1
            )
        )
    for f in feeders:
        ax.add_collection(LineCollection(segments[f], colors=colour[f], linewidths=1.8, zorder=2))
    if open_segments:
        ax.add_collection(
            LineCollection(open_segments, colors="#888888", linewidths=1.0, linestyles="dashed", zorder=1.5)
        )

    # buses
    for f in feeders:
        buses = net.downstream_buses(f)
        ax.scatter(
            [net.buses[b].x for b in buses],
            [net.buses[b].y for b in buses],
            s=9,
            color=colour[f],
            zorder=3,
            linewidths=0,
        )
    dark = [b for b in net.buses if not net.is_energized(b)]
    if dark:
        ax.scatter(
            [net.buses[b].x for b in dark], [net.buses[b].y for b in dark], s=9, color="#bbbbbb", zorder=3
        )
    if len(net.buses) <= 40:  # small networks: name every bus
        for bus in net.buses.values():
            if bus.bus_id != source:
                ax.annotate(
                    bus.bus_id,
                    (bus.x, bus.y),
                    xytext=(-4, -3),
                    textcoords="offset points",
                    ha="right",
                    va="top",
                    fontsize=7,
                    color="#333333",
                )
    sx, sy = _xy(net, source)
    ax.scatter([sx], [sy], s=160, marker="s", color="black", zorder=6)
    ax.annotate(source, (sx, sy), xytext=(10, 4), textcoords="offset points", ha="left", fontsize=9)

    # switches
    styles: dict[str, dict[str, Any]] = {
        "breaker": {"marker": "s", "s": 34, "facecolors": "black", "edgecolors": "black"},
        "recloser": {"marker": "p", "s": 40, "facecolors": "black", "edgecolors": "black"},
        "remote_lbs": {"marker": "^", "s": 30, "facecolors": "#222222", "edgecolors": "#222222"},
        "manual_lbs": {"marker": "^", "s": 30, "facecolors": "white", "edgecolors": "#222222"},
        "disconnector": {"marker": "D", "s": 18, "facecolors": "white", "edgecolors": "#222222"},
        "open": {"marker": "o", "s": 46, "facecolors": "white", "edgecolors": "red"},
    }
    groups: dict[str, list[tuple[float, float]]] = {k: [] for k in styles}
    opened = net.open_switches
    for sw in net.switches.values():
        line = net.lines[sw.line_id]
        pos = _along(net, sw.bus_id, line.other_end(sw.bus_id), 0.2 if sw.bus_id != source else 0.06)
        if sw.switch_id in opened:
            key = "open"
        elif sw.kind == "load_break_switch":
            key = "remote_lbs" if sw.remote else "manual_lbs"
        else:
            key = sw.kind
        groups[key].append(pos)
    for key, pts in groups.items():
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], zorder=5, linewidths=1.1, **styles[key])

    # meters
    head: list[tuple[float, float]] = []
    secondary: list[tuple[float, float]] = []
    for m in net.meters.values():
        line = net.lines[m.line_id]
        pos = _along(net, m.bus_id, line.other_end(m.bus_id), 0.12 if m.bus_id != source else 0.14)
        (head if m.role == "feeder_head" else secondary).append(pos)
    if head:
        ax.scatter([p[0] for p in head], [p[1] for p in head], marker="*", s=110, color="#00a000", zorder=7)
    if secondary:
        ax.scatter(
            [p[0] for p in secondary], [p[1] for p in secondary], marker="*", s=55, color="#00c8ff", zorder=7
        )

    # feeder labels at the first bus of each feeder
    for f in feeders:
        x, y = _xy(net, net.downstream_bus(f))
        ax.annotate(
            f, (x, y), xytext=(4, 4), textcoords="offset points", fontsize=8, color=colour[f], weight="bold"
        )

    if highlight is not None:
        line = net.lines[highlight]
        mx, my = _along(net, line.bus_a, line.bus_b, 0.5)
        ax.annotate(
            highlight,
            (mx, my),
            xytext=(10, -4),
            textcoords="offset points",
            fontsize=9,
            weight="bold",
            bbox={"boxstyle": "round,pad=0.2", "fc": "#fff7c0", "ec": "#b8a000"},
            zorder=9,
        )
    if fault is not None:
        line_id, position = fault
        fx, fy = _along(net, net.upstream_bus(line_id), net.downstream_bus(line_id), position)
        ax.scatter([fx], [fy], marker="X", s=180, color="red", edgecolors="black", zorder=8)
        ax.annotate(
            f"fault {line_id} @ {position:.0%}",
            (fx, fy),
            xytext=(10, 8),
            textcoords="offset points",
            fontsize=9,
            color="red",
            weight="bold",
            zorder=9,
        )

    legend = [
        Line2D([], [], color="#444444", lw=1.8, label="energized line (colour = feeder)"),
        Line2D([], [], color="#888888", lw=1.0, ls="--", label="open or de-energized line"),
        Line2D([], [], marker="s", ls="", color="black", label="breaker"),
        Line2D([], [], marker="^", ls="", color="#222222", label="remote load-break switch"),
        Line2D([], [], marker="^", ls="", mfc="white", mec="#222222", label="manual load-break switch"),
        Line2D([], [], marker="D", ls="", mfc="white", mec="#222222", ms=5, label="disconnector"),
        Line2D([], [], marker="o", ls="", mfc="white", mec="red", label="open switch (NOP or opened)"),
        Line2D([], [], marker="*", ls="", color="#00a000", ms=11, label="feeder-head meter"),
        Line2D([], [], marker="*", ls="", color="#00c8ff", ms=9, label="secondary meter"),
    ]
    if fault is not None:
        legend.append(Line2D([], [], marker="X", ls="", color="red", mec="black", ms=10, label="fault"))
    ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, framealpha=0.9)
    n_sec = sum(b.kind == "secondary" for b in net.buses.values())
    ax.set_title(
        title
        or f"{net.info.name}: {net.info.nominal_kv:g} kV, {len(feeders)} feeder{'s' * (len(feeders) != 1)}, "
        f"{n_sec} secondary "
        f"substations, {len(net.energized_lines())} energized lines"
    )
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.margins(0.03)
    ax.set_xlabel("x (km)")
    ax.set_ylabel("y (km)")
    ax.grid(True, color="#eeeeee", lw=0.5)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi, bbox_inches="tight")
    return out
