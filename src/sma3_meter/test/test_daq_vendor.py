"""The uldaq and mcculw backends against fakes of the vendor APIs at their exact boundary.

The fakes are modules named like the real ones (``uldaq``; ``mcculw``, ``mcculw.ul``,
``mcculw.enums``) injected through ``sys.modules`` in these tests only. They expose the calls the
backends use with the vendor semantics: a hardware-paced continuous scan into the caller's
circular buffer (float volts for uldaq, 16-bit codes of a 12-bit converter for mcculw), transferred
in packets that need not hold whole scans, a running transfer count (uldaq ``current_total_count``;
mcculw ``cur_count``, a signed 32-bit counter that rolls over), the index of the last complete scan
(-1 before the first), wrap-around at the end of the buffer, and a device FIFO overrun that stops the
scan (``ULException`` from ``get_scan_status``; ``Status.IDLE`` for mcculw). Time is a simulated
clock advanced by the backend's ``sleep``.
"""

from __future__ import annotations

import ctypes
import enum
import itertools
import math
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from sma3_meter.daq import ChannelScaling, DaqError, create_backend
from sma3_meter.daq.mcculw_backend import McculwBackend
from sma3_meter.daq.uldaq_backend import UldaqBackend

FS = 3200.0
GAINS = (3000.0, 3000.0, 3000.0, 4000.0, 4000.0, 4000.0)


