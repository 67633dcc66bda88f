"""Waveform figure of a record, like Fig. 6 of the paper (voltages and currents around a fault)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sma3_grid.comtrade import Record

__all__ = ["plot_record"]

_COLOURS = {"A": "tab:orange", "B": "tab:green", "C": "tab:blue"}


def plot_record(
    record: Record, path: Path, title: str = "", zoom_cycles: tuple[float, float] = (-3, 8)
) -> Path:
    """Draw a record's voltages (kV) and currents (kA): whole window left, zoom on inception right.

    Parameters
    ----------
    record : sma3_grid.comtrade.Record
        Record with channels ``VA VB VC`` (V) and ``IA IB IC`` (A).
    path : Path
        Output image (PNG by suffix).
    title : str
        Figure title.
    zoom_cycles : tuple of float
        Zoom window around the trigger, in cycles of the record's frequency.

    Returns
    -------
    Path
        ``path``.
    """
    t = np.arange(record.n_samples) / record.sample_rate_hz
    period = 1.0 / record.frequency_hz
    lo = record.trigger_s + zoom_cycles[0] * period
    hi = record.trigger_s + zoom_cycles[1] * period
    fig, axes = plt.subplots(2, 2, figsize=(12, 6.5), sharex="col", gridspec_kw={"width_ratios": [2, 1]})
    for row, (prefix, scale, unit) in enumerate((("V", 1e-3, "kV"), ("I", 1e-3, "kA"))):
        for col in range(2):
            ax = axes[row, col]
            for phase in "ABC":
                name = prefix + phase
                if name in record.channels:
                    ax.plot(t, record.channels[name] * scale, lw=0.8, color=_COLOURS[phase], label=name)
            ax.axvline(record.trigger_s, color="k", lw=0.6, ls="--")
            ax.grid(True, lw=0.3)
            if col == 0:
                ax.set_ylabel(f"{'voltage' if prefix == 'V' else 'current'} [{unit}]")
            else:
                ax.set_xlim(lo, hi)
        axes[row, 0].legend(loc="upper right", fontsize=8, ncol=3)
    axes[1, 0].set_xlabel("time [s]")
    axes[1, 1].set_xlabel("time [s] (zoom)")
    fig.suptitle(title or f"{record.station}: sampled waveforms, fault at {record.trigger_s:.3f} s")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
