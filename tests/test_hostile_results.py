"""The results folder as a security boundary, and hostile inputs around it (issue 13, part A).

Symlinks inside --out are never followed to write or delete; a run removes only what it can prove is its
own; checkpoints are data (never unpickled) bound to their run; a folder is locked while a run writes it;
a config's name is a plain folder name; data-file errors never print the file's content; --out, --address
and report/compare inputs that cannot work are refused with exit 2 before anything runs.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from sim.app.cli import app
from sim.app.run_command import run_experiment
from sim.config.errors import ConfigError
from sim.engine.checkpoints import CheckpointRefused, CheckpointStore, decode, encode
from sim.engine.executor import Executor
from sim.engine.loading import load_config_text
from sim.engine.results import run_identity
from tests.test_config_errors import ROOT, assert_user_error, capsim
from tests.test_interrupted_runs import PAUSED_CLI, wait_for

TINY = """\
name: hostile
seed: 11
replications: 2
horizon_h: 0.02
workload:
  arrivals: {kind: constant, mean_rps: 2}
  classes:
    - name: chat
      share: 1.0
      input_tokens: {dist: constant, value: 200}
      output_tokens: {dist: constant, value: 20}
backends:
  gpu_pool: {servers: 1, gpu: h100, model: llama-3-8b, max_batch: 8}
output: {report: false}
"""
EXP = load_config_text(TINY)


class MarkerOnUnpickle:
    """Unpickling this creates a file: proof that a checkpoint was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def _run(out: Path, resume: bool = False, capsys: pytest.CaptureFixture[str] | None = None) -> tuple[int, str]:
    code = run_experiment(EXP, out=out, executor=Executor(workers=1), quiet=True, resume=resume)
    return code, capsys.readouterr().err if capsys is not None else ""


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "out"
    assert run_experiment(EXP, out=out, executor=Executor(workers=1), quiet=True) == 0
    return out


# -- symlinks and deletion ----------------------------------------------------------------------
def test_symlinked_partial_is_refused_and_its_target_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "v"
    victim.mkdir()
    (victim / "f").write_text("x", encoding="utf-8")
    out = tmp_path / "o"
    out.mkdir()
    (out / ".partial").symlink_to(victim)
    for resume in (False, True):
        code, err = _run(out, resume, capsys)
        assert code == 2 and ".partial is a symlink" in err, err
        assert sorted(p.name for p in victim.iterdir()) == ["f"]
        assert (victim / "f").read_text(encoding="utf-8") == "x"