class Clock:
    """Simulated monotonic clock; ``sleep`` advances it."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def volts(scan: np.ndarray, channel: int) -> np.ndarray:
    """What input ``channel`` carries at scan numbers ``scan`` (a 50 Hz sine, distinct per input)."""
    return 2.0 * np.sin(2 * np.pi * 50.0 * scan / FS + 0.7 * channel) + 0.01 * channel


class Scan:
    """A hardware-paced continuous scan writing into a flat circular buffer, packet by packet."""

    def __init__(
        self, clock: Clock, buffer: np.ndarray, channels: list[int], rate: float, packet: int, to_raw
    ) -> None:  # type: ignore[no-untyped-def]
        self.clock = clock
        self.buffer = buffer
        self.channels = channels
        self.rate = rate
        self.packet = packet
        self.to_raw = to_raw
        self.t0 = clock()
        self.written = 0
        self.running = True
        self.fifo_overrun = False

    def transferred(self) -> int:
        """Samples transferred so far (whole packets), filling the buffer up to there."""
        if self.running:
            due_scans = math.floor((self.clock() - self.t0) * self.rate + 1e-9)
            due = due_scans * len(self.channels) // self.packet * self.packet
            width = len(self.channels)
            k = np.arange(max(self.written, due - self.buffer.size), due)  # older samples are overwritten
            if k.size:
                scan, col = np.divmod(k, width)
                values = volts(scan, np.asarray(self.channels)[col])
                self.buffer[k % self.buffer.size] = self.to_raw(values)
            self.written = max(self.written, due)
        return self.written

    def last_scan_index(self) -> int:
        """Buffer index of the first sample of the last complete scan, -1 before the first."""
        width = len(self.channels)
        scans = self.transferred() // width
        return -1 if scans == 0 else ((scans - 1) * width) % self.buffer.size


# ------------------------------------------------------------------------------------------- uldaq
def make_fake_uldaq(clock: Clock, n_devices: int = 1, packet: int = 31) -> types.ModuleType:
    mod = types.ModuleType("uldaq")

    class InterfaceType(enum.IntFlag):
        USB = 1
        BLUETOOTH = 2
        ETHERNET = 4
        ANY = 7

    class AiInputMode(enum.IntEnum):
        DIFFERENTIAL = 1
        SINGLE_ENDED = 2
        PSEUDO_DIFFERENTIAL = 3

    class Range(enum.IntEnum):
        BIP10VOLTS = 5
        BIP5VOLTS = 4

    class ScanOption(enum.IntFlag):
        DEFAULTIO = 0
        SINGLEIO = 1
        BLOCKIO = 2
        BURSTIO = 4
        CONTINUOUS = 8
        EXTCLOCK = 16

    class AInScanFlag(enum.IntFlag):
        DEFAULT = 0
        NOSCALEDATA = 1
        NOCALIBRATEDATA = 2

    class ScanStatus(enum.IntEnum):
        IDLE = 0
        RUNNING = 1

    class ULError(enum.IntEnum):
        NO_ERROR = 0
        OVERRUN = 29
        DEV_NOT_FOUND = 33

    class ULException(Exception):  # noqa: N818 (the vendor's name)
        def __init__(self, error_code: ULError) -> None:
            super().__init__(f"Error {int(error_code)}: {error_code.name}")
            self.error_code = error_code
            self.error_message = error_code.name

    @dataclass
    class DaqDeviceDescriptor:
        product_name: str
        product_id: int
        dev_interface: InterfaceType
        dev_string: str
        unique_id: str

    @dataclass
    class TransferStatus:
        current_scan_count: int
        current_total_count: int
        current_index: int

    class AiInfo:
        def has_pacer(self) -> bool:
            return True

        def get_num_chans_by_mode(self, mode: AiInputMode) -> int:
            return 8 if mode == AiInputMode.SINGLE_ENDED else 0

        def get_ranges(self, mode: AiInputMode) -> list[Range]:
            return [Range.BIP10VOLTS]

    class AiDevice:
        def __init__(self) -> None:
            self.scan: Scan | None = None
            self.calls: list[tuple] = []

        def get_info(self) -> AiInfo:
            return AiInfo()

        def a_in_scan(
            self,
            low_channel: int,
            high_channel: int,
            input_mode: AiInputMode,
            analog_range: Range,
            samples_per_channel: int,
            rate: float,
            options: ScanOption,
            flags: AInScanFlag,
            data,
        ) -> float:  # type: ignore[no-untyped-def]
            if not mod.connected:
                raise ULException(ULError.DEV_NOT_FOUND)
            assert isinstance(input_mode, AiInputMode) and isinstance(analog_range, Range)
            assert isinstance(options, ScanOption) and isinstance(flags, AInScanFlag)
            channels = list(range(low_channel, high_channel + 1))
            assert len(data) == len(channels) * samples_per_channel
            self.calls.append(("a_in_scan", low_channel, high_channel, samples_per_channel, rate, options))
            buffer = np.ctypeslib.as_array(data)
            self.scan = Scan(clock, buffer, channels, rate, packet, lambda v: v)
            if not options & ScanOption.CONTINUOUS:
                raise AssertionError("the backend must scan continuously")
            return rate

        def get_scan_status(self) -> tuple[ScanStatus, TransferStatus]:
            scan = self.scan
            if scan is None:
                return ScanStatus.IDLE, TransferStatus(0, 0, -1)
            if scan.fifo_overrun:
                scan.running = False
                raise ULException(ULError.OVERRUN)
            total = scan.transferred()
            status = ScanStatus.RUNNING if scan.running else ScanStatus.IDLE
            return status, TransferStatus(total // len(scan.channels), total, scan.last_scan_index())

        def scan_stop(self) -> None:
            self.calls.append(("scan_stop",))
            if self.scan is not None:
                self.scan.transferred()
                self.scan.running = False

    class DaqDevice:
        def __init__(self, descriptor: DaqDeviceDescriptor) -> None:
            self.descriptor = descriptor
            self.ai = AiDevice()
            mod.devices_opened.append(self)

        def get_ai_device(self) -> AiDevice:
            return self.ai

        def connect(self, connection_code: int = 0) -> None:
            mod.connected = True

        def is_connected(self) -> bool:
            return bool(mod.connected)

        def disconnect(self) -> None:
            mod.connected = False

        def release(self) -> None:
            mod.released = True

    def get_daq_device_inventory(interface_type: InterfaceType, number_of_devices: int = 100) -> list:
        assert interface_type & InterfaceType.USB
        return [
            DaqDeviceDescriptor("USB-201", 0x113, InterfaceType.USB, "", f"01ABC{k}")
            for k in range(n_devices)
        ]

    def create_float_buffer(number_of_channels: int, samples_per_channel: int):  # type: ignore[no-untyped-def]
        return (ctypes.c_double * (number_of_channels * samples_per_channel))()

    for name, value in list(locals().items()):
        if not name.startswith("_") and name not in ("mod", "clock", "n_devices", "packet"):
            setattr(mod, name, value)
    mod.connected = False
    mod.released = False
    mod.devices_opened = []
    return mod


# ------------------------------------------------------------------------------------------ mcculw
def make_fake_mcculw(clock: Clock, packet: int = 32) -> tuple[types.ModuleType, ...]:
    pkg = types.ModuleType("mcculw")
    ul = types.ModuleType("mcculw.ul")
    enums = types.ModuleType("mcculw.enums")

    class ScanOptions(enum.IntFlag):
        FOREGROUND = 0
        BACKGROUND = 1
        CONTINUOUS = 2
        SCALEDATA = 0x200000

    class ULRange(enum.IntEnum):
        BIP10VOLTS = 1
        BIP5VOLTS = 0

    class FunctionType(enum.IntEnum):
        AIFUNCTION = 1
        AOFUNCTION = 2

    class Status(enum.IntEnum):
        IDLE = 0
        RUNNING = 1

    class InterfaceType(enum.IntEnum):
        USB = 1
        BLUETOOTH = 2
        ETHERNET = 4
        ANY = 7

    class ErrorCode(enum.IntEnum):
        BADBOARD = 1
        OVERRUN = 29

    class ULError(Exception):
        def __init__(self, errorcode: ErrorCode) -> None:
            super().__init__(errorcode.name)
            self.errorcode = errorcode
            self.message = f"Error {int(errorcode)}: {errorcode.name}"

    @dataclass
    class DaqDeviceDescriptor:
        product_name: str
        unique_id: str

    state = types.SimpleNamespace(boards={}, buffers={}, scan=None, calls=[])

    def ignore_instacal() -> None:
        state.calls.append("ignore_instacal")

    def get_daq_device_inventory(interface_type: InterfaceType, number_of_devices: int = 100) -> list:
        return [DaqDeviceDescriptor("USB-201", "01DEF0")]

    def create_daq_device(board_num: int, descriptor: DaqDeviceDescriptor) -> None:
        state.boards[board_num] = descriptor

    def release_daq_device(board_num: int) -> None:
        state.boards.pop(board_num, None)

    def win_buf_alloc(num_points: int) -> int:
        buf = (ctypes.c_ushort * num_points)()
        handle = ctypes.addressof(buf)
        state.buffers[handle] = buf
        return handle

    def win_buf_free(memhandle: int) -> None:
        del state.buffers[memhandle]

    def to_eng_units(board_num: int, ul_range: ULRange, data_value: int) -> float:
        if board_num not in state.boards:
            raise ULError(ErrorCode.BADBOARD)
        return -10.0 + data_value * 20.0 / 4096

    def _codes(v: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((v + 10.0) / (20.0 / 4096) + 0.5), 0, 4095).astype(np.uint16)

    def a_in_scan(
        board_num: int,
        low_chan: int,
        high_chan: int,
        num_points: int,
        rate: int,
        ul_range: ULRange,
        memhandle: int,
        options: ScanOptions,
    ) -> int:
        if board_num not in state.boards:
            raise ULError(ErrorCode.BADBOARD)
        assert options & ScanOptions.BACKGROUND and options & ScanOptions.CONTINUOUS
        assert isinstance(ul_range, ULRange)
        buf = state.buffers[memhandle]
        assert len(buf) == num_points
        channels = list(range(low_chan, high_chan + 1))
        state.scan = Scan(clock, np.ctypeslib.as_array(buf), channels, rate, packet, _codes)
        state.calls.append(("a_in_scan", low_chan, high_chan, num_points, rate))
        return rate

    def get_status(board_num: int, function_type: FunctionType) -> tuple[Status, int, int]:
        scan = state.scan
        if scan is None:
            return Status.IDLE, 0, -1
        if scan.fifo_overrun:
            scan.running = False  # the board stops the background scan on a FIFO overrun
        total = scan.transferred()
        cur_count = (total + 2**31) % 2**32 - 2**31  # signed 32-bit counter rolling over
        status = Status.RUNNING if scan.running else Status.IDLE
        return status, cur_count, scan.last_scan_index()

    def stop_background(board_num: int, function_type: FunctionType) -> None:
        state.calls.append("stop_background")
        if state.scan is not None:
            state.scan.running = False

    for name, value in list(locals().items()):
        if name in ("ScanOptions", "ULRange", "FunctionType", "Status", "InterfaceType", "ErrorCode"):
            setattr(enums, name, value)
        elif (callable(value) and not name.startswith("_")) or name == "ULError":
            setattr(ul, name, value)
    ul.state = state
    pkg.ul = ul
    pkg.enums = enums
    return pkg, ul, enums


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake_uldaq(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> types.ModuleType:
    mod = make_fake_uldaq(clock)
    monkeypatch.setitem(sys.modules, "uldaq", mod)
    return mod


@pytest.fixture
def fake_mcculw(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> types.ModuleType:
    pkg, ul, enums = make_fake_mcculw(clock)
    monkeypatch.setitem(sys.modules, "mcculw", pkg)
    monkeypatch.setitem(sys.modules, "mcculw.ul", ul)
    monkeypatch.setitem(sys.modules, "mcculw.enums", enums)
    return ul


def _expected(scaling: ChannelScaling, first: int, n: int) -> np.ndarray:
    scans = np.arange(first, first + n)
    return np.vstack([volts(scans, ch) * g for ch, g in zip(scaling.inputs, scaling.gains, strict=True)])


def _blocks(backend, clock: Clock, seconds: float, step: float = 0.013) -> Iterator:  # type: ignore[no-untyped-def]
    end = clock() + seconds
    while clock() < end:
        clock.sleep(step)
        block = backend.read(timeout_s=0.0)
        if block is not None:
            yield block


SCALING = ChannelScaling(inputs=(1, 2, 3, 5, 6, 7), gains=GAINS)


def _check_continuous(blocks: list, scaling: ChannelScaling, tol: float) -> int:
    index = 0
    for b in blocks:
        assert b.first_index == index and b.gap_samples == 0
        assert np.max(np.abs(b.samples - _expected(scaling, b.first_index, b.n_samples))) <= tol
        index += b.n_samples
    return index


def test_uldaq_continuous_scan_with_wraparound(fake_uldaq: types.ModuleType, clock: Clock) -> None:
    backend = UldaqBackend(FS, SCALING, buffer_s=0.1, clock=clock, sleep=clock.sleep)
    backend.start()
    call = fake_uldaq.devices_opened[0].ai.calls[0]
    assert call[:4] == ("a_in_scan", 1, 7, 320) and call[5] == fake_uldaq.ScanOption.CONTINUOUS
    blocks = list(_blocks(backend, clock, 1.0))  # 10 buffer lengths: many wrap-arounds
    total = _check_continuous(blocks, SCALING, 1e-9)
    assert total >= 0.98 * FS
    assert blocks[0].first_time == backend.start_time
    assert backend.overruns == 0
    backend.stop()
    assert fake_uldaq.released and not fake_uldaq.connected


def test_uldaq_buffer_overrun_is_a_reported_gap(fake_uldaq: types.ModuleType, clock: Clock) -> None:
    backend = UldaqBackend(FS, SCALING, buffer_s=0.1, clock=clock, sleep=clock.sleep)
    with backend:
        first = list(_blocks(backend, clock, 0.2))
        end = _check_continuous(first, SCALING, 1e-9)
        clock.sleep(0.35)  # reader late by more than the 0.1 s buffer: data overwritten
        late = backend.read(timeout_s=0.0)
        assert late is not None and late.gap_samples > 0
        assert late.first_index == end + late.gap_samples
        assert np.max(np.abs(late.samples - _expected(SCALING, late.first_index, late.n_samples))) <= 1e-9
        assert backend.overruns == 1


def test_uldaq_fifo_overrun_restarts_scan_and_reports_gap(fake_uldaq: types.ModuleType, clock: Clock) -> None:
    backend = UldaqBackend(FS, SCALING, buffer_s=0.5, clock=clock, sleep=clock.sleep)
    with backend:
        end = _check_continuous(list(_blocks(backend, clock, 0.1)), SCALING, 1e-9)
        ai = fake_uldaq.devices_opened[0].ai
        ai.scan.fifo_overrun = True
        clock.sleep(0.05)
        blocks = list(_blocks(backend, clock, 0.1))
        assert [c[0] for c in ai.calls].count("a_in_scan") == 2
        assert blocks[0].gap_samples > 0 and blocks[0].first_index == end + blocks[0].gap_samples
        for a, b in itertools.pairwise(blocks):
            assert b.first_index == a.first_index + a.n_samples and b.gap_samples == 0


def test_uldaq_missing_library_or_device(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> None:
    monkeypatch.setitem(sys.modules, "uldaq", None)  # import fails as when not installed
    with pytest.raises(DaqError, match=r"^uldaq backend: the uldaq package .* not installed$"):
        create_backend("uldaq", {}).start()
    monkeypatch.setitem(sys.modules, "uldaq", make_fake_uldaq(clock, n_devices=0))
    with pytest.raises(DaqError, match="no MCC DAQ device found"):
        UldaqBackend(FS, SCALING).start()
    monkeypatch.setitem(sys.modules, "uldaq", make_fake_uldaq(clock, n_devices=2))
    with pytest.raises(DaqError, match="no device with unique id 'X'"):
        UldaqBackend(FS, SCALING, unique_id="X").start()
    with pytest.raises(DaqError, match="input 9 requested"):
        UldaqBackend(FS, ChannelScaling(inputs=(0, 1, 2, 3, 4, 9))).start()


def test_mcculw_continuous_scan_and_counter_rollover(fake_mcculw: types.ModuleType, clock: Clock) -> None:
    backend = McculwBackend(FS, SCALING, buffer_s=0.1, clock=clock, sleep=clock.sleep)
    backend.start()
    assert fake_mcculw.state.calls[:2] == ["ignore_instacal", ("a_in_scan", 1, 7, 7 * 320, 3200)]
    blocks = list(_blocks(backend, clock, 1.0))
    lsb = 20.0 / 4096 * max(GAINS)
    total = _check_continuous(blocks, SCALING, lsb / 2 + 1e-9)
    assert total >= 0.98 * FS
    # 27 hours later the signed 32-bit cur_count has rolled over to negative values.
    clock.sleep(27 * 3600.0)
    _, cur_count, _ = fake_mcculw.get_status(0, sys.modules["mcculw.enums"].FunctionType.AIFUNCTION)
    assert cur_count < 0
    late = backend.read(timeout_s=0.0)
    assert late is not None and late.gap_samples > 0
    assert late.first_index + late.n_samples == fake_mcculw.state.scan.written // 7  # whole scans transferred
    assert late.first_index == total + late.gap_samples or late.first_index > total
    assert (
        np.max(np.abs(late.samples - _expected(SCALING, late.first_index, late.n_samples))) <= lsb / 2 + 1e-9
    )
    after = list(_blocks(backend, clock, 0.2))
    index = late.first_index + late.n_samples
    for b in after:
        assert b.first_index == index and b.gap_samples == 0
        assert np.max(np.abs(b.samples - _expected(SCALING, b.first_index, b.n_samples))) <= lsb / 2 + 1e-9
        index += b.n_samples
    backend.stop()
    assert fake_mcculw.state.buffers == {} and fake_mcculw.state.boards == {}


def test_mcculw_scan_stopped_by_overrun_restarts(fake_mcculw: types.ModuleType, clock: Clock) -> None:
    backend = McculwBackend(FS, SCALING, buffer_s=0.5, clock=clock, sleep=clock.sleep)
    with backend:
        end = _check_continuous(list(_blocks(backend, clock, 0.1)), SCALING, 20.0 / 4096 * 4000.0)
        fake_mcculw.state.scan.fifo_overrun = True
        clock.sleep(0.04)
        blocks = list(_blocks(backend, clock, 0.1))
        assert blocks[0].gap_samples > 0 and blocks[0].first_index == end + blocks[0].gap_samples
        assert backend.overruns == 1


def test_mcculw_missing_library_and_bad_board(
    monkeypatch: pytest.MonkeyPatch, fake_mcculw: types.ModuleType
) -> None:
    backend = McculwBackend(FS, SCALING, board_num=3, discover=False)
    with pytest.raises(DaqError, match="cannot open board 3: Error 1: BADBOARD"):
        backend.start()
    monkeypatch.setitem(sys.modules, "mcculw", None)
    with pytest.raises(DaqError, match=r"^mcculw backend: the mcculw package .* not installed$"):
        create_backend("mcculw", {"board_num": 0}).start()


def test_scaling_and_saturation_flags() -> None:
    scaling = ChannelScaling(
        inputs=(0, 1, 2, 3, 4, 5), gains=(1, 2, 3, 4, 5, 6), offsets_v=(0, 0, 0, 0, 0, 1.0)
    )
    scans = np.array([[1.0, 1.0, 9.995, 1.0, 1.0, 2.0], [1.0, -9.999, 1.0, 1.0, 1.0, 2.0]])
    primary, saturated = scaling.apply(scans)
    assert np.allclose(primary[:, 0], [1, 2, 29.985, 4, 5, 6])
    assert saturated == (False, True, True, False, False, False)
    with pytest.raises(DaqError, match="inputs must be distinct"):
        ChannelScaling(inputs=(0, 0, 1, 2, 3, 4))
    with pytest.raises(DaqError, match="gains needs 6 values"):
        ChannelScaling(gains=(1.0,))
    with pytest.raises(DaqError, match="unknown DAQ backend 'nidaq'"):
        create_backend("nidaq", {})
    with pytest.raises(DaqError, match="gains: expected 6 comma-separated numbers"):
        create_backend("uldaq", {"gains": "1,2,x"})
