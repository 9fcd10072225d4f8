"""Recording rules (promtool unit tests), Prometheus config, provisioning and docker-compose."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from gauntlet_dashboards.common import DATASOURCE_UID
from observability_support import ROOT, RULES_FILE, require_binary

HERE = Path(__file__).parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def test_rule_file_is_valid() -> None:
    result = run(require_binary("promtool"), "check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_colour_thresholds_pass_promtool_unit_tests() -> None:
    result = run(require_binary("promtool"), "test", "rules", str(HERE / "topology_rules_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_prometheus_config_is_valid_and_keeps_pushed_labels() -> None:
    result = run(
        require_binary("promtool"), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # promtool resolves rule_files relative to the config: our rule file must be among them.
    assert str(RULES_FILE.relative_to(PROMETHEUS_DIR)) in result.stdout + result.stderr
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"farm", "aam-backend", "pushgateway"} <= set(jobs)
    assert jobs["pushgateway"]["honor_labels"] is True
    assert "honor_labels" not in jobs["farm"]


def test_grafana_provisioning_matches_the_dashboards() -> None:
    datasources = yaml.safe_load(
        (ROOT / "grafana/provisioning/datasources/prometheus.yaml").read_text()
    )["datasources"]
    assert [d["uid"] for d in datasources] == [DATASOURCE_UID]
    assert datasources[0]["type"] == "prometheus"
    (provider,) = yaml.safe_load(
        (ROOT / "grafana/provisioning/dashboards/gauntlet.yaml").read_text()
    )["providers"]
    assert provider["type"] == "file"
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"../grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "../grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_compose_file_brings_up_the_stack_from_the_shared_image() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    services = compose["services"]
    assert {"farm", "aam-backend", "prometheus", "pushgateway", "grafana"} <= set(services)
    for name in ("farm", "aam-backend"):
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert "./prometheus:/etc/prometheus:ro" in services["prometheus"]["volumes"]
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port


def test_compose_file_validates_with_docker_compose() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("docker-compose is required in CI (make install-system installs it)")
        pytest.skip("docker-compose is not installed (make install-system)")
    result = run(binary, "-f", str(COMPOSE_FILE), "config", "-q")
    assert result.returncode == 0, result.stdout + result.stderr


def _options(command: list[str]) -> list[str]:
    return [arg for arg in command if arg.startswith("--")]


@pytest.mark.parametrize("service", ["farm", "aam-backend"])
def test_compose_commands_use_options_the_cli_has(service: str) -> None:
    command = yaml.safe_load(COMPOSE_FILE.read_text())["services"][service]["command"]
    assert command[0] == "gauntlet"
    subcommand = [arg for arg in command[1:] if not arg.startswith("-")][:2]
    result = run(str(ROOT / ".venv/bin/gauntlet"), *subcommand, "--help")
    assert result.returncode == 0, result.stderr
    for option in _options(command):
        assert option in result.stdout, (
            f"{service}: gauntlet {' '.join(subcommand)} has no {option}"
        )


def test_compose_backend_reads_the_token_file_the_farm_writes() -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]

    def mount(service: str, volume: str) -> str:
        (target,) = [
            v.split(":")[1] for v in services[service]["volumes"] if v.startswith(f"{volume}:")
        ]
        return target

    farm_cmd, backend_cmd = services["farm"]["command"], services["aam-backend"]["command"]
    farm_state = Path(farm_cmd[farm_cmd.index("--state-dir") + 1])
    token_file = Path(backend_cmd[backend_cmd.index("--admin-token-file") + 1])
    written = (farm_state / "admin-token").relative_to(mount("farm", "farm-state"))
    assert token_file.relative_to(mount("aam-backend", "farm-state")) == written
