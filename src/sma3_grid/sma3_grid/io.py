"""Reading and writing the network description contract (DESIGN.md §4).

A description is either a folder (``network.yaml`` + ``buses.csv``, ``lines.csv``, ``loads.csv``,
``switches.csv``, ``meters.csv``) or one ``.xlsx`` workbook with the same tables as sheets named
``network`` (two columns ``key``, ``value``), ``buses``, ``lines``, ``loads``, ``switches``, ``meters``.
``loads``, ``switches`` and ``meters`` may be absent (no such elements). Unknown extra columns are
ignored. Every problem is reported as a :class:`~sma3_grid.model.NetworkError` naming the file (and
sheet), the row (the header is row 1) and the problem.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from sma3_grid.model import Bus, Line, Load, Meter, Network, NetworkError, NetworkInfo, Switch
from sma3_grid.networks import shipped_network_dir, shipped_networks

__all__ = ["NetworkError", "load_network", "resolve_network_source", "save_network"]

_TABLES: tuple[tuple[str, type, str, bool], ...] = (
    # (table name, element class, id column, required)
    ("buses", Bus, "bus_id", True),
    ("lines", Line, "line_id", True),
    ("loads", Load, "bus_id", False),
    ("switches", Switch, "switch_id", False),
    ("meters", Meter, "meter_id", False),
)
_INFO_FIELDS = tuple(f.name for f in fields(NetworkInfo))
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


@dataclass
class _Table:
    """Rows of one table as read from a file: display name, header and (row number, values)."""

    display: str
    header: list[str]
    rows: list[tuple[int, dict[str, Any]]]


# ---------------------------------------------------------------------------------------- reading
def resolve_network_source(source: str | Path) -> Path:
    """Return the path of a description: an existing folder/.xlsx, or the folder of a shipped network.

    Raises
    ------
    NetworkError
        If ``source`` is neither an existing path nor the name of a shipped network.
    """
    path = Path(source)
    if path.exists():
        return path
    if isinstance(source, str) and source in shipped_networks():
        return shipped_network_dir(source)
    raise NetworkError(
        f"no network description at '{source}' and no shipped network of that name "
        f"(shipped: {', '.join(shipped_networks())})"
    )


def load_network(source: str | Path) -> Network:
    """Read and validate a network description and orient it.

    Parameters
    ----------
    source : str or Path
        Name of a shipped network (``mini``, ``turin22``), a description folder or an ``.xlsx`` file.

    Returns
    -------
    Network
        The oriented network with the normally-open switches open.

    Raises
    ------
    NetworkError
        The message names file, row and problem (missing column, bad value, unknown bus, loop in the
        closed network, islanded bus, non-positive length, duplicate id...).
    """
    path = resolve_network_source(source)
    if path.is_dir():
        info_pairs, tables = _read_folder(path)
    elif path.suffix.lower() == ".xlsx":
        info_pairs, tables = _read_xlsx(path)
    else:
        raise NetworkError(f"'{path}' is neither a description folder nor an .xlsx workbook")
    return _build(info_pairs, tables)


def _read_folder(folder: Path) -> tuple[tuple[str, list[tuple[int | None, str, Any]]], dict[str, _Table]]:
    yaml_path = folder / "network.yaml"
    if not yaml_path.is_file():
        raise NetworkError("missing file network.yaml", file=str(folder))
    try:
        data = yaml.load(yaml_path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise NetworkError(f"not valid YAML: {exc}", file=str(yaml_path)) from exc
    if not isinstance(data, dict):
        raise NetworkError("expected a mapping of keys to values", file=str(yaml_path))
    pairs: list[tuple[int | None, str, Any]] = [(None, str(k), v) for k, v in data.items()]
    info_pairs = (str(yaml_path), pairs)
    tables: dict[str, _Table] = {}
    for name, _cls, _id, required in _TABLES:
        csv_path = folder / f"{name}.csv"
        if not csv_path.is_file():
            if required:
                raise NetworkError(f"missing file {name}.csv", file=str(folder))
            continue
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip() for h in next(reader, [])]
            rows = [
                (n, dict(zip(header, values, strict=False)))
                for n, values in enumerate(reader, start=2)
                if any(v.strip() for v in values)
            ]
        tables[name] = _Table(str(csv_path), header, rows)
    return info_pairs, tables


def _read_xlsx(path: Path) -> tuple[tuple[str, list[tuple[int | None, str, Any]]], dict[str, _Table]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for unreadable files
        raise NetworkError(f"cannot read workbook: {exc}", file=str(path)) from exc
    try:
        sheets = {ws.title: ws for ws in wb.worksheets}
        if "network" not in sheets:
            raise NetworkError("missing sheet 'network'", file=str(path))
        info_rows = list(_sheet_rows(sheets["network"]))
        info_display = f"{path} [network]"
        info_pairs: list[tuple[int | None, str, Any]] = []
        for n, values in info_rows[1:]:
            if values and values[0] not in (None, ""):
                info_pairs.append((n, str(values[0]).strip(), values[1] if len(values) > 1 else None))
        tables: dict[str, _Table] = {}
        for name, _cls, _id, required in _TABLES:
            if name not in sheets:
                if required:
                    raise NetworkError(f"missing sheet '{name}'", file=str(path))
                continue
            rows_iter = list(_sheet_rows(sheets[name]))
            header = [str(h).strip() if h is not None else "" for h in (rows_iter[0][1] if rows_iter else [])]
            rows = [(n, dict(zip(header, values, strict=False))) for n, values in rows_iter[1:]]
            tables[name] = _Table(f"{path} [{name}]", header, rows)
    finally:
        wb.close()
    return (info_display, info_pairs), tables


def _sheet_rows(ws: Any) -> Iterator[tuple[int, list[Any]]]:
    for n, values in enumerate(ws.iter_rows(values_only=True), start=1):
        vals = list(values)
        if n > 1 and all(v is None or (isinstance(v, str) and not v.strip()) for v in vals):
            continue
        yield n, vals


def _build(info_pairs: tuple[str, list[tuple[int | None, str, Any]]], tables: dict[str, _Table]) -> Network:
    info = _parse_info(*info_pairs)
    elements: dict[str, list[Any]] = {}
    rows_of: dict[str, dict[str, int]] = {}
    displays: dict[str, str] = {}
    for name, cls, id_col, _required in _TABLES:
        table = tables.get(name)
        if table is None:
            elements[name] = []
            continue
        displays[f"{name}.csv"] = table.display
        parsers = _PARSERS[cls]
        missing = [col for col in parsers if col not in table.header]
        if missing:
            raise NetworkError(f"missing column '{missing[0]}'", file=table.display, row=1)
        items = []
        seen: dict[str, int] = {}
        for row_no, values in table.rows:
            kwargs = {
                col: parse(values.get(col), col, table.display, row_no) for col, parse in parsers.items()
            }
            item = cls(**kwargs)
            key = kwargs[id_col]
            if key in seen:
                raise NetworkError(
                    f"duplicate id '{key}' in column {id_col} (first at row {seen[key]})",
                    file=table.display,
                    row=row_no,
                )
            seen[key] = row_no
            items.append(item)
        elements[name] = items
        rows_of[f"{name}.csv"] = seen
    try:
        return Network(
            info,
            elements["buses"],
            elements["lines"],
            elements["loads"],
            elements["switches"],
            elements["meters"],
        )
    except NetworkError as exc:
        if exc.file == "network.yaml":
            raise exc.located(info_pairs[0], None) from None
        if exc.file in displays:
            row = rows_of[exc.file].get(exc.element) if exc.element is not None else None
            raise exc.located(displays[exc.file], row) from None
        raise


def _parse_info(display: str, pairs: list[tuple[int | None, str, Any]]) -> NetworkInfo:
    values: dict[str, Any] = {}
    rows: dict[str, int | None] = {}
    for row, key, value in pairs:
        values[key] = value
        rows[key] = row
    kwargs: dict[str, Any] = {}
    for name in _INFO_FIELDS:
        if name not in values:
            raise NetworkError(f"missing key '{name}'", file=display)
        parse = _text if name in ("name", "source_bus") else _number
        kwargs[name] = parse(values[name], name, display, rows[name])
    return NetworkInfo(**kwargs)


def _text(value: Any, col: str, file: str, row: int | None) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise NetworkError(f"bad value (empty) in column {col}", file=file, row=row)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _number(value: Any, col: str, file: str, row: int | None) -> float:
    if isinstance(value, bool):
        raise NetworkError(f"bad value '{value}' in column {col} (expected a number)", file=file, row=row)
    if isinstance(value, int | float):
        out = float(value)
    else:
        text = "" if value is None else str(value).strip()
        try:
            out = float(text)
        except ValueError:
            shown = text if text else "(empty)"
            raise NetworkError(
                f"bad value '{shown}' in column {col} (expected a number)", file=file, row=row
            ) from None
    if not math.isfinite(out):
        raise NetworkError(
            f"bad value '{value}' in column {col} (expected a finite number)", file=file, row=row
        )
    return out


def _boolean(value: Any, col: str, file: str, row: int | None) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = "" if value is None else str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise NetworkError(f"bad value '{value}' in column {col} (expected true or false)", file=file, row=row)


def _parsers_for(cls: type) -> dict[str, Callable[[Any, str, str, int | None], Any]]:
    out: dict[str, Callable[[Any, str, str, int | None], Any]] = {}
    for f in fields(cls):
        if f.type in ("float", float):
            out[f.name] = _number
        elif f.type in ("bool", bool):
            out[f.name] = _boolean
        else:
            out[f.name] = _text
    return out


_PARSERS = {cls: _parsers_for(cls) for _name, cls, _id, _req in _TABLES}
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# ---------------------------------------------------------------------------------------- writing
def save_network(net: Network, path: str | Path) -> None:
    """Write a network in the description format.

    Parameters
    ----------
    net : Network
        The network; its normally-open flags are written as they are (the current switch states are
        not part of the description).
    path : str or Path
        A path ending in ``.xlsx`` writes one workbook; anything else is a folder (created if needed)
        that receives ``network.yaml`` and the CSV tables.
    """
    path = Path(path)
    info = {name: getattr(net.info, name) for name in _INFO_FIELDS}
    tables: dict[str, Iterable[Any]] = {
        "buses": net.buses.values(),
        "lines": net.lines.values(),
        "loads": net.loads.values(),
        "switches": net.switches.values(),
        "meters": net.meters.values(),
    }
    if path.suffix.lower() == ".xlsx":
        _write_xlsx(path, info, tables)
    else:
        _write_folder(path, info, tables)


def _cell_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _write_folder(folder: Path, info: dict[str, Any], tables: Mapping[str, Iterable[Any]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "network.yaml").open("w", encoding="utf-8") as fh:
        yaml.safe_dump(info, fh, sort_keys=False)
    for name, cls, _id, _req in _TABLES:
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow([f.name for f in fields(cls)])
            for item in tables[name]:
                writer.writerow([_cell_text(v) for v in astuple(item)])


def _write_xlsx(path: Path, info: dict[str, Any], tables: Mapping[str, Iterable[Any]]) -> None:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("network")
    ws.append(["key", "value"])
    for key, value in info.items():
        ws.append([key, value])
    for name, cls, _id, _req in _TABLES:
        ws = wb.create_sheet(name)
        ws.append([f.name for f in fields(cls)])
        for item in tables[name]:
            ws.append(list(astuple(item)))
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
