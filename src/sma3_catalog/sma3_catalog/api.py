"""FastAPI application (thin HTTP shell over :class:`~sma3_catalog.service.CatalogService`).

All resources live under ``/api/v1``; ``/healthz``, ``/metrics``, ``/openapi.json`` and ``/docs``
at the root. Authentication is a bearer token (see :mod:`sma3_catalog.auth`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sma3_catalog.auth import Principal
from sma3_catalog.configuration import (
    ConfigError,
    NoConfigurationError,
    VersionConflictError,
)
from sma3_catalog.models import (
    DEVICE_ID_PATTERN,
    BrokerInfo,
    ConfigSpec,
    Device,
    DeviceConfig,
    DevicePatch,
    DeviceRegistration,
    ErrorBody,
    EventType,
    Health,
    NetworkDescription,
    Role,
    StoredConfig,
)
from sma3_catalog.networks import UnknownNetworkError, describe
from sma3_catalog.registry import DeviceNotFoundError, IndexUnavailableError, InvalidPatchError, to_datetime
from sma3_catalog.service import CatalogService
from sma3_grid.model import NetworkError

API_PREFIX = "/api/v1"
log = logging.getLogger(__name__)
_NAME_QUERY = r"^[^\x00-\x1f\x7f]{1,128}$"

DeviceIdPath = Annotated[str, Path(pattern=DEVICE_ID_PATTERN, description="Device id.")]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Malformed header",
        401: "Missing or invalid bearer token",
        403: "Token not allowed for this device",
        404: "Not found",
        409: "Configuration cannot be rendered",
        412: "Precondition (If-Match) failed",
        422: "Invalid input",
        503: "Catalog misconfigured or database unavailable",
    }
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}


def get_service(request: Request) -> CatalogService:
    """The service behind this app (dependency)."""
    service: CatalogService = request.app.state.service
    return service


Service = Annotated[CatalogService, Depends(get_service)]
_bearer = HTTPBearer(auto_error=False, description="Operator or device token.")


def get_principal(
    service: Service, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal | None:
    """The caller, None without a token; 401 for an unknown token."""
    if credentials is None:
        return None
    principal = service.tokens.authenticate(credentials.credentials)
    if principal is None:
        raise HTTPException(401, "invalid bearer token", headers={"WWW-Authenticate": "Bearer"})
    return principal


def require_principal(principal: Annotated[Principal | None, Depends(get_principal)]) -> Principal:
    """An authenticated caller (401 otherwise)."""
    if principal is None:
        raise HTTPException(
            401, "this operation needs a bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return principal


def require_operator(principal: Annotated[Principal, Depends(require_principal)]) -> Principal:
    """An operator (403 for device tokens)."""
    if not principal.is_operator:
        raise HTTPException(403, f"{principal.name!r} is not an operator")
    return principal


Caller = Annotated[Principal, Depends(require_principal)]
Operator = Annotated[Principal, Depends(require_operator)]


def _check_device_access(principal: Principal, device_id: str) -> None:
    if not principal.may_write_device(device_id):
        raise HTTPException(403, f"token of {principal.name!r} may not act on device {device_id!r}")


def _parse_if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = re.fullmatch(r'\s*(?:W/)?"?(\d{1,9})"?\s*', value)
    if match is None:
        raise HTTPException(400, f'If-Match must be a configuration version ETag like "3", got {value!r}')
    return int(match.group(1))


class MetricsMiddleware:
    """Counts requests and their duration by route template (pure ASGI, streaming-safe)."""

    def __init__(self, app: Callable[..., Awaitable[None]], service: CatalogService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [0]

        async def send_wrapper(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            metrics = self.service.metrics
            metrics.requests.labels(scope.get("method", ""), template, str(status[0])).inc()
            metrics.request_seconds.labels(template).observe(time.perf_counter() - start)


def create_app(service: CatalogService, manage_lifecycle: bool = True, freeze_gc: bool = False) -> FastAPI:
    """Build the FastAPI app serving ``service``.

    Parameters
    ----------
    manage_lifecycle
        Start the service's background work at app start-up and stop it at shutdown.
    freeze_gc
        After start-up, move every object then alive (modules, schemas, the loaded device index)
        out of the garbage collector's generations (:func:`gc.freeze`), so that the full
        collections that heartbeat load triggers scan only newer objects and pause the server
        for milliseconds instead of a large part of a second. For the process entry point
        (:mod:`sma3_catalog.cli`), not for apps sharing a process.
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            service.start()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if manage_lifecycle:
                service.stop()

    app = FastAPI(
        title="sma3 Device Catalog",
        version="1.0.0",
        description="Live list of the meters connected to the grid, their end-points and configuration.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(MetricsMiddleware, service=service)
    _install_error_handlers(app)
    router = APIRouter(prefix=API_PREFIX)

    # ------------------------------------------------------------------ devices
    @router.put(
        "/devices/{device_id}",
        status_code=201,
        response_model=Device,
        summary="Register a device or replace its record",
        responses={
            201: {"description": "Registered"},
            204: {"description": "Record replaced"},
            **_errors(400, 401, 403, 422),
        },
    )
    def put_device(
        device_id: DeviceIdPath, body: DeviceRegistration, service: Service, caller: Caller
    ) -> Response:
        _check_device_access(caller, device_id)
        device, created = service.registry.put(device_id, body)
        if not created:
            return Response(status_code=204)
        return JSONResponse(
            device.model_dump(mode="json"),
            status_code=201,
            headers={"Location": f"{API_PREFIX}/devices/{device_id}"},
        )

    @router.get("/devices/{device_id}", response_model=Device, responses=_errors(404, 422))
    def get_device(device_id: DeviceIdPath, service: Service) -> Device:
        """One device record."""
        return service.registry.get(device_id)

    @router.patch("/devices/{device_id}", response_model=Device, responses=_errors(400, 401, 403, 404, 422))
    def patch_device(device_id: DeviceIdPath, body: DevicePatch, service: Service, caller: Caller) -> Device:
        """Change some fields (JSON merge patch); refreshes the record's expiry."""
        _check_device_access(caller, device_id)
        return service.registry.patch(device_id, body)

    @router.delete(
        "/devices/{device_id}",
        status_code=204,
        response_class=Response,
        responses=_errors(401, 403, 404, 422),
    )
    def delete_device(device_id: DeviceIdPath, service: Service, caller: Caller) -> Response:
        """Remove a record (event ``deleted``)."""
        _check_device_access(caller, device_id)
        service.registry.delete(device_id)
        return Response(status_code=204)

    @router.get(
        "/devices",
        response_model=list[Device],
        responses={
            200: {"description": 'A page of records; `Link: <...>; rel="next"` when more follow'},
            **_errors(422),
        },
    )
    async def list_devices(
        request: Request,
        service: Service,
        feeder: Annotated[str | None, Query(pattern=_NAME_QUERY, description="Feeder id.")] = None,
        role: Role | None = None,
        algorithm: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,63}$")] = None,
        alive: bool | None = None,
        offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        """Records matching all filters, ordered by id, ``limit`` per page from ``offset``.

        Runs on the event loop, not in the thread pool: the page comes from the registry's
        in-memory index (no SQL unless its last replay of the event log is stale), and under
        heartbeat load each hand-off between the loop and a pool thread waits for the GIL. When
        the index needs a replay first (SQL), the query goes to the thread pool: a database wait
        must never stall the loop, and with it every other request.
        """
        args = (feeder, role, algorithm, alive, offset, limit)
        if service.registry.index_needs_replay():
            page, more = await run_in_threadpool(service.registry.query_json, *args)
        else:
            page, more = service.registry.query_json(*args)
        headers = {}
        if more:
            next_url = request.url.include_query_params(offset=offset + limit, limit=limit)
            headers["Link"] = f'<{next_url}>; rel="next"'
        return Response(page, media_type="application/json", headers=headers)

    # ------------------------------------------------------------------ configuration
    def _config_response(config: DeviceConfig) -> JSONResponse:
        return JSONResponse(config.model_dump(mode="json"), headers={"ETag": f'"{config.version}"'})

    @router.get(
        "/devices/{device_id}/config",
        response_model=DeviceConfig,
        responses={
            304: {"description": "Not modified (If-None-Match)"},
            **_errors(401, 403, 404, 409, 422, 503),
        },
    )
    def get_config(
        device_id: DeviceIdPath,
        service: Service,
        caller: Caller,
        version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="A stored version.")] = None,
        if_none_match: Annotated[str | None, Header(max_length=64)] = None,
    ) -> Response:
        """The configuration a device applies (newest version unless ``version`` is given)."""
        _check_device_access(caller, device_id)
        stored = service.configs.get(device_id, version)
        if version is not None and stored is None:
            raise HTTPException(404, f"configuration version {version} of {device_id!r} does not exist")
        config = service.configurator.render(device_id, stored)
        if if_none_match is not None and if_none_match.strip() in (
            f'"{config.version}"',
            f'W/"{config.version}"',
        ):
            return Response(status_code=304, headers={"ETag": f'"{config.version}"'})
        return _config_response(config)

    @router.put(
        "/devices/{device_id}/config",
        response_model=DeviceConfig,
        responses=_errors(400, 401, 403, 412, 422, 503),
    )
    def put_config(
        device_id: DeviceIdPath,
        spec: ConfigSpec,
        service: Service,
        operator: Operator,
        if_match: Annotated[
            str | None,
            Header(
                pattern=r'^\s*(\*|(W/)?"?\d{1,9}"?)\s*$', description='Expected current version, e.g. "3".'
            ),
        ] = None,
    ) -> Response:
        """Store a new configuration version (operators only); announced as event ``configured``."""
        expected = _parse_if_match(if_match)
        try:
            service.configurator.check(spec)
            preview = StoredConfig(
                device_id=device_id,
                version=1,
                created=to_datetime(time.time()),
                author=operator.name,
                spec=spec,
            )
            service.configurator.render(device_id, preview)
        except ConfigError as exc:
            raise HTTPException(422, str(exc)) from None
        stored = service.configs.put(device_id, spec, operator.name, expected)
        service.registry.record_config_event(device_id, stored.version)
        return _config_response(service.configurator.render(device_id, stored))

    @router.get(
        "/devices/{device_id}/config/versions",
        response_model=list[StoredConfig],
        responses=_errors(401, 403, 422),
    )
    def config_versions(device_id: DeviceIdPath, service: Service, caller: Caller) -> list[StoredConfig]:
        """Every stored configuration version of a device, oldest first."""
        _check_device_access(caller, device_id)
        return service.configs.versions(device_id)

    # ------------------------------------------------------------------ brokers, networks
    @router.get("/brokers", response_model=list[BrokerInfo])
    def list_brokers(service: Service) -> list[BrokerInfo]:
        """Brokers devices may be told to use (credentials are references, never secrets)."""
        return list(service.configurator.brokers.values())

    @router.get("/networks", response_model=list[str])
    def list_networks(service: Service) -> list[str]:
        """Names of the served networks."""
        return service.networks.names()

    @router.get("/networks/{name}", response_model=NetworkDescription, responses=_errors(404, 422, 503))
    def get_network(
        name: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")],
        service: Service,
        feeder: Annotated[str | None, Query(pattern=_NAME_QUERY, description="Only this feeder.")] = None,
    ) -> NetworkDescription:
        """A served network as JSON of the network description contract."""
        net = service.networks.get(name)
        if feeder is not None and feeder not in net.feeders():
            raise HTTPException(404, f"network {name!r} has no feeder {feeder!r} (feeders: {net.feeders()})")
        return describe(net, feeder)

    # ------------------------------------------------------------------ events
    @router.get(
        "/events",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
            **_errors(422),
        },
    )
    async def events(
        request: Request,
        service: Service,
        last_event_id: Annotated[
            str | None,
            Header(alias="Last-Event-ID", pattern=r"^\d{1,18}$", description="Replay after this id."),
        ] = None,
        type: Annotated[list[EventType] | None, Query(description="Only these event types.")] = None,
    ) -> StreamingResponse:
        """Changes as Server-Sent Events (``id``, ``event`` = type, ``data`` = Event JSON).

        Without ``Last-Event-ID`` the stream starts with the next change; with it, retained events
        after that id are replayed first.
        """
        start = (
            int(last_event_id)
            if last_event_id is not None
            else await run_in_threadpool(service.registry.last_event_id)
        )
        wanted = set(type) if type else None
        keepalive_s = service.settings.sse_keepalive_s

        async def stream() -> AsyncIterator[str]:
            last = start
            seen = -1
            last_poll = last_send = 0.0
            yield "retry: 1000\n\n"
            while not await request.is_disconnected():
                now = time.monotonic()
                if service.event_counter != seen or now - last_poll > 1.0:
                    seen = service.event_counter
                    last_poll = now
                    batch = await run_in_threadpool(service.registry.events_after, last)
                    for ev in batch:
                        last = ev.id
                        if wanted is None or ev.type in wanted:
                            yield f"id: {ev.id}\nevent: {ev.type}\ndata: {ev.model_dump_json()}\n\n"
                            last_send = now
                    if batch:
                        continue
                if now - last_send > keepalive_s:
                    yield ": keep-alive\n\n"
                    last_send = now
                await asyncio.sleep(0.05)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    app.include_router(router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            _narrow_to_served(schema, service)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    # ------------------------------------------------------------------ operations
    @app.get("/healthz", response_model=Health, responses={503: {"model": Health}})
    def healthz(service: Service) -> JSONResponse:
        """Database reachable and MQTT link state."""
        try:
            devices = service.registry.count()
            database = True
        except Exception:  # any database failure means "unhealthy": logged and reported with 503
            log.exception("health check: database query failed")
            devices, database = 0, False
        mqtt = service.mqtt.connected.is_set() if service.mqtt is not None else None
        status: Literal["ok", "degraded"] = "ok" if database and mqtt is not False else "degraded"
        body = Health(status=status, database=database, mqtt=mqtt, devices=devices)
        return JSONResponse(body.model_dump(mode="json"), status_code=200 if database else 503)

    @app.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    def metrics(service: Service) -> Response:
        """Prometheus metrics."""
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app


def _json_safe(value: Any) -> Any:
    """Replace non-finite floats (which JSON cannot carry) by their text, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """422 naming each invalid field; echoed inputs are made JSON-safe (e.g. ``Infinity``)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else [{"msg": str(exc)}]
    return JSONResponse({"detail": _json_safe(jsonable_encoder(errors))}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette errors; a 405 lists in ``Allow`` every method the path supports (all routes)."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed: set[str] = set()
        for route in request.app.router.routes:
            if isinstance(route, APIRoute) and route.path_regex.match(request.url.path):
                allowed.update(route.methods or ())
        headers["Allow"] = ", ".join(sorted(allowed))
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


def _narrow_to_served(schema: dict[str, Any], service: CatalogService) -> None:
    """Make the OpenAPI document list the brokers and networks this instance serves (enums)."""
    components = schema["components"]["schemas"]

    def choice(names: list[str]) -> dict[str, Any]:
        return {"anyOf": [{"type": "string", "enum": names}, {"type": "null"}]}

    brokers = service.configurator.brokers.values()
    selection = components["BrokerSelection"]["properties"]
    for purpose in ("data", "management"):
        selection[purpose].update(choice(sorted(b.name for b in brokers if b.purpose == purpose)))
    components["ConfigSpec"]["properties"]["network"].update(choice(service.networks.names()))
    for parameter in schema["paths"][f"{API_PREFIX}/networks/{{name}}"]["get"]["parameters"]:
        if parameter["name"] == "name":
            parameter["schema"] = {"type": "string", "enum": service.networks.names(), "title": "Name"}


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """503 when the database cannot be reached (the error is logged with its cause)."""
    log.error("database unavailable: %s", exc)
    return JSONResponse({"detail": "database unavailable, retry later"}, status_code=503)


def _install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(OperationalError, _database_unavailable)
    app.add_exception_handler(IndexUnavailableError, _database_unavailable)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    def handler(status: int) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
        async def handle(_request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)

        return handle

    app.add_exception_handler(DeviceNotFoundError, handler(404))
    app.add_exception_handler(NoConfigurationError, handler(404))
    app.add_exception_handler(UnknownNetworkError, handler(404))
    app.add_exception_handler(InvalidPatchError, handler(422))
    app.add_exception_handler(ConfigError, handler(409))
    app.add_exception_handler(VersionConflictError, handler(412))
    app.add_exception_handler(NetworkError, handler(503))
