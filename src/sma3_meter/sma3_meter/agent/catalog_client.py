"""REST client of the Device Catalog as the meter uses it (httpx, synchronous).

Errors are split in two: :class:`CatalogUnavailableError` (connection refused, timeout, 5xx: try
again later, keep running on the cached configuration) and :class:`CatalogRequestError` (4xx: the
catalog answered and refused; retrying the same request will not help).
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from sma3_catalog.models import Device, DeviceConfig, DeviceRegistration

from .config import parse_config

__all__ = ["API_PREFIX", "CatalogClient", "CatalogRequestError", "CatalogUnavailableError", "api_base"]

API_PREFIX = "/api/v1"
_DEVICES = TypeAdapter(list[Device])


class CatalogUnavailableError(ConnectionError):
    """The catalog could not be reached or failed (timeout, refused connection, HTTP 5xx)."""


class CatalogRequestError(RuntimeError):
    """The catalog refused a request (HTTP 4xx); ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def api_base(url: str) -> str:
    """The catalog's API base URL: ``url`` itself when it ends in ``/api/v1``, else ``url + /api/v1``.

    Raises
    ------
    ValueError
        When ``url`` is not an http(s) URL.
    """
    stripped = url.rstrip("/")
    if not stripped.startswith(("http://", "https://")):
        raise ValueError(f"catalog URL must start with http:// or https://, got {url!r}")
    return stripped if stripped.endswith(API_PREFIX) else stripped + API_PREFIX


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:300]
    return str(body)[:300]


class CatalogClient:
    """Calls of one meter to the catalog.

    Parameters
    ----------
    url
        Catalog base URL (``http://host:port`` or ``.../api/v1``).
    device_id
        The meter's id.
    token
        The meter's bearer token.
    timeout_s
        Connect/read timeout of each request (s).
    verify
        TLS verification: True, False or a CA bundle path (https catalogs).
    """

    def __init__(
        self, url: str, device_id: str, token: str, timeout_s: float = 3.0, verify: bool | str = True
    ) -> None:
        if not token:
            raise ValueError("the meter's catalog token is empty")
        self.base = api_base(url)
        self.device_id = device_id
        self._http = httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"sma3-meter-agent/{device_id}"},
            timeout=timeout_s,
            verify=ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise CatalogUnavailableError(
                f"catalog {self.base} unreachable ({method} {path}): {exc!r}"
            ) from None
        if response.status_code >= 500:
            raise CatalogUnavailableError(
                f"catalog {self.base} failed ({method} {path}): "
                f"HTTP {response.status_code} {_detail(response)}"
            )
        return response

    def _refused(self, method: str, path: str, response: httpx.Response) -> CatalogRequestError:
        return CatalogRequestError(
            f"catalog refused {method} {path}: HTTP {response.status_code} {_detail(response)}",
            response.status_code,
        )

    def fetch_config(self, current_version: int | None = None) -> DeviceConfig | None:
        """``GET /devices/{id}/config``; None when ``current_version`` is still current (HTTP 304).

        Raises
        ------
        CatalogUnavailableError
            Unreachable catalog or server error.
        CatalogRequestError
            401/403 (token), 404 (no configuration for this device), other 4xx.
        AgentConfigError
            The catalog sent a document that is not a valid configuration of this meter.
        """
        path = f"/devices/{self.device_id}/config"
        headers = {"If-None-Match": f'"{current_version}"'} if current_version is not None else {}
        response = self._request("GET", path, headers=headers)
        if response.status_code == 304:
            return None
        if response.status_code != 200:
            raise self._refused("GET", path, response)
        return parse_config(response.content, self.device_id, f"{self.base}{path}")

    def register(self, registration: DeviceRegistration) -> bool:
        """``PUT /devices/{id}``; returns True when the catalog created the record (201).

        Raises
        ------
        CatalogUnavailableError, CatalogRequestError
        """
        path = f"/devices/{self.device_id}"
        response = self._request(
            "PUT",
            path,
            content=registration.model_dump_json(exclude_none=True),
            headers={"Content-Type": "application/json"},
        )
        if response.status_code not in (200, 201, 204):
            raise self._refused("PUT", path, response)
        return response.status_code == 201

    def registered(self) -> bool:
        """True when the catalog lists this meter (``GET /devices/{id}`` is 200, False on 404).

        Raises
        ------
        CatalogUnavailableError, CatalogRequestError
        """
        path = f"/devices/{self.device_id}"
        response = self._request("GET", path)
        if response.status_code == 404:
            return False
        if response.status_code != 200:
            raise self._refused("GET", path, response)
        return True

    def devices(self, feeder: str | None = None, alive: bool | None = None, page: int = 200) -> list[Device]:
        """``GET /devices`` with filters, following the ``Link: rel="next"`` pages.

        Raises
        ------
        CatalogUnavailableError, CatalogRequestError
        """
        params: dict[str, Any] = {"limit": page}
        if feeder is not None:
            params["feeder"] = feeder
        if alive is not None:
            params["alive"] = "true" if alive else "false"
        found: list[Device] = []
        url: str | None = "/devices"
        while url is not None:
            response = self._request("GET", url, params=params if url == "/devices" else None)
            if response.status_code != 200:
                raise self._refused("GET", "/devices", response)
            try:
                found.extend(_DEVICES.validate_json(response.content))
            except ValidationError as exc:
                raise CatalogRequestError(f"catalog sent an invalid device list: {exc}", 200) from None
            nxt = response.links.get("next")
            url = nxt["url"] if nxt else None
        return found
