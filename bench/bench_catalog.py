#!/usr/bin/env python3
"""Benchmark of the Device Catalog under load (issue 6).

Starts its own mosquitto, database (SQLite file or throw-away PostgreSQL cluster) and a catalog
server process (``sma3_catalog.cli``) on loopback; pre-registers N devices (bulk, through the
registry core), then for ``--duration`` seconds:

- heartbeats: every device publishes a DeviceStatus every ``--interval`` s on its status topic
  (a few MQTT connections publish on behalf of many device ids, evenly spread in time);
- queries: ``GET /api/v1/devices`` with random filters (feeder, role, algorithm, alive; limit 100)
  at ``--query-rate`` requests/s, issued on schedule (open loop) by one asyncio client in its own
  process, over a few keep-alive connections opened before the clock starts. The client is a
  minimal HTTP/1.1 one (:class:`LeanHttpClient`): with httpx the load generator itself needed most
  of a core and, on this 2-core machine, its own scheduling delays were measured as query latency.
  The client's CPU share and event-loop delays are printed so that this stays visible;
- expiry probes: ``--probes`` extra devices that never heartbeat, with TTLs spread over the run;
  their ``expired`` events are received on the MQTT events topic.

Prints the heartbeat processing rate (from the catalog's own counters), query latency p50/p99
(target p99 <= 50 ms) and expiry lag (event time - expires, and reception - expires).

Usage::

    .venv/bin/python bench/bench_catalog.py --db sqlite --duration 30
    .venv/bin/python bench/bench_catalog.py --db postgres --devices 10000 --interval 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for sub in ("src/sma3_catalog", "src/sma3_grid", "tools"):
    sys.path.insert(0, str(ROOT / sub))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402

from sma3_catalog.index import parse_iso  # noqa: E402
from sma3_catalog.models import DeviceRegistration  # noqa: E402
from sma3_catalog.registry import Registry  # noqa: E402
from sma3_catalog.storage import make_engine  # noqa: E402
from sma3_testing import MosquittoBroker, PostgresCluster, free_port, wait_for_port  # noqa: E402

TOKEN = "bench-operator-token"
FEEDERS = [f"F{i:02d}" for i in range(20)]
ALGORITHMS = {
    "feeder_head": ["fault_detection", "fault_location"],
    "secondary": ["outage_report", "sag_report"],
}


def registration(i: int, ttl: float) -> DeviceRegistration:
    role = "feeder_head" if i % 50 == 0 else "secondary"
    return DeviceRegistration.model_validate(
        {
            "role": role,
            "grid": {
                "network": "bench",
                "feeder": FEEDERS[i % len(FEEDERS)],
                "bus": f"B{i}",
                "line": f"L{i}",
            },
            "endpoints": {
                "ip": f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}",
                "mqtt_publishes": [f"sma3/data/meters/D{i}/phasors"],
            },
            "algorithms": ALGORITHMS[role],
            "firmware_version": "1.0.0",
            "config_version": 1,
            "ttl": ttl,
        }
    )


def metric(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name + (("{" + labels + "}") if labels else "")) + r" ([0-9.e+-]+)"
    m = re.search(pattern, text)
    return float(m.group(1)) if m else 0.0


def heartbeat_publisher(
    host: str,
    port: int,
    ids: list[str],
    interval_s: float,
    stop: Any,
    counter: Any,
    active: Any,
    ready: Any,
    go: Any,
) -> None:
    """Publish each id's heartbeat once per ``interval_s`` (run in its own process) from the
    moment ``go`` is set until ``stop`` is; sets ``ready`` once connected. ``counter`` holds the
    number published, ``active`` the seconds spent publishing."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_queued_messages_set(0)
    client.connect(host, port, keepalive=60)
    client.loop_start()
    ready.set()
    go.wait()
    # steady state: the status repeats what the record says, so each heartbeat only refreshes expiry
    payload = json.dumps({"state": "online", "config_version": 1})
    n = len(ids)
    start = time.monotonic()
    sent = 0
    try:
        while not stop.is_set():
            # device k of this publisher is due at start + (k / n + cycle) * interval
            due = int((time.monotonic() - start) / interval_s * n)
            while sent < due and not stop.is_set():
                client.publish(f"sma3/mgmt/devices/{ids[sent % n]}/status", payload, qos=0)
                sent += 1
            counter.value = sent
            active.value = time.monotonic() - start
            time.sleep(0.01)
    finally:
        client.loop_stop()
        client.disconnect()


def query_params(rng: random.Random) -> dict[str, str | int]:
    """Filters of one list query: a feeder, and often a role, an algorithm or ``alive``."""
    params: dict[str, str | int] = {"limit": 100, "feeder": rng.choice(FEEDERS)}
    pick = rng.random()
    if pick < 0.3:
        params["role"] = rng.choice(["feeder_head", "secondary"])
    elif pick < 0.6:
        params["algorithm"] = rng.choice(["sag_report", "fault_location"])
    elif pick < 0.8:
        params["alive"] = "true"
    return params


