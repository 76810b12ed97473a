"""Run the app under Flower's real Ray simulation from tests: one local SuperLink per test session (our
own, on test-only ports and a test-only FLWR_HOME, stopped by PID), `flwr run . local --stream`, and the
run's final status read back from the SuperLink."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sim_env(flwr_home: Path) -> dict:
    """A test-only FLWR_HOME and free ports, so that tests never touch a user's SuperLink (or each other's)."""
    env = dict(os.environ)
    env.update({
        "FLWR_HOME": str(flwr_home),
        "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(free_port()),
        "FLWR_LOCAL_CONTROL_API_PORT": str(free_port()),
        "PATH": f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}",
    })
    return env


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return repr(v)


@dataclass
class SimRun:
    run_id: str
    status: str
    details: str
    output: str


class Simulation:
    def __init__(self, flwr_home: Path) -> None:
        self.env = sim_env(flwr_home)

    def superlink(self, action: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(REPO / "scripts" / "superlink.sh"), action], env=self.env, check=check,
                              cwd=REPO, capture_output=True, text=True)

    def run(self, overrides: dict, federation_config: str | None = None, timeout: float = 600) -> SimRun:
        cfg = " ".join(f"{k}={toml_value(v)}" for k, v in overrides.items())
        cmd = ["flwr", "run", ".", "local", "--stream", "-c", cfg]
        if federation_config:
            cmd += ["--federation-config", federation_config]
        proc = subprocess.run(cmd, env=self.env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        output = proc.stdout + proc.stderr
        found = re.search(r"Successfully started run (\d+)", output)
        if not found:
            raise RuntimeError(f"flwr run did not start a run:\n{output[-3000:]}")
        run_id = found.group(1)
        if self.superlink("status", check=False).returncode != 0:  # `flwr ls` would start a detached SuperLink
            return SimRun(run_id, "unknown", "the local SuperLink exited", output)
        listing = subprocess.run(["flwr", "ls", "--format", "json"], env=self.env, cwd=REPO, capture_output=True, text=True)
        runs = {r["run-id"]: r for r in json.loads(listing.stdout)["runs"]}
        run = runs[run_id]
        return SimRun(run_id, run["status"], run.get("status-details", ""), output)
