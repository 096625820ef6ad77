"""Count how many malformed configs `capsim validate` was fed and how each was answered.

    PYTHONPATH=. python benchmarks/fuzz_configs.py [N]

Draws N configs from each of tests.strategies.mutated_configs and mutated_config_texts, loads each in
process, and tallies: accepted (exit 0), refused with located one-line problems (exit 2), anything else
(a crash: printed, and the script exits 1).
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.config.errors import ConfigError
from sim.engine.loading import load_config_text  # noqa: E402
from tests.strategies import mutated_config_texts, mutated_configs  # noqa: E402

tally: collections.Counter[str] = collections.Counter()
crashes: list[str] = []


def classify(text: str) -> None:
    try:
        load_config_text(text)
    except ConfigError as exc:
        ok = exc.problems and all(p.line is not None and "\n" not in str(p) for p in exc.problems)
        tally["exit 2, located" if ok else "exit 2, NOT located"] += 1
        if not ok:
            crashes.append("unlocated: " + "; ".join(map(str, exc.problems)))
        return
    except Exception as exc:  # noqa: BLE001 - this is what we are counting
        tally["internal error"] += 1
        crashes.append(f"{type(exc).__name__}: {exc} <- {text[:200]!r}")
        return
    tally["exit 0 (still valid)"] += 1


def main(n: int) -> int:
    cfg = settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))

    @given(mutated_configs())
    @cfg
    def dicts(case: tuple[dict, list[str]]) -> None:
        tally["cases: mutated dicts"] += 1
        classify(yaml.safe_dump(case[0], allow_unicode=True))

    @given(mutated_config_texts())
    @cfg
    def texts(text: str) -> None:
        tally["cases: damaged YAML text"] += 1
        classify(text)

    t0 = time.perf_counter()
    dicts()
    texts()
    for k, v in sorted(tally.items()):
        print(f"{k:28s} {v}")
    print(f"wall {time.perf_counter() - t0:.1f} s")
    for c in crashes[:20]:
        print("CRASH", c)
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
