"""Plain-module parts of the meter agent: configuration, cache, change plans, algorithms, messages, CLI."""

from __future__ import annotations

import copy
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sma3_catalog.configuration import Configurator
from sma3_catalog.models import BrokerInfo, ConfigSpec, DeviceConfig, StoredConfig
from sma3_catalog.networks import NetworkCatalog
from sma3_catalog.topics import Topics
from sma3_grid.io import load_network
from sma3_meter.agent import cli
from sma3_meter.agent.algorithms import (
    AlgorithmContext,
    AlgorithmError,
    FaultLocation,
    OutageDetection,
    SagReporting,
    UnknownAlgorithmError,
    create_runner,
)
from sma3_meter.agent.catalog_client import api_base
from sma3_meter.agent.config import (
    AgentConfigError,
    ConfigCache,
    network_from_description,
    parse_config,
    plan_changes,
)
from sma3_meter.agent.messages import DataTopics, MessageError, SagMessage, decode
from sma3_meter.dsp import PhasorSample

V_NOM = 22000.0 / math.sqrt(3.0)
BROKERS = [
    BrokerInfo(name="mgmt", purpose="management", host="127.0.0.1", port=1883),
    BrokerInfo(name="data", purpose="data", host="127.0.0.1", port=1884),
    BrokerInfo(name="data2", purpose="data", host="127.0.0.1", port=1885),
]


def render(device_id: str, **spec: Any) -> DeviceConfig:
    """A configuration as the real catalog renders it (version 1 when a spec is given)."""
    configurator = Configurator(
        BROKERS, {"management": "mgmt", "data": "data"}, NetworkCatalog({"mini": "mini"}), Topics()
    )
    stored = None
    if spec:
        stored = StoredConfig(
            device_id=device_id,
            version=spec.pop("version", 1),
            created=0.0,  # type: ignore[arg-type]
            author="test",
            spec=ConfigSpec.model_validate(spec),
        )
    return configurator.render(device_id, stored)


def doc(config: DeviceConfig) -> dict[str, Any]:
    return config.model_dump(mode="json")  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- configuration


def test_parse_config_accepts_the_catalog_document_and_builds_the_feeder() -> None:
    config = parse_config(json.dumps(doc(render("MS1"))), "MS1", "test")
    assert config.role == "secondary" and config.grid.feeder == "L1"
    net = network_from_description(config.network)  # type: ignore[arg-type]
    full = load_network("mini")
    feeder_lines = {lid for lid in full.energized_lines() if full.feeder_of(lid) == "L1"}
    assert set(net.lines) == feeder_lines
    assert set(net.meters) == {"MH1", "MS1", "MS2"}
    assert net.lines["L3"] == full.lines["L3"] and net.info == full.info


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(device_id="MS2"), "configuration is for device 'MS2', not for 'MS1'"),
        (lambda d: d["brokers"].pop("data"), "names no data broker"),
        (
            lambda d: d["brokers"]["data"].update(purpose="management"),
            "brokers.data is declared for management",
        ),
        (lambda d: d["algorithms"].append(dict(d["algorithms"][0])), "algorithms listed twice"),
        (lambda d: d["network"]["lines"][0].update(bus_b="NOWHERE"), "invalid network description"),
        (lambda d: d["heartbeat"].pop("topic"), "heartbeat.topic: Field required"),
    ],
)
def test_parse_config_rejects_with_a_clear_message(change: Any, message: str) -> None:
    body = copy.deepcopy(doc(render("MS1")))
    change(body)
    with pytest.raises(AgentConfigError, match=r"^src: ") as err:
        parse_config(body, "MS1", "src")
    assert message in str(err.value)


def test_parse_config_rejects_broken_json() -> None:
    with pytest.raises(AgentConfigError, match=r"cache\.json: invalid configuration"):
        parse_config(b"{not json", "MS1", "cache.json")


def test_cache_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    cache = ConfigCache(tmp_path / "c", "MS1")
    assert cache.load() is None
    first, second = render("MS1"), render("MS1", network="mini", heartbeat_interval_s=2.0, version=4)
    cache.save(first)
    cache.save(second)
    assert cache.load() == second
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["MS1.config.json"]
    cache.path.write_text('{"device_id": "MS1"')
    with pytest.raises(AgentConfigError, match=r"MS1\.config\.json: invalid configuration"):
        cache.load()