IDLE_REUSE_S = 4.0
"""Idle time (s) after which the benchmark client closes a keep-alive connection instead of reusing
it (uvicorn's keep-alive timeout is 5 s)."""


class LeanHttpClient:
    """Minimal HTTP/1.1 GET client on asyncio streams, with keep-alive connections.

    The load generator shares this 2-core machine with the catalog, its database, the broker and
    the heartbeat publishers. httpx spends about 5 ms of CPU per request, so at 100 requests/s the
    client alone took 60-90 % of a core and, when the machine was busy, its own scheduling delays
    showed up as query latency. This client spends a fraction of that; it understands only what the
    catalog sends (``Content-Length`` bodies, optional ``Connection: close``).

    Parameters
    ----------
    host, port
        The catalog's HTTP address.
    max_connections
        Upper bound of simultaneous connections; a request waits for a free one beyond it.
    timeout_s
        Deadline of one request (s), connection set-up and waiting for a free connection included.
    """

    def __init__(self, host: str, port: int, max_connections: int = 64, timeout_s: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        # idle connections with the time they were last used, newest last
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._slots = asyncio.Semaphore(max_connections)
        self.opened = 0

    async def get(self, target: str) -> tuple[int, bytes]:
        """GET ``target`` (path and query); returns (status, body).

        Raises
        ------
        asyncio.TimeoutError
            When no complete response arrived within ``timeout_s`` (``TimeoutError`` from 3.11).
        ConnectionError, asyncio.IncompleteReadError, ValueError
            For a broken connection or a response this client does not understand.
        """
        return await asyncio.wait_for(self._get(target), self.timeout_s)

    async def _get(self, target: str) -> tuple[int, bytes]:
        async with self._slots:
            # uvicorn closes a connection idle for 5 s: never reuse one idle for IDLE_REUSE_S or more
            now = time.monotonic()
            while self._idle and now - self._idle[0][2] >= IDLE_REUSE_S:
                self._idle.pop(0)[1].close()
            if self._idle:
                reader, writer, _used = self._idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.opened += 1
            try:
                writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split(" ", 2)[1])
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                if "content-length" not in headers:
                    raise ValueError(f"response without Content-Length: {lines[0]!r} {headers}")
                body = await reader.readexactly(int(headers["content-length"]))
            except BaseException:
                writer.close()
                raise
            if headers.get("connection", "").lower() == "close":
                writer.close()
            else:
                self._idle.append((reader, writer, time.monotonic()))
            return status, body

    def close(self) -> None:
        """Close the idle connections."""
        for _reader, writer, _used in self._idle:
            writer.close()
        self._idle.clear()


async def query_load(
    base: str, rate: float, duration_s: float, seed: int, ready: Any, go: Any
) -> tuple[list[tuple[float, float]], list[str], list[float], float]:
    """Issue ``rate`` list queries per second for ``duration_s`` s from the moment ``go`` is set
    (``ready`` is set before waiting), each at its scheduled instant (concurrently when responses
    are slow).

    Returns (start s from the first query, latency s) of each query, the error lines, the
    client's own event-loop delays (s by which a 10 ms sleep overslept; they bound how much of a
    latency may be the client's, not the catalog's) and the client's CPU use (fraction of a core).
    """
    rng = random.Random(seed)
    latencies: list[tuple[float, float]] = []
    errors: list[str] = []
    loop_delays: list[float] = []
    url = urllib.parse.urlsplit(base)
    client = LeanHttpClient(url.hostname or "127.0.0.1", url.port or 80)
    # a few connections ready before the clock starts, as a long-running client would have
    await asyncio.gather(*(client.get("/healthz") for _ in range(8)))
    ready.set()
    go.wait()  # nothing else runs on this loop yet

    async def one(params: dict[str, str | int]) -> None:
        t0 = time.perf_counter()
        try:
            status, body = await client.get("/api/v1/devices?" + urllib.parse.urlencode(params))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            # e.g. a timeout: counted as an error, its time kept
            latencies.append((t0 - start, time.perf_counter() - t0))
            errors.append(f"{type(exc).__name__}: {exc}")
            return
        latencies.append((t0 - start, time.perf_counter() - t0))
        if status != 200:
            errors.append(f"{status} {body[:200]!r}")

    async def watch_loop() -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            loop_delays.append(time.perf_counter() - t0 - 0.01)

    watcher = asyncio.create_task(watch_loop())
    tasks = []
    cpu0 = time.process_time()
    start = time.perf_counter()
    for k in range(int(rate * duration_s)):
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(query_params(rng))))
    await asyncio.gather(*tasks)
    watcher.cancel()
    client.close()
    cpu_share = (time.process_time() - cpu0) / (time.perf_counter() - start)
    return latencies, errors, loop_delays, cpu_share


