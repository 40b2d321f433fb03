"""Deployment and observability: the compose file, Prometheus config and alert rules, and every
PromQL expression of the dashboard and the rules evaluated by a real Prometheus scraping a live
firstspike."""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import subprocess
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.sync.client import connect

from tests.helpers import ROOT, free_port, start_server, stop_server
from training.contract.events.format import encode
from training.data.digits_dvs import digits_dvs_split

DOCKER = ROOT / "docker"
DASHBOARD = DOCKER / "grafana" / "dashboards" / "firstspike-decision-time.json"
ALERTS = DOCKER / "prometheus" / "alerts.yml"
VARIABLES = {"$model": ".*", "$version": ".*", "$__rate_interval": "1m"}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: `make test` installs it (Debian packages prometheus, docker-compose)"
        )
    return path


def _compose_command() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return [_tool("docker-compose")]


def test_compose_file_is_valid():
    completed = subprocess.run(
        [*_compose_command(), "config", "-q"], cwd=ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr


def test_compose_publishes_on_loopback_and_grafana_has_no_default_login():
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_DISABLE_INITIAL_ADMIN_CREATION"] == "true"
    assert grafana["GF_AUTH_DISABLE_LOGIN_FORM"] == "true" and grafana["GF_AUTH_BASIC_ENABLED"] == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana


def test_promtool_checks_config_and_rules():
    for args in (
        ["check", "config", str(DOCKER / "prometheus" / "prometheus.yml")],
        ["check", "rules", str(ALERTS)],
    ):
        completed = subprocess.run([_tool("promtool"), *args], capture_output=True, text=True)
        assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_dockerfile_copies_what_exists_and_checks_readiness():
    """The quick check; ``make image-test`` builds and runs the images for real."""
    text = (DOCKER / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+)", text, re.MULTILINE):
        assert (ROOT / source).exists(), f"the Dockerfile copies missing {source}"
    assert "USER firstspike" in text and "HEALTHCHECK" in text


def test_healthcheck_script_against_a_live_server(server):
    port = server.url.rsplit(":", 1)[1]
    script = str(DOCKER / "healthcheck.py")
    import sys

    ok = subprocess.run([sys.executable, script], env={"FIRSTSPIKE_PORT": port}, timeout=30)
    down = subprocess.run([sys.executable, script], env={"FIRSTSPIKE_PORT": str(free_port())}, timeout=30)
    assert (ok.returncode, down.returncode) == (0, 1)


def dashboard_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (f"{panel['title']} [{target['refId']}]", target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def alert_rules() -> list[dict]:
    import yaml

    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def test_every_metric_in_the_dashboard_exists(server, digits_test_pngs):
    with httpx.Client(base_url=server.url) as client:
        client.post("/classify", content=digits_test_pngs[0][0], headers={"content-type": "image/png"})
        exposed = client.get("/metrics").text
    names = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for _, expr in dashboard_expressions()
        for name in re.findall(r"firstspike_[a-z_]+", expr)
    }
    names |= {name for rule in alert_rules() for name in re.findall(r"firstspike_[a-z_]+", rule["expr"])}
    names = {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}
    missing = [
        name
        for name in sorted(names)
        if f"# TYPE {name.removesuffix('_total')} " not in exposed and f"# TYPE {name} " not in exposed
    ]
    assert not missing, missing
    assert {
        "firstspike_decision_timestep",
        "firstspike_stream_sessions_active",
        "firstspike_batch_size",
    } <= names


def _traffic(server, pngs, stream, seconds: float) -> None:
    """Images, some bad requests and event streams, spread over several scrapes."""
    deadline = time.monotonic() + seconds
    ws_url = server.url.replace("http://", "ws://") + "/classify/stream"
    with httpx.Client(base_url=server.url, timeout=30) as client:
        index = 0
        while time.monotonic() < deadline:
            client.post("/classify", content=pngs[index % len(pngs)], headers={"content-type": "image/png"})
            if index % 10 == 0:
                client.post("/classify", content=b"not an image", headers={"content-type": "image/png"})
                with connect(ws_url) as ws:
                    ws.send(json.dumps({"format": "dvs-events/1", "width": 34, "height": 34}))
                    ws.send(encode(stream))
                    # The server answers and closes as soon as it decides, which may be before "end".
                    with contextlib.suppress(ConnectionClosedOK):
                        ws.send(json.dumps({"type": "end"}))
                    assert json.loads(ws.recv(timeout=30))["type"] == "decision"
            index += 1
            time.sleep(0.02)


def _query(prometheus: str, expr: str) -> dict:
    response = httpx.get(prometheus + "/api/v1/query", params={"query": expr}, timeout=30)
    return response.json()


def _has_data(result: dict) -> bool:
    values = [float(item["value"][1]) for item in result["data"]["result"]]
    return any(not math.isnan(v) for v in values)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, digits_test_pngs):
    tmp = tmp_path_factory.mktemp("prometheus")
    service = start_server(tmp)
    port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{ALERTS}]\n"
        "scrape_configs:\n"
        "  - job_name: firstspike\n"
        f"    static_configs: [{{targets: ['{service.url.removeprefix('http://')}']}}]\n"
    )
    process = subprocess.Popen(
        [
            _tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=(tmp / "prometheus.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (tmp / "prometheus.log").read_text()
            time.sleep(0.2)
        stream = digits_dvs_split("test")[0][0]
        _traffic(service, digits_test_pngs[0], stream, seconds=6)
        time.sleep(3)  # a few more scrapes after the last request
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        stop_server(service)


def test_prometheus_scrapes_the_service(prometheus):
    result = _query(prometheus, 'up{job="firstspike"}')
    assert result["status"] == "success" and float(result["data"]["result"][0]["value"][1]) == 1


@pytest.mark.parametrize("title, expr", dashboard_expressions(), ids=[t for t, _ in dashboard_expressions()])
def test_dashboard_queries_are_valid_and_return_data(prometheus, title, expr):
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    result = _query(prometheus, expr)
    assert result["status"] == "success", result
    assert _has_data(result), f"{title}: no data for {expr}"


@pytest.mark.parametrize("rule", alert_rules(), ids=[r["alert"] for r in alert_rules()])
def test_alert_rules_are_valid_and_their_measures_return_data(prometheus, rule):
    assert _query(prometheus, rule["expr"])["status"] == "success"
    measure = re.split(r"\s(?:>|==|<)\s", rule["expr"].strip())[0]  # the expression before the threshold
    result = _query(prometheus, measure)
    assert result["status"] == "success" and _has_data(result), f"{rule['alert']}: no data for {measure}"
    rules = httpx.get(prometheus + "/api/v1/rules").json()["data"]["groups"][0]["rules"]
    loaded = {r["name"]: r for r in rules}
    assert loaded[rule["alert"]]["health"] == "ok"