def test_plan_changes() -> None:
    base = render(
        "MS1",
        network="mini",
        algorithms=[{"name": "sag_reporting"}, {"name": "outage_detection"}],
    )
    first = plan_changes(None, base)
    assert first.start == ("sag_reporting", "outage_detection")
    assert first.management_broker and first.data_broker and first.network_changed
    assert plan_changes(base, base).empty
    params = render(
        "MS1",
        network="mini",
        algorithms=[
            {"name": "sag_reporting", "parameters": {"sag_threshold_pu": 0.8}},
            {"name": "fault_location"},
        ],
        brokers={"data": "data2"},
    )
    plan = plan_changes(base, params)
    assert plan.start == ("fault_location",) and plan.stop == ("outage_detection",)
    assert plan.reconfigure == ("sag_reporting",) and plan.keep == ()
    assert plan.data_broker and not plan.management_broker and not plan.network_changed
    moved = render(
        "MS1",
        network="mini",
        algorithms=[{"name": "sag_reporting"}, {"name": "outage_detection"}],
        network_scope="full",
    )
    plan = plan_changes(base, moved)
    assert plan.network_changed and plan.reconfigure == ("sag_reporting", "outage_detection")
    faster = render(
        "MS1",
        network="mini",
        algorithms=[{"name": "sag_reporting"}, {"name": "outage_detection"}],
        heartbeat_interval_s=1.0,
    )
    plan = plan_changes(base, faster)
    assert plan.heartbeat_changed and plan.keep == ("sag_reporting", "outage_detection")
    assert not plan.management_broker and not plan.data_broker  # same brokers, same Last Will


# ---------------------------------------------------------------------------- algorithms


def context(
    meter_id: str = "MS1", sink: list[tuple[str, str]] | None = None, network: bool = True
) -> AlgorithmContext:
    config = render(meter_id)
    published = sink if sink is not None else []
    return AlgorithmContext(
        meter_id=meter_id,
        role=config.role,
        grid=config.grid,
        network=network_from_description(config.network) if network else None,  # type: ignore[arg-type]
        topics=DataTopics(),
        publish=lambda topic, payload: published.append((topic, payload)),
        clock=lambda: 1_700_000_000.0,
    )


def sample(index: int, v_pu: list[float], transient: bool = False) -> PhasorSample:
    v = np.array(v_pu) * V_NOM * np.exp(-2j * np.pi * np.arange(3) / 3)
    return PhasorSample(index, 50.0, 0.0, np.concatenate([v, np.zeros(3)]), transient=transient)


def test_registry_names_aliases_and_parameter_errors() -> None:
    assert isinstance(create_runner("sag_report", {}, context()), SagReporting)
    assert isinstance(
        create_runner("outage_report", {"undervoltage_pu": 0.1, "hold_s": 0.2}, context()), OutageDetection
    )
    with pytest.raises(UnknownAlgorithmError, match="unknown algorithm 'fault_detection'"):
        create_runner("fault_detection", {}, context())
    with pytest.raises(
        AlgorithmError, match=r"sag_reporting: parameter sag_threshold_pu must be in \[0.01, 1.0\]"
    ):
        create_runner("sag_reporting", {"sag_threshold_pu": 1.5}, context())
    with pytest.raises(AlgorithmError, match="must be a finite number, got 'x'"):
        create_runner("outage_detection", {"hold_s": "x"}, context())
    with pytest.raises(AlgorithmError, match=r"unknown parameters \['colour'\]"):
        create_runner("sag_reporting", {"colour": "red"}, context())
    with pytest.raises(AlgorithmError, match="needs the grid portion's network description"):
        create_runner("sag_reporting", {}, context(network=False))
    assert (
        create_runner("sag_reporting", {"nominal_voltage_v": 230.0}, context(network=False)).nominal_v
        == 230.0
    )
    with pytest.raises(AlgorithmError, match="meter 'MH2' is not in the network description"):
        create_runner("fault_location", {}, _foreign_head())


def _foreign_head() -> AlgorithmContext:
    ctx = context("MS1")
    ctx.meter_id = "MH2"  # feeder L7's head, absent from the L1 description
    return ctx


def test_sag_reporting_start_end_and_status() -> None:
    out: list[tuple[str, str]] = []
    runner = create_runner("sag_reporting", {"sag_threshold_pu": 0.9}, context(sink=out))
    assert runner.status().state == "waiting"
    runner.on_phasors(sample(0, [1.0, 1.0, 1.0]))
    runner.on_phasors(sample(128, [0.5, 1.0, 1.0], transient=True))  # window across the change: skipped
    runner.on_phasors(sample(256, [0.6, 1.02, 0.99]))
    runner.on_phasors(sample(384, [0.4, 1.01, 0.99]))
    runner.on_phasors(sample(512, [0.91, 1.0, 1.0]))  # above threshold, below recovery (0.92)
    runner.on_phasors(sample(640, [0.95, 1.0, 1.0]))
    topics = {t for t, _ in out}
    assert topics == {"sma3/data/meters/MS1/sag"}
    start, end = (SagMessage.model_validate_json(p) for _, p in out)
    assert start.state == "start" and start.sample_index == 256
    np.testing.assert_allclose(start.v_pu, [0.6, 1.02, 0.99])
    assert end.state == "end" and end.sample_index == 640 and end.duration_s == 0.0
    np.testing.assert_allclose(end.v_pu, [0.4, 1.0, 0.99])
    assert runner.status().state == "running" and "1 sags reported" in runner.status().detail


