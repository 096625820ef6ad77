"""Start-up stays light: what `capsim CMD --help` and `capsim validate` import (module names, not times).

`--help` builds no config model and loads no simulator; `validate` builds the config models and runs every
check but loads neither the simulator (SimPy, the GPU pool, the router) nor scipy, pandas or matplotlib
(benchmarks/README.md, "Start-up").
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
        assert not {"numpy", "simpy", "scipy", "pandas", "backends.gpu.pool"} & mods, cmd


def test_validate_imports_no_simulator() -> None:
    mods = imported_by("validate", str(ROOT / "experiments" / "default.yaml"))
    assert "sim.config.experiment" in mods  # it did validate
    assert not {"simpy", "scipy", "pandas", "matplotlib", "backends.gpu.pool", "backends.routing.router"} & mods
