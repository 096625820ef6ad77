"""The HTML report of a results folder (see issue: reports)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from sim.atomic import write_text_atomic


def write_report(folder: Path) -> Path:
    """A minimal self-contained report: the headline table from summary.json."""
    summary = json.loads((Path(folder) / "summary.json").read_text(encoding="utf-8"))
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v['mean']}</td><td>{v['ci95_low']}</td><td>{v['ci95_high']}</td></tr>"
        for k, v in summary["metrics"].items()
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(summary['name'])}</title></head>"
        f"<body><h1>{html.escape(summary['name'])}</h1><p>seed {summary['seed']}, "
        f"{summary['replications']} replications</p><table><tr><th>metric</th><th>mean</th><th>ci95 low</th>"
        f"<th>ci95 high</th></tr>{rows}</table></body></html>"
    )
    path = Path(folder) / "report.html"
    write_text_atomic(path, page)
    return path