def test_symlinks_in_the_folder_are_replaced_never_written_through(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me", encoding="utf-8")
    out = tmp_path / "o"
    out.mkdir()
    for name in ("config.yaml", "summary.json", "timeseries.parquet"):
        (out / name).symlink_to(victim)
    code, err = _run(out, capsys=capsys)
    assert code == 0, err
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert not (out / "summary.json").is_symlink() and (out / "summary.json").is_file()


def test_a_users_hidden_tmp_files_are_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    (out / ".partial").mkdir(parents=True)
    (out / ".draft.tmp").write_text("mine", encoding="utf-8")
    (out / ".summary.json.1234.tmp").write_text("mine too", encoding="utf-8")
    (out / ".partial" / ".x.tmp").write_text("and this", encoding="utf-8")
    code, err = _run(out, capsys=capsys)
    assert code == 0, err
    assert (out / ".draft.tmp").read_text(encoding="utf-8") == "mine"
    assert (out / ".summary.json.1234.tmp").exists() and (out / ".partial" / ".x.tmp").exists()


# -- checkpoints are data, bound to their run --------------------------------------------------
def _crafted_folder(tmp_path: Path, name: str, data: bytes) -> Path:
    out = tmp_path / "o"
    (out / ".partial").mkdir(parents=True)
    (out / ".partial" / name).write_bytes(data)
    return out


def test_a_pickle_checkpoint_is_refused_and_never_executed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "executed"
    payload = pickle.dumps(MarkerOnUnpickle(marker))
    for name in ("rep-000000.pkl", "rep-000000.npz"):  # the old format, and a pickle under the new name
        out = _crafted_folder(tmp_path / name, name, payload)
        code, err = _run(out, resume=True, capsys=capsys)
        assert code == 2, err
        assert "pickled checkpoints of an older capsim" in err or "not a readable capsim checkpoint" in err, err
        assert not marker.exists()
        assert not (out / "summary.json").exists()


def test_an_npz_with_an_object_array_is_refused_and_never_executed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "executed"
    buf = io.BytesIO()
    np.savez(
        buf, __header__=np.frombuffer(b"{}", dtype=np.uint8), a0=np.array([MarkerOnUnpickle(marker)], dtype=object)
    )
    out = _crafted_folder(tmp_path, "rep-000000.npz", buf.getvalue())
    code, err = _run(out, resume=True, capsys=capsys)
    assert code == 2 and "not a readable capsim checkpoint" in err, err
    assert not marker.exists()


def test_a_foreign_checkpoint_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim.engine.replication import simulate

    other = load_config_text(TINY.replace("seed: 11", "seed: 12"))
    out = tmp_path / "o"
    store = CheckpointStore(out / ".partial", run_identity(other))
    store.save("rep-000000", simulate(other, 0))
    code, err = _run(out, resume=True, capsys=capsys)
    assert code == 2 and "checkpoints of another run" in err and "seed 12" in err, err
    (out / ".partial" / "manifest.json").unlink()  # the file itself still names its run
    code, err = _run(out, resume=True, capsys=capsys)
    assert code == 2 and "belongs to another run" in err, err
    assert (out / ".partial" / "rep-000000.npz").exists()  # refused, not deleted: the user decides


def test_a_checkpoint_under_another_key_is_refused() -> None:
    ident = run_identity(EXP)
    with pytest.raises(CheckpointRefused, match="holds the unit 'rep-000001'"):
        decode("rep-000000", encode("rep-000001", {"x": 1}, ident), ident)


def test_checkpoints_round_trip_exactly() -> None:
    from sim.engine.replication import simulate

    ident = run_identity(EXP)
    res = simulate(EXP, 1)
    back = decode("rep-000001", encode("rep-000001", res, ident), ident)
    assert back.metrics == res.metrics and back.hourly == res.hourly and back.histograms == res.histograms
    assert all(type(back.metrics[k]) is type(v) for k, v in res.metrics.items())
    for k, v in res.timeseries.items():
        assert back.timeseries[k].dtype == v.dtype and np.array_equal(back.timeseries[k], v)


@given(st.binary(max_size=600))
def test_arbitrary_bytes_as_a_checkpoint_are_refused(data: bytes) -> None:
    ident = {"config_sha256": "0" * 64, "seed": 1}
    with pytest.raises(CheckpointRefused):
        decode("rep-000000", data, ident)


@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0))
def test_damaged_checkpoints_are_refused(noise: bytes, at: int) -> None:
    ident = {"config_sha256": "0" * 64, "seed": 1}
    good = encode("rep-000000", {"a": np.arange(5.0), "b": [1, None, 2.5]}, ident)
    i = at % len(good)
    bad = good[:i] + noise + good[i + len(noise) :]
    if bad == good:
        return
    try:
        value = decode("rep-000000", bad, ident)
    except CheckpointRefused:
        return
    # a change that still decodes (e.g. inside zip padding) must decode to data of the same shape
    assert set(value) == {"a", "b"}


# -- one writer at a time ----------------------------------------------------------------------
def test_a_second_run_on_a_locked_folder_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    """Two real processes: the first holds the lock (and says so), the second is refused naming its PID."""
    out = tmp_path / "o"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from sim.engine.folder_lock import lock_folder\n"
            "with lock_folder(sys.argv[1]):\n    print('locked', flush=True)\n    sys.stdin.read()",
            str(out),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        cfg = tmp_path / "c.yaml"
        cfg.write_text(TINY, encoding="utf-8")
        r = capsim("run", str(cfg), "--out", str(out), "--quiet")
        assert_user_error(r, f"another capsim run (PID {holder.pid})")
        assert not (out / "summary.json").exists()
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0
    assert not (out / ".capsim.lock").exists()  # the holder removed its lock file


