"""Start-up stays light: what `capsim CMD --help` and `capsim validate` import (module names, not times).

`--help` builds no config model, loads no simulator and imports no pydantic (typer's own --help no longer
builds a TypeAdapter); `validate` builds the config models and runs every check but loads neither the
simulator (SimPy, the GPU pool, the router) nor scipy, pandas or matplotlib, nor numpy for a config that
reads no file, names no profile and has no bursts or index of dispersion; what a one-replication run's
summary computes (token means for latency_capacity, the targets) needs no scipy.stats (benchmarks/README.md,
"Start-up").
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
sys.argv = ["capsim", *sys.argv[1:]]
from sim.app.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def imported_by(*args: str) -> set[str]:
    r = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(r.stderr.strip().splitlines()[-1]))


def test_help_imports_no_config_and_no_simulator() -> None:
    for cmd in ("run", "validate", "plan"):
        mods = imported_by(cmd, "--help")
        assert "sim.config.experiment" not in mods, cmd
        assert not {"numpy", "pydantic", "simpy", "scipy", "pandas", "backends.gpu.pool"} & mods, cmd


def test_validate_imports_no_simulator() -> None:
    mods = imported_by("validate", str(ROOT / "experiments" / "default.yaml"))
    assert "sim.config.experiment" in mods  # it did validate
    assert not {"simpy", "scipy", "pandas", "matplotlib", "backends.gpu.pool", "backends.routing.router"} & mods
    # nor numpy: the default config has no data file, named profile, index of dispersion or burst to read
    assert not {"numpy", "sim.core.request_block", "workloads.arrivals", "workloads.named_profiles"} & mods


SUMMARY_PROBE = """
import json, sys
from pathlib import Path
from backends.models.latency_capacity import latency_capacity_summary
from sim.engine.loading import load_config
from sim.engine.targets import parse_targets, targets_summary
exp = load_config(sys.argv[1], [])
latency_capacity_summary(exp)  # the token counts' exact means (lognormal and geometric here)
targets = parse_targets(list(exp.plan.targets))
targets_summary(targets, [{t.metric: 0.1 for t in targets}], exp.plan.confidence)  # one replication
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def test_one_replication_summary_imports_no_scipy_stats() -> None:
    r = subprocess.run(
        [sys.executable, "-c", SUMMARY_PROBE, str(ROOT / "experiments" / "default.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    mods = set(json.loads(r.stderr.strip().splitlines()[-1]))
    assert "scipy.special" in mods  # it did compute the discretised lognormal means
    assert "scipy.stats" not in mods
