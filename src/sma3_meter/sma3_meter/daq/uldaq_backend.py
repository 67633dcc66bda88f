"""``uldaq`` backend: MCC USB-201 (and other MCC devices) on Linux / Raspberry Pi through MCC's
Universal Library for Linux (``uldaq`` Python package over ``libuldaq``).

The analog input subsystem runs a hardware-paced continuous scan (``AiDevice.a_in_scan`` with
``ScanOption.CONTINUOUS``; uldaq scans always run in the background) of inputs ``low..high``,
single-ended, +-10 V, into a float buffer from ``create_float_buffer`` (values in volts). The buffer
is polled with ``AiDevice.get_scan_status()``, whose ``TransferStatus.current_total_count`` is the
running count of samples transferred (see :mod:`sma3_meter.daq.circular`). The library is imported
only when this backend starts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sma3_meter.daq.base import ChannelScaling, DaqError
from sma3_meter.daq.circular import PolledScanBackend, ScanStoppedError

__all__ = ["UldaqBackend"]


class UldaqBackend(PolledScanBackend):
    """Continuous scan of an MCC device through ``uldaq``.

    Parameters
    ----------
    sample_rate_hz : float
        Scan rate per channel, Hz (USB-201: 100 kS/s aggregate).
    scaling : ChannelScaling
        Input mapping and VT/CT scaling.
    unique_id : str
        Device serial (``DaqDeviceDescriptor.unique_id``); empty: the first device found.
    buffer_s, poll_s : float
        Circular buffer length and polling period, s.
    **timing
        ``clock`` and ``sleep`` of :class:`~sma3_meter.daq.circular.PolledScanBackend`.
    """

    name = "uldaq"

    def __init__(
        self,
        sample_rate_hz: float,
        scaling: ChannelScaling,
        unique_id: str = "",
        buffer_s: float = 2.0,
        poll_s: float = 0.005,
        **timing: Any,
    ) -> None:
        super().__init__(sample_rate_hz, scaling, buffer_s, poll_s, **timing)
        self.unique_id = unique_id
        self._ul: Any = None
        self._device: Any = None
        self._ai: Any = None
        self._data: Any = None

    def _open(self) -> None:
        try:
            import uldaq
        except ImportError:
            raise DaqError("uldaq backend: the uldaq package (MCC UL for Linux) is not installed") from None
        self._ul = uldaq
        try:
            descriptors = uldaq.get_daq_device_inventory(uldaq.InterfaceType.USB)
        except uldaq.ULException as exc:
            raise DaqError(f"uldaq backend: device inventory failed: {exc}") from None
        if not descriptors:
            raise DaqError("uldaq backend: no MCC DAQ device found on USB")
        chosen = [d for d in descriptors if not self.unique_id or d.unique_id == self.unique_id]
        if not chosen:
            found = ", ".join(f"{d.product_name} {d.unique_id}" for d in descriptors)
            raise DaqError(f"uldaq backend: no device with unique id {self.unique_id!r} (found: {found})")
        try:
            self._device = uldaq.DaqDevice(chosen[0])
            self._ai = self._device.get_ai_device()
            if self._ai is None:
                raise DaqError(f"uldaq backend: {chosen[0].product_name} has no analog input subsystem")
            info = self._ai.get_info()
            if not info.has_pacer():
                raise DaqError(f"uldaq backend: {chosen[0].product_name} has no hardware-paced analog input")
            available = info.get_num_chans_by_mode(uldaq.AiInputMode.SINGLE_ENDED)
            if self.scaling.high_channel >= available:
                raise DaqError(
                    f"uldaq backend: input {self.scaling.high_channel} requested, "
                    f"{chosen[0].product_name} has {available} single-ended inputs"
                )
            self._device.connect()
        except uldaq.ULException as exc:
            self._close()
            raise DaqError(f"uldaq backend: cannot open {chosen[0].product_name}: {exc}") from None

    def _start_scan(self) -> np.ndarray:
        ul = self._ul
        width = self.scaling.scan_width
        self._data = ul.create_float_buffer(width, self.buffer_scans)
        try:
            rate = self._ai.a_in_scan(
                self.scaling.low_channel,
                self.scaling.high_channel,
                ul.AiInputMode.SINGLE_ENDED,
                ul.Range.BIP10VOLTS,
                self.buffer_scans,
                self.sample_rate_hz,
                ul.ScanOption.CONTINUOUS,
                ul.AInScanFlag.DEFAULT,
                self._data,
            )
        except ul.ULException as exc:
            raise DaqError(f"uldaq backend: a_in_scan failed: {exc}") from None
        if abs(rate - self.sample_rate_hz) > 1e-3 * self.sample_rate_hz:
            self._ai.scan_stop()
            raise DaqError(f"uldaq backend: device paces {rate} Hz instead of {self.sample_rate_hz} Hz")
        return np.ctypeslib.as_array(self._data)

    def _status(self) -> tuple[bool, int]:
        ul = self._ul
        try:
            status, transfer = self._ai.get_scan_status()
        except ul.ULException as exc:
            raise ScanStoppedError(f"get_scan_status: {exc}") from None
        return status == ul.ScanStatus.RUNNING, int(transfer.current_total_count)

    def _to_volts(self, raw: np.ndarray) -> np.ndarray:
        return raw

    def _stop_scan(self) -> None:
        if self._ai is not None:
            try:
                status, _ = self._ai.get_scan_status()
                if status == self._ul.ScanStatus.RUNNING:
                    self._ai.scan_stop()
            except self._ul.ULException:
                self._ai.scan_stop()

    def _close(self) -> None:
        if self._device is not None:
            try:
                if self._device.is_connected():
                    self._device.disconnect()
            finally:
                self._device.release()
                self._device = None
                self._ai = None
