"""A real uvicorn HTTP server serving an ASGI app from a background thread."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from sma3_testing.errors import ServiceStartError
from sma3_testing.ports import free_port


class UvicornServer:
    """Serve ``app`` with uvicorn on ``127.0.0.1:port`` in a daemon thread.

    Parameters
    ----------
    app
        Any ASGI application (e.g. a FastAPI instance).
    port
        TCP port; a free one is picked when None.
    ssl_certfile, ssl_keyfile
        PEM files; when given the server speaks HTTPS.
    config_kwargs
        Further :class:`uvicorn.Config` arguments.
    """

    def __init__(
        self,
        app: Any,
        port: int | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        **config_kwargs: Any,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_port()
        self.scheme = "https" if ssl_certfile else "http"
        config_kwargs.setdefault("log_level", "warning")
        config_kwargs.setdefault("timeout_graceful_shutdown", 2)
        self.config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
            **config_kwargs,
        )
        self.server = uvicorn.Server(self.config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout_s: float = 15.0) -> UvicornServer:
        """Start serving; returns once uvicorn reports it is started (lifespan done, socket bound).

        Raises
        ------
        ServiceStartError
            When the server thread ends or does not start within ``timeout_s`` seconds.
        """
        self._thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive():
                raise ServiceStartError(
                    f"uvicorn on port {self.port} stopped during start-up (see log above)"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceStartError(f"uvicorn on port {self.port} did not start within {timeout_s} s")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask uvicorn to exit and join its thread. Safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self.server.should_exit = True
        thread.join(timeout=timeout_s)
        if thread.is_alive():
            self.server.force_exit = True
            thread.join(timeout=timeout_s)

    def __enter__(self) -> UvicornServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