def test_two_capsim_runs_on_one_folder(tmp_path: Path) -> None:
    """A real run holds the folder (paused after its first checkpoint); a second run is refused with its PID."""
    out = tmp_path / "o"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.replace("replications: 2", "replications: 4"), encoding="utf-8")
    first = subprocess.Popen(
        [sys.executable, PAUSED_CLI, "run", str(cfg), "--out", str(out), "--quiet", "--workers", "1"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: list((out / ".partial").glob("rep-*.npz")), "the first run's checkpoint", first)
        assert (out / ".capsim.lock").read_text(encoding="ascii").strip() == str(first.pid)
        second = capsim("run", str(cfg), "--out", str(out), "--quiet", "--resume")
        assert_user_error(second, f"PID {first.pid}")
    finally:
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=120)
    assert first.returncode == 143, err
    r = capsim("run", str(cfg), "--out", str(out), "--quiet", "--resume")  # the lock went with the first run
    assert r.returncode == 0, r.stderr


# -- names ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "../up", "a\\b", "a\x00b", "a b", "a\nb"])
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config_text(TINY.replace("name: hostile", f"name: {name!r}".replace("'", '"')))
    assert any(p.path == "name" and "plain folder name" in p.message for p in exc.value.problems)


def test_name_dotdot_is_refused_at_validate(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY.replace("name: hostile", "name: '..'"), encoding="utf-8")
    assert_user_error(capsim("validate", str(cfg)), "name (line 1): must be a plain folder name")
    cfg.write_text(TINY, encoding="utf-8")
    assert_user_error(capsim("run", str(cfg), "--set", "name=..", "--out", str(tmp_path / "o")), "plain folder name")
    assert not (tmp_path / "o").exists()


@given(st.text(max_size=30))
def test_an_accepted_name_is_one_plain_path_component(name: str) -> None:
    try:
        exp = EXP.model_validate({**EXP.model_dump(), "name": name})
    except ValueError:
        return
    assert Path(exp.name).name == exp.name and not exp.name.startswith(".")
    assert "/" not in exp.name and "\x00" not in exp.name and exp.name not in (".", "..")


# -- data files: the path and the problem, never the content --------------------------------------
def test_data_file_errors_never_print_the_files_content(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("root:x:0:0:TOP-SECRET-LINE:/root:/bin/bash\nline two: more secret\n", encoding="utf-8")
    jsonl = tmp_path / "secret.jsonl"
    jsonl.write_text('{"TOP-SECRET-LINE": 1}\nnot json TOP-SECRET-LINE\n', encoding="utf-8")
    configs = {
        "azure": f"  arrivals: {{kind: trace, file: {secret}}}\n",
        "mooncake": f"  arrivals: {{kind: trace, file: {jsonl}}}\n",
        "etc-passwd": "  arrivals: {kind: trace, file: /etc/passwd}\n",
    }
    for what, arrivals in configs.items():
        if what == "etc-passwd" and not Path("/etc/passwd").is_file():
            continue
        cfg = tmp_path / f"{what}.yaml"
        cfg.write_text(TINY.replace("  arrivals: {kind: constant, mean_rps: 2}\n", arrivals), encoding="utf-8")
        r = capsim("validate", str(cfg))
        lines = assert_user_error(r, "workload.arrivals.file")
        assert "TOP-SECRET-LINE" not in r.stderr and "root:x" not in r.stderr, r.stderr
        assert any(str(Path(arrivals.split("file: ")[1].rstrip("}\n"))) in ln for ln in lines)


def test_empirical_column_errors_never_print_the_files_content(tmp_path: Path) -> None:
    from workloads.files import read_column

    secret = tmp_path / "s.csv"
    secret.write_text("TOP-SECRET-HEADER;x\n1;2\n", encoding="utf-8")
    with pytest.raises(ValueError) as exc:
        read_column(str(secret), "tokens")
    assert str(secret) in str(exc.value) and "TOP-SECRET" not in str(exc.value)
    secret.write_bytes(b'a,b\n1,2\n"TOP-SECRET,3,4,5\n')
    with pytest.raises(ValueError) as exc:
        read_column(str(secret), "a")
    assert "TOP-SECRET" not in str(exc.value)


# -- --out, --address ---------------------------------------------------------------------------------
def test_out_that_is_a_file_or_dev_null_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "a-file"
    f.write_text("x", encoding="utf-8")
    for out in (f, Path("/dev/null"), f / "below-a-file"):
        code, err = _run(out, capsys=capsys)
        assert code == 2 and "--out:" in err and str(out) in err, err
    assert f.read_text(encoding="utf-8") == "x"


def _as_unprivileged() -> list[str]:
    """A command prefix that runs as nobody when the tests run as root (root ignores read-only modes);
    skips when that is not possible here."""
    if os.geteuid() != 0:
        return []
    import shutil

    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: root ignores read-only folders")
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import sim.app.cli"], cwd="/", env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, check=False,
    )  # fmt: skip
    if probe.returncode != 0:
        pytest.skip("cannot run capsim as an unprivileged user here (root ignores read-only folders)")
    return prefix


