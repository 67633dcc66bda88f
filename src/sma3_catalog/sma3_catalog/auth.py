"""Bearer tokens and who may do what (plain module).

Tokens file (YAML list)::

    - name: alice            # an operator: may do everything
      role: operator
      token: "long-random-string"
    - name: meter M1         # a device: may read and update only its own record and config
      role: device
      device_id: M1
      token_sha256: "hex digest of the token"   # instead of 'token', to keep secrets off disk

Reading the device list, networks, brokers and events needs no token; writes and configuration
reads do.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from sma3_catalog.models import DEVICE_ID_PATTERN


class TokenFileError(ValueError):
    """The tokens file is malformed; the message names the file and entry."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    role: Literal["operator", "device"]
    device_id: str | None = None

    @property
    def is_operator(self) -> bool:
        """True for operators."""
        return self.role == "operator"

    def may_write_device(self, device_id: str) -> bool:
        """Operators: any device; devices: only themselves."""
        return self.is_operator or self.device_id == device_id

    def may_read_config(self, device_id: str) -> bool:
        """Operators: any device; devices: only their own configuration."""
        return self.may_write_device(device_id)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenTable:
    """Known tokens (kept as SHA-256 digests, compared in constant time)."""

    def __init__(self, entries: list[tuple[str, Principal]] | None = None) -> None:
        self._entries: list[tuple[str, Principal]] = list(entries or [])

    def add(self, token: str, principal: Principal) -> None:
        """Accept ``token`` for ``principal``."""
        if len(token) < 8:
            raise TokenFileError(f"token of {principal.name!r} is too short (at least 8 characters)")
        self._entries.append((_digest(token), principal))

    def authenticate(self, token: str) -> Principal | None:
        """Return the principal of ``token`` or None when unknown."""
        digest = _digest(token)
        found = None
        for known, principal in self._entries:
            if hmac.compare_digest(known, digest):
                found = principal
        return found

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def load(cls, path: Path) -> TokenTable:
        """Read a tokens file (see module docstring).

        Raises
        ------
        TokenFileError
            Unreadable YAML, a missing field, an unknown role or a device entry without device_id.
        """
        try:
            data = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise TokenFileError(f"{path}: cannot read tokens file: {exc}") from None
        if not isinstance(data, list):
            raise TokenFileError(f"{path}: expected a YAML list of token entries")
        table = cls()
        for index, entry in enumerate(data):
            where = f"{path}, entry {index + 1}"
            if not isinstance(entry, dict):
                raise TokenFileError(f"{where}: expected a mapping")
            role = entry.get("role")
            if role not in ("operator", "device"):
                raise TokenFileError(f"{where}: role must be 'operator' or 'device', got {role!r}")
            device_id = entry.get("device_id")
            if role == "device" and (
                not isinstance(device_id, str) or not re.match(DEVICE_ID_PATTERN, device_id)
            ):
                raise TokenFileError(f"{where}: a device entry needs a valid device_id, got {device_id!r}")
            name = str(entry.get("name") or device_id or f"entry-{index + 1}")
            principal = Principal(name=name, role=role, device_id=device_id if role == "device" else None)
            if "token" in entry:
                table.add(str(entry["token"]), principal)
            elif "token_sha256" in entry:
                digest = str(entry["token_sha256"]).lower()
                if not re.fullmatch(r"[0-9a-f]{64}", digest):
                    raise TokenFileError(f"{where}: token_sha256 must be 64 hex digits")
                table._entries.append((digest, principal))
            else:
                raise TokenFileError(f"{where}: needs 'token' or 'token_sha256'")
        return table