def test_outage_detection_loss_and_restoration() -> None:
    out: list[tuple[str, str]] = []
    runner = create_runner("outage_detection", {"hold_s": 0.04, "restore_hold_s": 0.02}, context(sink=out))
    assert runner.monitor.settings.outage_cycles == 2 and runner.monitor.settings.restore_cycles == 1
    for k, v in enumerate([[1, 1, 1], [0, 1, 1], [0, 1, 1], [0, 1, 1], [1, 1, 1]]):
        runner.on_phasors(sample(128 * k, v))
    kinds = [json.loads(p)["kind"] for _, p in out]
    assert kinds == ["loss_of_voltage", "restored"]
    loss = json.loads(out[0][1])
    assert loss["phases"] == [True, False, False] and loss["sample_index"] == 256
    runner.last_gasp()
    assert json.loads(out[-1][1])["kind"] == "last_gasp"


def test_fault_location_peers_and_evidence_filtering() -> None:
    runner = create_runner("fault_location", {"evidence_wait_s": 0.0}, context("MH1"))
    assert isinstance(runner, FaultLocation)
    assert runner.status().state == "waiting"
    runner.set_peers(["MS1", "MS2", "MH1", "MH2"])  # MH2 sits on another feeder
    assert runner.peers == {"MS1", "MS2"}
    assert runner.subscriptions() == {
        "sma3/data/meters/MS1/sag",
        "sma3/data/meters/MS1/outage",
        "sma3/data/meters/MS2/sag",
        "sma3/data/meters/MS2/outage",
    }
    good = SagMessage(
        meter_id="MS1",
        time=datetime(2026, 1, 1, tzinfo=timezone.utc),
        state="start",
        v_mag=[1.0, 2.0, 3.0],
        v_pu=[0.0, 0.0, 0.0],
    ).model_dump_json()
    runner.on_data("sma3/data/meters/MS1/sag", good.encode())
    runner.on_data("sma3/data/meters/MS2/sag", good.encode())  # meter id differs from the topic
    runner.on_data("sma3/data/meters/MS2/sag", b"{}")
    assert runner.rejected == 2
    (ev,) = runner.current_evidence()
    assert ev.meter_id == "MS1" and list(ev.v_mag) == [1.0, 2.0, 3.0]
    runner.set_peers(["MS2"])
    assert runner.current_evidence() == []


# ---------------------------------------------------------------------------- messages, URLs, CLI


def test_decode_errors() -> None:
    topics = DataTopics()
    with pytest.raises(MessageError, match="not a sag/outage/location topic"):
        decode(topics, "sma3/data/meters/MS1/phasors", b"{}")
    with pytest.raises(MessageError, match=r"invalid outage message .*: kind"):
        decode(
            topics,
            "sma3/data/meters/MS1/outage",
            b'{"meter_id":"MS1","time":"2026-01-01T00:00:00Z","kind":"gone","phases":[1,0,0],"v_mag":[0,0,0]}',
        )
    assert topics.parse("sma3/data/meters/MS1/sag") == ("MS1", "sag")
    assert topics.parse("sma3/data/meters/MS1/a/b") is None
    with pytest.raises(ValueError, match="invalid MQTT topic prefix"):
        DataTopics("sma3/#")


def test_api_base() -> None:
    assert api_base("http://h:1") == "http://h:1/api/v1"
    assert api_base("https://h/api/v1/") == "https://h/api/v1"
    with pytest.raises(ValueError, match="must start with http"):
        api_base("ftp://h")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--id", "bad/id", "--catalog", "http://h", "--token", "t"],
            "--id 'bad/id' is not a valid device id",
        ),
        (["--id", "M1", "--catalog", "h:80", "--token", "t"], "--catalog: catalog URL must start with http"),
        (["--id", "M1", "--catalog", "http://h", "--token-file", "/nonexistent/t"], "--token-file:"),
        (["--id", "M1", "--catalog", "http://h", "--token", "t", "--ca", "x"], "--ca expects REF=PATH"),
        (
            ["--id", "M1", "--catalog", "http://h", "--token", "t", "--refresh", "0"],
            "refresh_s must be > 0 s",
        ),
    ],
)
def test_cli_rejects_bad_options(args: list[str], message: str, tmp_path: Path, capsys: Any) -> None:
    assert cli.main([*args, "--cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sma3-meter-agent: ") and message in err