def test_read_only_out_is_refused_before_any_replication() -> None:
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="capsim-ro-"))
    try:
        base.chmod(0o755)
        cfg = base / "c.yaml"
        cfg.write_text(TINY, encoding="utf-8")
        cfg.chmod(0o644)
        ro = base / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        prefix = _as_unprivileged()
        for out in (ro, ro / "new"):
            r = subprocess.run(
                [*prefix, sys.executable, "-m", "sim", "run", str(cfg), "--out", str(out), "--quiet"],
                cwd="/", env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                timeout=120, check=False,
            )  # fmt: skip
            assert_user_error(r, f"--out: {out}")
            assert "replications" not in r.stdout
        assert list(ro.iterdir()) == []
    finally:
        (base / "ro").chmod(0o755)
        import shutil

        shutil.rmtree(base)


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "not a url:x", "udp://127.0.0.1:8786", "tcp://:8786"])
def test_bad_dask_address_is_refused_quickly(tmp_path: Path, address: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TINY, encoding="utf-8")
    started = time.monotonic()
    r = capsim("run", str(cfg), "--executor", "dask", "--address", address, "--out", str(tmp_path / "o"))
    assert_user_error(r, f"--address {address}:")
    assert "Client.__del__" not in r.stderr
    assert time.monotonic() - started < 60  # the connect timeout is 5 s; the rest is start-up under load
    assert not (tmp_path / "o").exists()


# -- report and compare on damaged folders ------------------------------------------------------------
def _damaged_copies(finished: Path, tmp_path: Path) -> dict[str, Path]:
    import shutil

    cases = {}
    for what in ("truncated summary", "summary not an object", "garbage rows", "no rows", "half-written"):
        d = tmp_path / what.replace(" ", "-")
        shutil.copytree(finished, d)
        cases[what] = d
    (cases["truncated summary"] / "summary.json").write_text('{"name": "x", "metr', encoding="utf-8")
    (cases["summary not an object"] / "summary.json").write_text("[1, 2]", encoding="utf-8")
    (cases["garbage rows"] / "replications.parquet").write_bytes(b"PAR1 not really")
    (cases["no rows"] / "replications.parquet").unlink()
    (cases["half-written"] / ".partial").mkdir()
    return cases


def test_report_and_compare_refuse_damaged_folders(finished: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    for what, d in _damaged_copies(finished, tmp_path).items():
        for args in (["report", str(d)], ["compare", str(finished), str(d)], ["compare", str(d), str(finished)]):
            r = runner.invoke(app, args)
            assert r.exit_code == 2, (what, args, r.output)
            assert str(d) in r.output and "Traceback" not in r.output, (what, r.output)
        assert not (d / "report.html").exists(), what
    ok = runner.invoke(app, ["compare", str(finished), str(finished)])
    assert ok.exit_code == 0, ok.output
