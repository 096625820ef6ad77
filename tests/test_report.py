"""The HTML report and `capsim report` / `capsim compare` (fast checks, no browser)."""

from __future__ import annotations

import base64
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.app.cli import app
from sim.report import write_report
from sim.report.page import fmt_metric
from sim.report.style import fmt_count, fmt_fraction

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--set", "horizon_h=12", "--set", "workload.arrivals.mean_rps=0.5", "--workers", "1", "--quiet"]


# a plan's and a break-even's documents, as their commands write them (tests/test_report_png.py draws them too)
PLAN_DOC = {
    "key": "backends.gpu_pool.servers",
    "value": 4,
    "confidence": 0.95,
    "monthly_cost_usd": 7855.0,
    "tried": [
        {"value": 2, "p_meet": 0.0, "replications": 20},
        {"value": 3, "p_meet": 0.55, "replications": 20},
        {"value": 4, "p_meet": 1.0, "replications": 40},
    ],
}
BREAKEVEN_DOC = {
    "volumes": [1e8, 1e9, 1e10],
    "api_monthly_usd": [500.0, 5000.0, 50000.0],
    "self_hosted_monthly_usd": [
        {"mean": 1964.0, "low": 1964.0, "high": 1964.0},
        {"mean": 3928.0, "low": 3900.0, "high": 3990.0},
        {"mean": 19640.0, "low": 19000.0, "high": 21000.0},
    ],
    "hybrid_monthly_usd": [480.0, None, 18000.0],
    "self_hosted_servers": [1, 2, 10],
    "breakeven_tokens_per_month": 6.5e8,
}


