"""Interrupted runs: kill -9 then --resume gives the rows of an uninterrupted run; Ctrl-C stops cleanly,
keeps what finished and says how to resume; no half-written file ever carries a final name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pytest
from gpu_support import chat_yaml

from sim.core.atomic import write_atomic
from sim.engine.checkpoints import CheckpointStore, checkpoint_key

ROOT = Path(__file__).resolve().parents[1]
PAUSED_CLI = str(Path(__file__).resolve().parent / "pause_after_checkpoint.py")
CONFIG = chat_yaml("interrupt", seed=3, replications=12, horizon_h=0.06, servers=2)
FINAL = ("summary.json", "replications.parquet", "replications.csv", "timeseries.parquet", "hourly.parquet")


def _capsim(*args: str, paused: bool = False, **kw: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    entry = [PAUSED_CLI] if paused else ["-m", "sim"]
    return subprocess.Popen(
        [sys.executable, *entry, *args],
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,  # type: ignore[arg-type]
    )


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    p = _capsim(*args)
    out, err = p.communicate(timeout=300)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def wait_for(state: Callable[[], object], what: str, p: subprocess.Popen[str] | None = None) -> None:
    """Poll until state() is true; the deadline only turns a hang into a failure, it never decides a result."""
    deadline = time.monotonic() + 300
    while not state():
        if p is not None:
            assert p.poll() is None, p.communicate()
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.02)


def _start_and_stop(cfg: Path, out: Path, sig: int) -> subprocess.CompletedProcess[str]:
    """Start a run in its own process group, paused after its first checkpoint (whatever the load), wait
    for that checkpoint and for both workers, then signal the whole group."""
    p = _capsim("run", str(cfg), "--out", str(out), "--quiet", "--workers", "2", paused=True, start_new_session=True)
    wait_for(lambda: list((out / ".partial").glob("rep-*.npz")), "a checkpoint", p)
    wait_for(lambda: len(_group_alive(p.pid)) >= 3, "the parent and its two workers", p)
    os.killpg(p.pid, sig)
    out_s, err_s = p.communicate(timeout=300)
    if sig != signal.SIGKILL:
        wait_for(lambda: _group_alive(p.pid) == [], "the workers ending with the interrupted run")
    return subprocess.CompletedProcess(p.args, p.returncode, out_s, err_s)


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(d.name))
    return alive


def _rows(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "replications.parquet").drop(columns=["wall_s"])  # wall time is not a result


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("clean")
    cfg = d / "c.yaml"
    cfg.write_text(CONFIG, encoding="utf-8")
    r = _run("run", str(cfg), "--out", str(d / "out"), "--quiet", "--workers", "2")
    assert r.returncode == 0, r.stderr
    return cfg, d / "out"


def test_kill9_then_resume_matches_uninterrupted(clean_run: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, clean = clean_run
    out = tmp_path / "out"
    r = _start_and_stop(cfg, out, signal.SIGKILL)
    assert r.returncode == -signal.SIGKILL
    saved = sorted((out / ".partial").glob("rep-*.npz"))
    assert len(saved) == 1  # the run was paused after its first checkpoint
    assert not any((out / f).exists() for f in FINAL)  # nothing final before the run finished
    # what a writer killed mid-write leaves: hidden temporaries named with the run's token (recorded in the
    # manifest), never a final name; a user's own hidden .tmp file beside them is not the run's to delete
    [token] = json.loads((out / ".partial" / "manifest.json").read_text(encoding="utf-8"))["writers"]
    (out / ".partial" / f".rep-000023.npz.{token}-x1y2.tmp").write_bytes(b"half")
    (out / f".summary.json.{token}-a1b2.tmp").write_text("{", encoding="utf-8")
    (out / ".notes.tmp").write_text("mine", encoding="utf-8")

    r = _run("run", str(cfg), "--out", str(out), "--resume", "--quiet", "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert not (out / ".partial").exists()
    assert [f.name for f in out.glob(".*.tmp")] == [".notes.tmp"]
    resumed, reference = _rows(out), _rows(clean)
    assert len(resumed) == 12
    pd.testing.assert_frame_equal(resumed, reference)
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "timeseries.parquet"), pd.read_parquet(clean / "timeseries.parquet")
    )


def test_ctrl_c_stops_cleanly_and_resume_finishes(clean_run: tuple[Path, Path], tmp_path: Path) -> None:
    cfg, clean = clean_run
    out = tmp_path / "out"
    r = _start_and_stop(cfg, out, signal.SIGINT)
    assert r.returncode == 130, r.stderr
    assert "Traceback" not in r.stderr
    assert "replications are saved in" in r.stderr and "--resume" in r.stderr
    saved = len(list((out / ".partial").glob("rep-*.npz")))
    assert saved == 1
    assert not (out / "summary.json").exists()
    r = _run("run", str(cfg), "--out", str(out), "--resume", "--quiet")
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(_rows(out), _rows(clean))


def test_sigterm_stops_the_workers_silently(clean_run: tuple[Path, Path], tmp_path: Path) -> None:
    """SIGTERM to the whole process group: workers die by the default action (a handler inherited from the
    parent would raise inside a replication and print a traceback); the run exits 143 and resumes."""
    cfg, clean = clean_run
    out = tmp_path / "out"
    r = _start_and_stop(cfg, out, signal.SIGTERM)
    assert r.returncode == 143, r.stderr
    assert "Traceback" not in r.stderr and "terminated: 1 of 12 replications are saved" in r.stderr, r.stderr
    r = _run("run", str(cfg), "--out", str(out), "--resume", "--quiet", "--workers", "2")
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(_rows(out), _rows(clean))


def test_resume_guards(clean_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim.app.run_command import run_experiment
    from sim.engine.loading import load_config_text

    cfg, clean = clean_run
    exp = load_config_text(CONFIG)
    # a finished run resumed with the same count: nothing to do
    assert run_experiment(exp, out=clean, resume=True, quiet=True) == 0
    assert "nothing to do" in capsys.readouterr().err
    # a different experiment in the folder: refused, saying what differs
    other = load_config_text(CONFIG.replace("seed: 3", "seed: 4"))
    assert run_experiment(other, out=clean, resume=True, quiet=True) == 2
    err = capsys.readouterr().err
    assert "different experiment" in err and "seed" in err
    # a finished run cannot be resumed to another count
    more = load_config_text(CONFIG.replace("replications: 12", "replications: 13"))
    assert run_experiment(more, out=clean, resume=True, quiet=True) == 2
    # an interrupted folder reused without --resume: refused, checkpoints kept
    out = tmp_path / "out"
    CheckpointStore(out / ".partial").save("rep-000000", {"x": 1})
    assert run_experiment(exp, out=out, quiet=True) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / ".partial" / "rep-000000.npz").exists()


def test_checkpoint_store(tmp_path: Path) -> None:
    from sim.engine.checkpoints import CheckpointRefused

    store = CheckpointStore(tmp_path / ".partial", {"config_sha256": "ab", "seed": 1})
    assert store.keys() == [] and len(store) == 0
    for v in (10, 2, 33):
        store.save(checkpoint_key("servers", v, "rep", 1), {"v": v})
    store.save(checkpoint_key("rep", 5), "r5")
    (store.dir / ".rep-000006.npz.zz.tmp").write_bytes(b"partial")  # a temporary file that is not ours
    assert store.keys("servers-") == [
        "servers-000002-rep-000001",
        "servers-000010-rep-000001",
        "servers-000033-rep-000001",
    ]
    assert [v["v"] for _, v in store.items("servers-")] == [2, 10, 33]
    assert "rep-000005" in store and store.load("rep-000005") == "r5"
    (store.dir / "rep-000007.npz").write_bytes(b"\x80garbage")  # damaged: refused, and left for the user
    with pytest.raises(CheckpointRefused, match="rep-000007.npz is not a readable capsim checkpoint"):
        list(store.items("rep-"))
    assert (store.dir / "rep-000007.npz").exists()
    assert store.remove_stale_tmp() == 0  # its token is not in the manifest
    store.clear()
    assert sorted(f.name for f in store.dir.iterdir()) == [".rep-000006.npz.zz.tmp", "rep-000007.npz"]
    assert checkpoint_key("value", 0.5, "rep", 3) == "value-0.5-rep-000003"
    assert checkpoint_key("a/b c") == "a_b_c"


def test_write_atomic_never_leaves_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"

    def boom(fh: BinaryIO) -> None:
        fh.write(b"{half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, boom)
    assert not target.exists() and list(tmp_path.iterdir()) == []
