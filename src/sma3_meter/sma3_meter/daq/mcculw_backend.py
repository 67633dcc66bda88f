"""``mcculw`` backend: MCC USB-201 (and other MCC devices) on Windows through the Universal Library
(``mcculw`` Python package over ``cbw64.dll``).

A background continuous scan (``ul.a_in_scan`` with ``ScanOptions.BACKGROUND | CONTINUOUS``) of
inputs ``low..high`` at +-10 V fills a Windows buffer from ``ul.win_buf_alloc`` with raw 16-bit codes.
``ul.get_status(board, FunctionType.AIFUNCTION)`` returns ``(status, cur_count, cur_index)``; the
running ``cur_count`` (a signed 32-bit counter that rolls over) is unwrapped into the total count of
samples transferred (see :mod:`sma3_meter.daq.circular`). Codes are converted to volts with the
linear law given by ``ul.to_eng_units`` for the range. The library is imported only when this backend
starts.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from sma3_meter.daq.base import ChannelScaling, DaqError
from sma3_meter.daq.circular import PolledScanBackend, ScanStoppedError

__all__ = ["McculwBackend"]


class McculwBackend(PolledScanBackend):
    """Continuous background scan of an MCC device through ``mcculw``.

    Parameters
    ----------
    sample_rate_hz : float
        Scan rate per channel, Hz.
    scaling : ChannelScaling
        Input mapping and VT/CT scaling.
    board_num : int
        Board number (InstaCal's, or the one the device is created with when ``discover``).
    discover : bool
        Ignore InstaCal and create the board from the first USB device found.
    buffer_s, poll_s : float
        Circular buffer length and polling period, s.
    **timing
        ``clock`` and ``sleep`` of :class:`~sma3_meter.daq.circular.PolledScanBackend`.
    """

    name = "mcculw"

    def __init__(
        self,
        sample_rate_hz: float,
        scaling: ChannelScaling,
        board_num: int = 0,
        discover: bool = True,
        buffer_s: float = 2.0,
        poll_s: float = 0.005,
        **timing: Any,
    ) -> None:
        super().__init__(sample_rate_hz, scaling, buffer_s, poll_s, **timing)
        self.board_num = board_num
        self.discover = discover
        self._ul: Any = None
        self._enums: Any = None
        self._memhandle: Any = None
        self._created = False
        self._volts_per_code = 0.0
        self._volts_at_zero = 0.0
        self._last_count: int | None = None
        self._total = 0

    def _open(self) -> None:
        try:
            from mcculw import enums, ul
        except ImportError:
            raise DaqError(
                "mcculw backend: the mcculw package (MCC Universal Library) is not installed"
            ) from None
        self._ul, self._enums = ul, enums
        try:
            if self.discover:
                ul.ignore_instacal()
                devices = ul.get_daq_device_inventory(enums.InterfaceType.USB)
                if not devices:
                    raise DaqError("mcculw backend: no MCC DAQ device found on USB")
                ul.create_daq_device(self.board_num, devices[0])
                self._created = True
            rng = enums.ULRange.BIP10VOLTS
            self._volts_at_zero = float(ul.to_eng_units(self.board_num, rng, 0))
            self._volts_per_code = float(ul.to_eng_units(self.board_num, rng, 1)) - self._volts_at_zero
        except ul.ULError as exc:
            self._close()
            raise DaqError(f"mcculw backend: cannot open board {self.board_num}: {exc.message}") from None

    def _start_scan(self) -> np.ndarray:
        ul, enums = self._ul, self._enums
        points = self.buffer_scans * self.scaling.scan_width
        if self._memhandle is None:
            self._memhandle = ul.win_buf_alloc(points)
            if not self._memhandle:
                raise DaqError(f"mcculw backend: win_buf_alloc({points}) failed (out of memory)")
        self._last_count = None
        self._total = 0
        try:
            rate = ul.a_in_scan(
                self.board_num,
                self.scaling.low_channel,
                self.scaling.high_channel,
                points,
                round(self.sample_rate_hz),
                enums.ULRange.BIP10VOLTS,
                self._memhandle,
                enums.ScanOptions.BACKGROUND | enums.ScanOptions.CONTINUOUS,
            )
        except ul.ULError as exc:
            raise DaqError(f"mcculw backend: a_in_scan failed: {exc.message}") from None
        if abs(rate - self.sample_rate_hz) > 1e-3 * self.sample_rate_hz:
            ul.stop_background(self.board_num, enums.FunctionType.AIFUNCTION)
            raise DaqError(f"mcculw backend: board paces {rate} Hz instead of {self.sample_rate_hz} Hz")
        pointer = ctypes.cast(self._memhandle, ctypes.POINTER(ctypes.c_ushort))
        return np.ctypeslib.as_array(pointer, shape=(points,))

    def _status(self) -> tuple[bool, int]:
        ul, enums = self._ul, self._enums
        try:
            status, cur_count, _cur_index = ul.get_status(self.board_num, enums.FunctionType.AIFUNCTION)
        except ul.ULError as exc:
            raise ScanStoppedError(f"get_status: {exc.message}") from None
        if self._last_count is not None:
            self._total += (int(cur_count) - self._last_count) % (1 << 32)
        else:
            self._total = int(cur_count) % (1 << 32)
        self._last_count = int(cur_count)
        return status == enums.Status.RUNNING, self._total

    def _to_volts(self, raw: np.ndarray) -> np.ndarray:
        return self._volts_at_zero + raw.astype(np.float64) * self._volts_per_code

    def _stop_scan(self) -> None:
        if self._ul is not None and self._memhandle is not None:
            self._ul.stop_background(self.board_num, self._enums.FunctionType.AIFUNCTION)

    def _close(self) -> None:
        if self._ul is None:
            return
        if self._memhandle is not None:
            self._ul.win_buf_free(self._memhandle)
            self._memhandle = None
        if self._created:
            self._ul.release_daq_device(self.board_num)
            self._created = False