def _run(out: Path, *extra: str) -> None:
    args = ["run", "experiments/default.yaml", "--reps", "3", "--out", str(out), *TINY, *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    _run(out)
    return out


class _Refs(HTMLParser):
    """Every URL-bearing attribute and tag of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.imgs: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for k, v in attrs:
            if k == "id" and v:
                self.ids.append(v)
            if k in ("src", "href", "srcset", "action", "data", "poster") and v is not None:
                self.urls.append((tag, k, v))
                if tag == "img" and k == "src":
                    self.imgs.append(v)


def _parse(path: Path) -> tuple[str, _Refs]:
    text = path.read_text(encoding="utf-8")
    p = _Refs()
    p.feed(text)
    return text, p


def test_run_writes_a_self_contained_report(run_dir: Path) -> None:
    report = run_dir / "report.html"
    text, refs = _parse(report)
    assert "script" not in refs.tags and "link" not in refs.tags and "iframe" not in refs.tags
    for tag, attr, url in refs.urls:
        assert not url.lower().startswith(("http://", "https://", "//", "ftp:", "file:")), (tag, attr, url)
        assert url.startswith(("data:image/png;base64,", "#")), (tag, attr, url[:60])
    assert "http://" not in text and "https://" not in text and "url(" not in text
    assert len(refs.imgs) >= 5
    for src in refs.imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_MAGIC)


def test_report_shows_the_digest_headline_and_charts(run_dir: Path) -> None:
    text, refs = _parse(run_dir / "report.html")
    summary = json.loads((run_dir / "summary.json").read_text())
    for chart in ("day", "latency", "utilization", "bill", "spread", "cache"):
        assert chart in refs.ids, chart
        assert (run_dir / "plots" / f"{chart}.png").read_bytes().startswith(PNG_MAGIC)
    assert summary["name"] in text
    assert f"seed {summary['seed']}" in text and f"{summary['replications']} replications" in text
    assert f"capsim {summary['capsim_version']}" in text
    assert "<details><summary>Resolved config (config.yaml)</summary>" in text
    assert "headline" in refs.ids and "95% CI of the mean" in text
    assert "peak_ttft_p95_s" in text and "monthly_cost_usd" in text


def test_capsim_report_rebuilds_the_report(run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(run_dir, folder)
    shutil.rmtree(folder / "plots")
    (folder / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / "report.html").is_file()
    assert str(folder / "report.html") in result.output
    assert sorted(p.name for p in (folder / "plots").glob("*.png")) == sorted(
        p.name for p in (run_dir / "plots").glob("*.png")
    )


def test_capsim_report_refuses_a_folder_that_is_not_a_results_folder(tmp_path: Path) -> None:
    for target in (tmp_path, tmp_path / "missing"):
        result = CliRunner().invoke(app, ["report", str(target)])
        assert result.exit_code == 2
        assert "not a capsim results folder" in result.output
    assert not (tmp_path / "report.html").exists()


def test_report_tolerates_missing_files_and_columns(run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "thin"
    folder.mkdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["metrics"] = {k: v for k, v in summary["metrics"].items() if k in ("requests", "ttft_p95_s")}
    summary["metrics"]["prefix_cache_hit_rate"] = {"n": 3, "mean": 0.4, "ci95_low": 0.3, "ci95_high": 0.5}
    summary.pop("breakdown")
    (folder / "summary.json").write_text(json.dumps(summary))
    reps = pd.read_parquet(run_dir / "replications.parquet")[["replication", "requests"]]
    reps["prefix_cache_hit_rate"] = [0.35, 0.4, 0.45]
    reps.to_parquet(folder / "replications.parquet")
    ts = pd.read_parquet(run_dir / "timeseries.parquet")[["replication", "minute", "arrivals"]]
    ts.to_parquet(folder / "timeseries.parquet")
    path = write_report(folder)
    text, refs = _parse(path)
    assert "day" in refs.ids and "cache" in refs.ids  # arrivals alone still make the day chart; a new hit rate
    assert "latency" not in refs.ids and "bill" not in refs.ids and "utilization" not in refs.ids
    assert "prefix_cache_hit_rate" in text
    (folder / "timeseries.parquet").write_bytes(b"not parquet")
    _, refs = _parse(write_report(folder))
    assert "day" not in refs.ids


def test_plan_and_breakeven_folders(tmp_path: Path) -> None:
    (tmp_path / "plan.json").write_text(json.dumps(PLAN_DOC))
    (tmp_path / "breakeven.json").write_text(json.dumps(BREAKEVEN_DOC))
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text, refs = _parse(tmp_path / "report.html")
    assert "plan" in refs.ids and "breakeven" in refs.ids
    assert (tmp_path / "plots" / "plan.png").read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "plots" / "breakeven.png").read_bytes().startswith(PNG_MAGIC)
    assert "Plan: every value tried" in text
    # malformed entries are skipped, not fatal
    (tmp_path / "plan.json").write_text(json.dumps({"key": "x", "tried": [{"value": "a"}, 3]}))
    (tmp_path / "breakeven.json").write_text(json.dumps({"volumes": [1, 2], "api_monthly_usd": [1]}))
    _, refs = _parse(write_report(tmp_path))
    assert "plan" not in refs.ids and "breakeven" not in refs.ids


def test_compare_pairs_runs_that_share_the_seed(run_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "fewer-servers"
    _run(other, "--set", "backends.gpu_pool.servers=2", "--set", "output.report=false")  # default: 3
    result = CliRunner().invoke(app, ["compare", str(run_dir), str(other), "--json"])
    assert result.exit_code == 0, result.output
    cmp = json.loads(result.output)
    assert cmp["paired"] is True and cmp["pairs"] == 3 and cmp["method"] == "paired"
    gpu = cmp["metrics"]["cost_gpu_usd"]
    a, b = gpu["a"]["mean"], gpu["b"]["mean"]
    assert gpu["diff"]["mean"] == pytest.approx(b - a) and b == pytest.approx(a * 2 / 3)
    assert gpu["significant"] is True
    # the same arrivals in both runs (common random numbers): the paired difference of requests is exactly 0
    req = cmp["metrics"]["requests"]["diff"]
    assert req["mean"] == 0 and req["ci_low"] == 0 and req["ci_high"] == 0
    table = CliRunner().invoke(app, ["compare", str(run_dir), str(other)])
    assert table.exit_code == 0 and "paired on 3 common replications" in table.output


def test_compare_without_a_common_seed_is_unpaired(run_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "seed8"
    _run(other, "--seed", "8", "--set", "output.report=false")
    cmp = json.loads(CliRunner().invoke(app, ["compare", str(run_dir), str(other), "--json"]).output)
    assert cmp["paired"] is False and cmp["method"] == "welch"
    d = cmp["metrics"]["requests"]["diff"]
    assert d["ci_low"] < d["mean"] < d["ci_high"]


def test_compare_refuses_a_folder_without_summary(run_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["compare", str(run_dir), str(tmp_path)])
    assert result.exit_code == 2 and "not a capsim results folder" in result.output


def test_formats() -> None:
    assert fmt_fraction(0.9999981) == "99.99981%"
    assert fmt_fraction(0.5) == "50.0%"
    assert fmt_metric("ttft_p95_s", 0.0551) == "55.1 ms"
    assert fmt_metric("monthly_cost_usd", 7854.8) == "$7,855"
    assert fmt_metric("requests", None) == "n/a"
    # a count whose name holds "rate" is still a count (429 answers), a *_rate metric is a share
    assert fmt_metric("api_rate_limited", 88.5) == "88.5" and fmt_metric("api_rate_limited", 8850) == "8,850"
    assert fmt_metric("cache_hit_rate", 0.17) == "17.0%"
    assert [fmt_count(v) for v in (950, 12_345, 518_766, 6.5e8, 1e10)] == ["950", "12.3k", "518.8k", "650M", "10B"]
