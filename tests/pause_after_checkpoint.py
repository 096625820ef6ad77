"""`python tests/pause_after_checkpoint.py ARGS...` is `capsim ARGS...`, except that a run stops after saving
its first checkpoint and waits there for a signal.

Signal tests use it to interrupt a run in a known state (one replication saved, the others not), whatever
the machine's load: without it, a fast run could finish before the signal arrives.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.app.cli import main  # noqa: E402
from sim.engine.replication import ReplicationResult  # noqa: E402
from sim.engine.results import ResultsFolder  # noqa: E402

_checkpoint = ResultsFolder.checkpoint


def _checkpoint_then_wait(self: ResultsFolder, result: ReplicationResult) -> None:
    _checkpoint(self, result)
    # The handler of SIGINT / SIGTERM raises here; SIGKILL just ends the process. Not signal.pause(): a
    # process-group signal may be delivered to one of the pool's threads, and pause() in the main thread then
    # never returns (the run hung, seen under load); a short sleep lets the main thread run the handler.
    while True:
        time.sleep(0.05)


ResultsFolder.checkpoint = _checkpoint_then_wait  # type: ignore[method-assign]

if __name__ == "__main__":
    # Ctrl-C as at a terminal, however the test runner was started: a shell starts background jobs with SIGINT
    # ignored, Python then keeps it ignored, and the test's SIGINT would do nothing (seen: the run never stopped)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
