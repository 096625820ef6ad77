"""`capsim fit`: a log generated from a known workload is fitted back within sampling error; the fitted
config validates and simulates the log's traffic again; the shipped Azure 2024 week is reproduced; bad
rows are counted and reported, and a log with nothing usable exits 2.

Tolerances are multiples of the sampling standard error of the quantity compared (stated at each check)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sim.app.cli import app
from sim.app.fit_report import week_series
from sim.config import Experiment
from sim.core.calendar import HOUR_S
from sim.engine.loading import load_config
from workloads.fit import fit_log
from workloads.fit.writer import write_experiment
from workloads.generator import RequestGenerator
from workloads.log_cells import LogError
from workloads.log_reader import read_request_log
from workloads.shapes import build_rate_curve
from workloads.token_counts import make_token_distribution

MONDAY = pd.Timestamp("2024-01-01T00:00:00Z")  # a Monday
WEEK_S = 7 * 86400.0


def _generate(exp: Experiment, rep: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    blocks = list(RequestGenerator(exp, rep).blocks())
    return (
        np.concatenate([b.arrival_at for b in blocks]),
        np.concatenate([b.input_tokens for b in blocks]),
        np.concatenate([b.output_tokens for b in blocks]),
        np.concatenate([b.class_idx for b in blocks]),
    )


@dataclass
class Proc:
    returncode: int
    stdout: str
    stderr: str


def capsim(*args: str) -> Proc:
    """The CLI in process (the subprocess path is covered by tests/test_cli_run.py)."""
    r = CliRunner().invoke(app, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return Proc(r.exit_code, r.stdout, r.stderr)


def _write_log(
    path: Path, t: np.ndarray, tin: np.ndarray, tout: np.ndarray, extra: dict[str, Any] | None = None
) -> None:
    stamps = (MONDAY + pd.to_timedelta(np.round(t * 1e6).astype(np.int64), unit="us")).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    frame = pd.DataFrame({"TIMESTAMP": stamps, "ContextTokens": tin, "GeneratedTokens": tout, **(extra or {})})
    frame.to_csv(path, index=False)


def _fit_and_write(log: Path, out: Path, **kw: Any) -> tuple[Any, Experiment]:
    fit = fit_log(log, **kw)
    write_experiment(fit, out)
    return fit, load_config(str(out))


@st.composite
def week_workloads(draw: st.DrawFn) -> dict[str, Any]:
    """A week of traffic: an hourly 168-value shape or a diurnal day with a weekend factor; log-normal
    sizes. 40k-90k requests, so every hour holds ~100 or more."""
    mean_rps = draw(st.floats(0.07, 0.15))
    if draw(st.booleans()):
        m = draw(st.lists(st.floats(0.3, 3.0), min_size=168, max_size=168))
        arrivals: dict[str, Any] = {"kind": "hourly", "mean_rps": mean_rps, "multipliers": [round(x, 4) for x in m]}
    else:
        arrivals = {
            "kind": "diurnal",
            "mean_rps": mean_rps,
            "peak_hour": draw(st.floats(6.0, 20.0)),
            "peak_to_mean": draw(st.floats(1.2, 2.5)),
            "weekend_factor": draw(st.floats(0.4, 1.0)),
        }
    cls = {
        "name": "chat",
        "input_tokens": {"dist": "lognormal", "median": draw(st.floats(100, 2000)), "sigma": draw(st.floats(0.3, 1.2))},
        "output_tokens": {"dist": "lognormal", "median": draw(st.floats(20, 400)), "sigma": draw(st.floats(0.3, 1.0))},
    }
    return {
        "seed": draw(st.integers(0, 10_000)),
        "horizon_h": 168,
        "workload": {"arrivals": arrivals, "classes": [cls]},
    }


@pytest.mark.slow
@settings(max_examples=4, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(week_workloads())
def test_round_trip_recovers_rates_and_size_moments(
    tmp_path_factory: pytest.TempPathFactory, cfg: dict[str, Any]
) -> None:
    tmp = tmp_path_factory.mktemp("fit")
    exp = Experiment.model_validate(cfg)
    t, tin, tout, _ = _generate(exp)
    _write_log(tmp / "log.csv", t, tin, tout)
    fit, fitted = _fit_and_write(tmp / "log.csv", tmp / "fitted.yaml")
    n = t.size
    # the week's rate: the fitted mean against the true one, 4 standard errors of a Poisson count
    true_curve = build_rate_curve(exp.workload.arrivals, exp.start_weekday, WEEK_S)
    true_hour = np.array([true_curve.total(h * HOUR_S, (h + 1) * HOUR_S) for h in range(168)])
    assert abs(n - true_hour.sum()) < 4.0 * math.sqrt(true_hour.sum())
    # hour by hour: Pearson X^2 of the fitted hourly counts against the true expectation, ~ chi^2(168)
    fitted_hour = fit.rates.hourly_rate()
    x2 = float(np.sum((fitted_hour - true_hour) ** 2 / true_hour))
    assert x2 < 168 + 5.0 * math.sqrt(2 * 168), x2
    # sizes: the fitted law's exact mean against the true mean, 4 standard errors of a sample mean
    for role, spec in (
        ("input", cfg["workload"]["classes"][0]["input_tokens"]),
        ("output", cfg["workload"]["classes"][0]["output_tokens"]),
    ):
        true = make_token_distribution(
            exp.workload.classes[0].input_tokens if role == "input" else exp.workload.classes[0].output_tokens
        )
        got_spec = (
            fitted.workload.classes[0].input_tokens if role == "input" else fitted.workload.classes[0].output_tokens
        )
        got = make_token_distribution(got_spec, tmp)
        se = math.sqrt(true.variance / n)
        assert abs(got.mean - true.mean) < 4.0 * se, (role, spec, got.mean, true.mean, se)
        # the variance: 4 standard errors of a sample variance (fourth moment of the log-normal law)
        sigma = float(spec["sigma"])
        kurt = math.exp(4 * sigma**2) + 2 * math.exp(3 * sigma**2) + 3 * math.exp(2 * sigma**2) - 6
        se_var = true.variance * math.sqrt((kurt + 2) / n)
        assert abs(got.variance - true.variance) < 4.0 * se_var
    # simulate the fitted config: its week has the log's requests (two Poisson counts: 4 sd of the difference)
    ts, sin, _, _ = _generate(fitted)
    assert abs(ts.size - n) < 4.0 * math.sqrt(2.0 * n)
    assert abs(sin.mean() - tin.mean()) < 4.0 * math.sqrt(2.0 * tin.var() / n)


def _synthetic_burst_log(tmp: Path) -> tuple[Path, dict[str, Any]]:
    arrivals = {
        "kind": "diurnal",
        "mean_rps": 0.3,
        "peak_hour": 14.0,
        "peak_to_mean": 2.0,
        "weekend_factor": 0.5,
        "bursts": [{"at_h": 9.0, "half_width_s": 300.0, "count": 600, "days": "weekdays"}],
        "overdispersion": {"index_of_dispersion": 1.6, "correlation_s": 300.0},
    }
    exp = Experiment.model_validate({"seed": 11, "horizon_h": 168, "workload": {"arrivals": arrivals}})
    t, tin, tout, _ = _generate(exp)
    _write_log(tmp / "burst.csv", t, tin, tout)
    return tmp / "burst.csv", arrivals


def test_burst_and_overdispersion_are_found(tmp_path: Path) -> None:
    log, truth = _synthetic_burst_log(tmp_path)
    fit, fitted = _fit_and_write(log, tmp_path / "b.yaml")
    bursts = fitted.workload.arrivals.bursts
    assert len(bursts) == 1
    b = bursts[0]
    assert abs(b.at_h - 9.0) < 5 / 60 and b.days == "weekdays"
    # the mean excess over 5 days: sd of one day's excess ~ sqrt(600 D) (Poisson noise of window + curve)
    assert abs(b.count - 600) < 4.0 * math.sqrt(600 * 1.6 * 2 / 5)
    od = fitted.workload.arrivals.overdispersion
    assert od is not None and od.index_of_dispersion is not None
    # D is estimated from ~10k minutes, but with slow noise partly absorbed by the hourly curve: 15 %
    assert abs(od.index_of_dispersion - 1.6) < 0.15 * 1.6


def _epoch_s(text: pd.Series) -> np.ndarray:
    return pd.to_datetime(text, utc=True).to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9


def test_azure_2024_week_reproduces_its_hourly_curve(tmp_path: Path) -> None:
    """A request log drawn from the shipped per-minute Azure 2024 code week (at 1/50 of its volume, times
    uniform within each digitised column) is fitted back to the week's hourly curve."""
    from workloads.files import PROFILES_DIR
    from workloads.named_profiles import hour_of_week_multipliers

    cols = pd.read_csv(PROFILES_DIR / "azure_llm_2024_code_1week_rpm_digitized.csv")
    t0 = _epoch_s(cols["t_start_utc"])
    t1 = _epoch_s(cols["t_end_utc"])
    rate = cols["rpm_mid"].to_numpy() / 60.0 / 50.0
    rng = np.random.default_rng(2024)
    n = rng.poisson(rate * (t1 - t0))
    times = np.concatenate([rng.uniform(a, b, k) for a, b, k in zip(t0, t1, n, strict=True)])
    frame = pd.DataFrame({"TIMESTAMP": times.round(3), "ContextTokens": 100, "GeneratedTokens": 10})
    frame.sample(frac=1.0, random_state=1).to_parquet(tmp_path / "week.parquet")  # unsorted, epoch seconds
    fit = fit_log(tmp_path / "week.parquet")
    # the expectation the log was drawn from, per hour of the week (UTC)
    edges = np.arange(math.floor(t0[0] / 3600), math.ceil(t1[-1] / 3600) + 1) * 3600.0
    cum = np.interp(edges, np.concatenate([t0[:1], t1]), np.concatenate([[0.0], np.cumsum(rate * (t1 - t0))]))
    expect = np.diff(cum)
    how = ((edges[:-1] // 3600).astype(np.int64) + 72) % 168
    true = np.zeros(168)
    np.add.at(true, how, expect)
    got = week_series(fit)[1]  # the fitted expectation per hour: curve and bursts
    seen = fit.rates.exposure_h > 0.999
    x2 = float(np.sum((got[seen] - true[seen]) ** 2 / true[seen]))
    df = int(seen.sum())
    assert x2 < df + 5.0 * math.sqrt(2 * df), x2
    # against the shipped hourly profile: the relative error per hour is Poisson noise (sd 1/sqrt(count))
    # plus the profile's own digitisation; its RMS within 1.5 x the Poisson part's RMS
    prof = hour_of_week_multipliers("azure-code-week-2024")
    rel = fit.rates.multipliers[seen] / prof[seen] - 1.0
    poisson_rms = float(np.sqrt(np.mean(1.0 / true[seen])))
    assert float(np.sqrt(np.mean(rel**2))) < 1.5 * poisson_rms
    assert abs(fit.rates.weekend_factor() - (prof.reshape(7, 24)[5:].mean() / prof.reshape(7, 24)[:5].mean())) < 0.02


def test_timestamps_in_mixed_zones_and_units_read_as_the_same_instants(tmp_path: Path) -> None:
    utc = pd.Timestamp("2024-03-04T09:30:00Z").value / 1e9 + np.arange(6) * 600.0
    forms = [
        "2024-03-04T09:30:00Z",
        "2024-03-04T10:40:00+01:00",  # 09:40 UTC
        str(int(utc[2])),  # epoch seconds
        str(int(utc[3] * 1000)),  # epoch milliseconds
        "2024-03-04T05:10:00-04:00",  # 09:10 UTC ... out of order on purpose
        "2024-03-04 10:20:00",  # naive: taken in --timezone (UTC here)
    ]
    expect = [utc[0], utc[1], utc[2], utc[3], utc[0] - 1200.0, utc[5]]
    pd.DataFrame({"time": forms, "input_tokens": 10, "output_tokens": 5}).to_csv(tmp_path / "m.csv", index=False)
    log = read_request_log(tmp_path / "m.csv")
    assert log.problems.counts == {}
    assert np.allclose(np.sort(log.local_s), np.sort(expect))
    berlin = read_request_log(tmp_path / "m.csv", timezone="Europe/Berlin")
    # naive times are Berlin wall-clock; the rest are the same instants shown one hour later
    assert berlin.utc_offset_h == 1.0
    assert np.allclose(np.sort(berlin.local_s)[:-1], np.sort(np.array(expect)[:5]) + 3600.0)


def test_bad_rows_are_counted_with_line_numbers_never_echoed(tmp_path: Path) -> None:
    secret = "sk-SECRET-do-not-print"
    text = (
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2024-01-01T00:00:00Z,10,5\n"
        f"{secret},10,5\n"  # line 3: not a time
        "2024-01-01T00:01:00Z,,5\n"  # line 4: input missing (rate only)
        "2024-01-01T00:02:00Z,ten,5\n"  # line 5: input invalid
        ",10,5\n"  # line 6: time missing
        "2024-01-01T00:03:00Z,10,5,extra\n"  # line 7: wrong field count
        "2024-01-01T00:03:00Z,12,6\n"  # duplicate timestamp of line 8? no: line 8 shares with line 4? kept
        "2024-01-01T00:04:00Z,-3,6\n"  # line 9: negative
    )
    (tmp_path / "bad.csv").write_text(text)
    proc = capsim("fit", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "bad.yaml"), "--no-report")
    assert proc.returncode == 0, proc.stderr
    assert secret not in proc.stderr and secret not in proc.stdout
    err = proc.stderr
    assert "time is not a date-time or number (row left out): 1 (lines 3)" in err
    assert "time missing (row left out): 1 (lines 6)" in err
    assert "wrong number of fields (row left out): 1 (lines 7)" in err
    assert "input tokens missing (counted for the rate, not the sizes): 1 (lines 4)" in err
    assert "input tokens not a whole number >= 0 (counted for the rate, not the sizes): 2 (lines 5, 9)" in err
    exp = load_config(str(tmp_path / "bad.yaml"))
    assert exp.workload.arrivals.kind == "hourly"
    assert proc.returncode == 0 and "Traceback" not in err


def test_nothing_usable_exits_2_with_counts(tmp_path: Path) -> None:
    secret = "password=hunter2"
    (tmp_path / "none.csv").write_text(f"TIMESTAMP,ContextTokens,GeneratedTokens\n{secret},1,1\nyesterday,2,2\n,3,3\n")
    proc = capsim("fit", str(tmp_path / "none.csv"), "--out", str(tmp_path / "x.yaml"))
    assert proc.returncode == 2
    assert "no row has a usable time" in proc.stderr and "2 (lines 2, 3)" in proc.stderr
    assert "1 (lines 4)" in proc.stderr
    assert secret not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.yaml").exists()
    (tmp_path / "nosize.jsonl").write_text('{"timestamp": 1, "input_length": "a", "output_length": 3}\n[1]\n{bad\n')
    proc = capsim("fit", str(tmp_path / "nosize.jsonl"), "--out", str(tmp_path / "y.yaml"))
    assert proc.returncode == 2, proc.stderr
    assert "no row has usable input and output tokens" in proc.stderr
    assert "not JSON (row left out): 1 (lines 3)" in proc.stderr
    assert "not a JSON object (row left out): 1 (lines 2)" in proc.stderr
    proc = capsim("fit", str(tmp_path / "none.csv"), "--out", str(tmp_path / "x.yaml"), "--time-column", "nope")
    assert proc.returncode == 2 and "no column 'nope'" in proc.stderr


def test_unknown_timezone_and_missing_file_exit_2(tmp_path: Path) -> None:
    with pytest.raises(LogError):
        read_request_log(tmp_path / "missing.csv")
    (tmp_path / "a.csv").write_text("time,input_tokens,output_tokens\n1700000000,1,1\n1700000060,1,1\n")
    with pytest.raises(LogError, match="unknown time zone"):
        read_request_log(tmp_path / "a.csv", timezone="Mars/Olympus")


def test_classes_sessions_and_prompt_sharing(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = []
    mean_turns, think_mean = 3.0, 40.0
    for u in range(600):
        start = rng.uniform(0, 2 * 86400)
        k = rng.geometric(1 / mean_turns)
        ctx, t = 0, start
        for _ in range(k):
            msg = int(rng.integers(20, 200))
            inp = ctx + msg
            out = int(rng.integers(10, 100))
            rows.append((1.7e9 + t, inp, out, "chat" if u % 4 else "agent", f"user{u}", f"p{rng.zipf(1.5) % 500}"))
            ctx = inp + out
            t += rng.exponential(think_mean)
    frame = pd.DataFrame(rows, columns=["ts", "prompt_tokens", "completion_tokens", "class", "user", "prompt_hash"])
    frame.to_csv(tmp_path / "s.csv", index=False)
    fit, exp = _fit_and_write(tmp_path / "s.csv", tmp_path / "s.yaml")
    names = {c.name: c.share for c in exp.workload.classes}
    assert set(names) == {"chat", "agent"}
    assert abs(names["agent"] - 0.25) < 4 * math.sqrt(0.25 * 0.75 / len(rows))
    s = fit.sessions
    assert s is not None and s.carries_context and exp.workload.sessions is not None
    # turns: geometric mean 3 over 600 sessions (sd of the mean sqrt(6/600))
    assert abs(s.mean_turns - mean_turns) < 4 * math.sqrt(mean_turns * (mean_turns - 1) / 600)
    n_think = len(rows) - 600
    assert abs(s.think_mean_s - think_mean) < 4 * think_mean / math.sqrt(n_think)
    assert fit.sharing is not None and fit.sharing.kind == "prompt" and exp.cache.response.zipf_s > 0


def test_scale_and_growth_multiply_the_expected_arrivals() -> None:
    base = {"seed": 1, "horizon_h": 24 * 14, "workload": {"arrivals": {"kind": "diurnal", "mean_rps": 2.0}}}
    from workloads.generator import make_arrival_source

    def expected(**wl: Any) -> float:
        cfg = {**base, "workload": {**base["workload"], **wl}}
        src = make_arrival_source(Experiment.model_validate(cfg), 0, 24 * 14 * 3600.0)
        return src.mean_rate() * 24 * 14 * 3600.0

    plain = expected()
    assert expected(scale=2.5) == pytest.approx(2.5 * plain, rel=1e-12)
    # growth: the integral of the curve times (1 + g)^(t / 730 h); over whole weeks of a weekly-periodic curve
    # the exact answer is sum over steps of rate * mean factor, checked against a fine numerical integral
    g = 0.3
    grown = expected(growth_per_month=g)
    exp = Experiment.model_validate(base)
    curve = build_rate_curve(exp.workload.arrivals, "mon", 24 * 14 * 3600.0, step_s=1.0)
    tmid = (np.arange(curve.rates.size) + 0.5) * 1.0
    numeric = float(np.sum(curve.rates * (1 + g) ** (tmid / (730 * 3600.0))))
    assert grown == pytest.approx(numeric, rel=1e-6)
    # bursts follow the growth factor at their centre
    burst = {"bursts": [{"at_h": 9.0, "count": 1000, "poisson": True, "days": "all"}]}
    cfg = {**base, "workload": {"arrivals": {"kind": "constant", "mean_rps": 0.0001, **burst}, "scale": 3.0}}
    src = make_arrival_source(Experiment.model_validate(cfg), 0, 24 * 14 * 3600.0)
    assert src.bursts.expected_total() == pytest.approx(3.0 * 1000 * 14)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="scale"):
        Experiment.model_validate({"workload": {"arrivals": {"kind": "trace", "file": "x.csv"}, "scale": 2.0}})
