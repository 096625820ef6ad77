"""README and docs stand alone: every relative link and every file they mention is in the repository.

Checked: Markdown links `[text](path#anchor)` (the file, and the heading the anchor names), and inline-code
mentions of repository paths (`tests/test_textbook.py`, `sim/config/*.py`, `experiments/default.yaml`).
Placeholders (`results/<name>/...`) and paths inside a results folder (`plots/*.png`) are not repository
paths and are skipped. No file of the project names files that a user's clone does not have.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "benchmarks").glob("*.md")])
TOP = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")} - {"results"}
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
FILE_LIKE = re.compile(r"\.(py|md|yaml|yml|png|csv|json|sh|toml|txt|parquet)$")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())  # GitHub keeps underscores (growth_per_month)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(md: Path) -> set[str]:
    text = FENCE.sub("", md.read_text(encoding="utf-8"))
    return {_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", text, re.M)}


def _links(md: Path) -> list[str]:
    text = FENCE.sub("", md.read_text(encoding="utf-8"))
    return [a or b for a, b in LINK.findall(text)]


def _mentions(md: Path) -> list[str]:
    """Inline-code spans that name a repository path (its first part is a top-level entry)."""
    text = md.read_text(encoding="utf-8")
    out = []
    for span in CODE.findall(text):
        path = span.split("::", 1)[0].rstrip(".,:;)")
        if any(c in path for c in "<>{}$=") or path.startswith(("-", "/", "http")):
            continue
        first = path.split("/", 1)[0]
        if first in TOP and ("/" in path or FILE_LIKE.search(path)):
            out.append(path)
    # and paths written as plain text: "see docs/metrics.md"
    plain = CODE.sub(" ", FENCE.sub(" ", text))
    for m in re.finditer(r"(?<![\w/.(])((?:[\w-]+/)+[\w.*-]+)", plain):
        path = m.group(1).rstrip(".,:;")
        if path.split("/", 1)[0] in TOP and FILE_LIKE.search(path):
            out.append(path)
    return out


def _exists(path: str, base: Path) -> bool:
    for root in (base, ROOT):
        if any(c in path for c in "*?["):
            if list(root.glob(path)):
                return True
        elif (root / path).exists():
            return True
    return False


@pytest.mark.parametrize("md", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_relative_links_resolve(md: Path) -> None:
    broken = []
    for link in _links(md):
        if re.match(r"^[a-z]+:", link):  # http:, https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (md.parent / path).resolve() if path else md
        if not target.exists():
            broken.append(f"{link}: no such file")
            continue
        if anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.name}")
    assert not broken, f"{md.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("md", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_file_mentions_resolve(md: Path) -> None:
    missing = sorted({p for p in _mentions(md) if not _exists(p, md.parent)})
    assert not missing, f"{md.relative_to(ROOT)} mentions files that are not in the repository: {missing}"


def test_the_checks_catch_a_dangling_link_and_mention(tmp_path: Path) -> None:
    md = tmp_path / "x.md"
    text = "see [gone](nowhere.md), `tests/no_such_test.py`, `docs/metrics.md` or sim/gone.py\n"
    md.write_text(text, encoding="utf-8")
    assert _links(md) == ["nowhere.md"]
    assert _mentions(md) == ["tests/no_such_test.py", "docs/metrics.md", "sim/gone.py"]
    assert not _exists("tests/no_such_test.py", tmp_path) and _exists("docs/metrics.md", tmp_path)


# spelled in parts, so that this file does not name them either
FORBIDDEN = ("CONTRACT" + ".md", "MEASUREMENTS" + ".md", ".." + "/shared")


def test_no_file_names_what_a_clone_lacks() -> None:
    hits = []
    for sub in ("README.md", "docs", "sim", "backends", "workloads", "experiments", "tests", "benchmarks", "examples"):
        base = ROOT / sub
        files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()] if base.exists() else []
        for f in files:
            if f.suffix not in (".py", ".md", ".yaml", ".yml", ".sh", ".txt", ".toml"):
                continue
            text = f.read_text(encoding="utf-8", errors="replace")
            hits += [f"{f.relative_to(ROOT)}: {name}" for name in FORBIDDEN if name in text]
    assert not hits, hits