def query_client(
    base: str, rate: float, duration_s: float, seed: int, results: Any, ready: Any, go: Any
) -> None:
    """Run :func:`query_load` (in its own process) and put (latencies, errors) on ``results``
    (or the text of the exception that ended it)."""
    run: Callable[[Any], Any] = asyncio.run
    try:
        import uvloop  # the catalog's own loop (uvicorn[standard]); less CPU per request

        run = uvloop.run
    except ImportError:
        pass
    try:
        results.put(run(query_load(base, rate, duration_s, seed, ready, go)))
    except Exception as exc:
        results.put(f"query client failed: {exc!r}")
        raise


def cpu_seconds(pid: int) -> float:
    """User + system CPU time (s) of process ``pid`` from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--devices", type=int, default=10_000)
    p.add_argument("--interval", type=float, default=10.0, help="heartbeat interval per device (s)")
    p.add_argument("--duration", type=float, default=30.0, help="measurement time (s), bounded to 600")
    p.add_argument("--query-rate", type=float, default=100.0, help="GET /devices per second")
    p.add_argument("--publishers", type=int, default=4, help="MQTT connections publishing heartbeats")
    p.add_argument("--probes", type=int, default=40, help="devices left to expire during the run")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latencies", type=Path, help="write 'start_s,latency_s' of each query to this CSV")
    args = p.parse_args()
    duration = min(max(args.duration, 5.0), 600.0)
    random.seed(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="sma3-bench-"))
    broker = MosquittoBroker(tmp / "mosquitto").start()
    cluster = None
    server: subprocess.Popen[bytes] | None = None
    try:
        if args.db == "postgres":
            cluster = PostgresCluster().start()
            db_url = cluster.create_database("bench")
        else:
            db_url = f"sqlite:///{tmp / 'catalog.db'}"
        # bulk pre-registration through the registry core (the same code the REST PUT uses)
        t0 = time.perf_counter()
        engine = make_engine(db_url)
        registry = Registry(engine)
        ttl = max(3 * args.interval, 120.0)  # outlives the set-up; heartbeats keep it fresh
        ids = [f"D{i}" for i in range(args.devices)]
        for start in range(0, args.devices, 1000):
            registry.put_many(
                [(ids[i], registration(i, ttl)) for i in range(start, min(start + 1000, args.devices))]
            )
        probe_ttls = np.linspace(3.0, duration - 1.0, args.probes) if args.probes else np.array([])
        registry.put_many([(f"P{k}", registration(k, float(t))) for k, t in enumerate(probe_ttls)])
        engine.dispose()
        registration_s = time.perf_counter() - t0
        (tmp / "tokens.yaml").write_text(f"- name: bench\n  role: operator\n  token: {TOKEN}\n")
        port = free_port()
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(str(ROOT / s) for s in ("src/sma3_catalog", "src/sma3_grid")),
        )
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sma3_catalog.cli",
                "--db",
                db_url,
                "--port",
                str(port),
                "--tokens",
                str(tmp / "tokens.yaml"),
                "--mqtt-host",
                broker.host,
                "--mqtt-port",
                str(broker.port),
                "--no-networks",
                "--log-level",
                "warning",
            ],
            env=env,
        )
        wait_for_port(port, timeout_s=30)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            if httpx.get(base + "/healthz").json().get("mqtt"):
                break
            time.sleep(0.1)
        # expiry probes: listen to the events topic
        lags_event: list[float] = []
        lags_seen: list[float] = []
        listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

        def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            ev = json.loads(msg.payload)
            if ev["type"] == "expired" and ev["device_id"].startswith("P"):
                expires = parse_iso(ev["device"]["expires"]).timestamp()
                lags_event.append(parse_iso(ev["time"]).timestamp() - expires)
                lags_seen.append(time.time() - expires)

        listener.on_message = on_message
        listener.connect(broker.host, broker.port)
        listener.subscribe("sma3/mgmt/events", qos=1)
        listener.loop_start()

        # publishers and the query client run in their own processes (no shared GIL); the clock
        # starts when all of them are connected
        mp = multiprocessing.get_context("spawn")
        stop, go = mp.Event(), mp.Event()
        ready = [mp.Event() for _ in range(args.publishers + 1)]
        counters = [mp.Value("q", 0) for _ in range(args.publishers)]
        active = [mp.Value("d", 0.0) for _ in range(args.publishers)]
        publishers = [
            mp.Process(
                target=heartbeat_publisher,
                args=(
                    broker.host,
                    broker.port,
                    ids[k :: args.publishers],
                    args.interval,
                    stop,
                    counters[k],
                    active[k],
                    ready[k],
                    go,
                ),
                daemon=True,
            )
            for k in range(args.publishers)
        ]
        results = mp.Queue()
        client = mp.Process(
            target=query_client,
            args=(base, args.query_rate, duration, args.seed, results, ready[-1], go),
            daemon=True,
        )
        for proc in [*publishers, client]:
            proc.start()
        for event in ready:
            if not event.wait(timeout=60):
                raise RuntimeError("a load process did not start within 60 s")
        before = httpx.get(base + "/metrics").text
        cpu_before = cpu_seconds(server.pid)
        t_start = time.monotonic()
        go.set()
        outcome = results.get(timeout=duration + 120)
        if isinstance(outcome, str):
            raise RuntimeError(outcome)
        timed, errors, client_delays, client_cpu = outcome
        latencies = [latency for _start, latency in timed]
        if args.latencies is not None:
            args.latencies.write_text("".join(f"{t:.4f},{lat:.5f}\n" for t, lat in timed))
        client.join(timeout=30)
        stop.set()
        measured_s = time.monotonic() - t_start
        cpu_used = cpu_seconds(server.pid) - cpu_before
        for proc in publishers:
            proc.join(timeout=30)
        time.sleep(1.0)  # let queued heartbeats be applied
        after = httpx.get(base + "/metrics").text
        listener.loop_stop()
        listener.disconnect()

        def delta(label: str) -> float:
            return metric(after, "sma3_catalog_heartbeats_total", f'result="{label}"') - metric(
                before, "sma3_catalog_heartbeats_total", f'result="{label}"'
            )

        published = sum(c.value for c in counters)
        publishing_s = float(np.mean([a.value for a in active]))
        applied = delta("refreshed") + delta("superseded")
        lat_ms = np.array(latencies) * 1e3
        remaining = httpx.get(base + "/api/v1/devices", params={"limit": 1000, "offset": 0}).status_code
        print(
            f"catalog benchmark  db={args.db}  devices={args.devices}  interval={args.interval:g} s  "
            f"duration={measured_s:.1f} s  publishers={args.publishers}  cpus={os.cpu_count()}"
        )
        print(
            f"  bulk registration          : {args.devices + args.probes} records in {registration_s:.1f} s"
        )
        print(
            f"  heartbeats published       : {published} in {publishing_s:.1f} s "
            f"({published / publishing_s:.0f}/s, offered {args.devices / args.interval:.0f}/s)"
        )
        print(
            f"  heartbeats processed       : {applied:.0f}  ({applied / publishing_s:.0f}/s)  "
            f"unknown={delta('unknown'):.0f} invalid={delta('invalid'):.0f} failed={delta('failed'):.0f}"
        )
        if len(lat_ms):
            starts = [t for t, _latency in timed]
            query_rate = (len(starts) - 1) / (max(starts) - min(starts)) if len(starts) > 1 else 0.0
            print(
                f"  GET /devices queries       : {len(lat_ms)} ({query_rate:.0f}/s, "
                f"target {args.query_rate:g}/s), errors={len(errors)}"
            )
            print(
                f"  query latency p50 / p99    : {np.percentile(lat_ms, 50):.1f} ms / "
                f"{np.percentile(lat_ms, 99):.1f} ms (max {lat_ms.max():.1f} ms; target p99 <= 50 ms)"
            )
        if client_delays:
            delays_ms = np.array(client_delays) * 1e3
            print(
                f"  query client               : {client_cpu * 100:.0f}% of one core, its event loop late by "
                f"p99 {np.percentile(delays_ms, 99):.1f} ms / max {delays_ms.max():.1f} ms"
            )
        served = metric(after, "sma3_catalog_http_request_seconds_sum", 'route="/api/v1/devices"') - metric(
            before, "sma3_catalog_http_request_seconds_sum", 'route="/api/v1/devices"'
        )
        if len(lat_ms):
            print(f"  server time per query      : {served / len(lat_ms) * 1e3:.1f} ms mean (in the catalog)")
        print(
            f"  catalog process CPU        : {cpu_used:.1f} s in {measured_s:.1f} s "
            f"({cpu_used / measured_s * 100:.0f}% of one core; load average {os.getloadavg()[0]:.1f})"
        )
        if lags_event:
            print(
                f"  expiry lag (event-expires) : n={len(lags_event)}/{args.probes}  "
                f"median {np.median(lags_event) * 1e3:.0f} ms  max {max(lags_event) * 1e3:.0f} ms (limit 1 s)"
            )
            print(
                f"  expiry lag (seen-expires)  : median {np.median(lags_seen) * 1e3:.0f} ms  "
                f"max {max(lags_seen) * 1e3:.0f} ms"
            )
        else:
            print(f"  expiry lag                 : no probe expired (probes={args.probes})")
        if errors:
            print("  first query error:", errors[0])
        return 0 if remaining == 200 and not errors else 1
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        broker.stop()
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
