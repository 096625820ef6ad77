"""report.html in a real browser: headless Chromium loads it with every image decoded, no console error,
no network request and no horizontal scrolling on a laptop-sized window.

Chromium is driven through the DevTools protocol over a pipe (--remote-debugging-pipe: JSON messages
separated by NUL bytes on file descriptors 3 and 4), so the test needs nothing beyond the Debian
`chromium` package. A negative control proves the checks catch a broken page.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sim.app.cli import app

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("headless Chromium not installed (apt-get install chromium)", allow_module_level=True)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
CONSOLE_EVENTS = ("Log.entryAdded", "Runtime.exceptionThrown", "Runtime.consoleAPICalled")
IMAGES_JS = (
    "JSON.stringify(Array.from(document.images).map(i => ({src: i.currentSrc.slice(0, 30), "
    "complete: i.complete, w: i.naturalWidth, h: i.naturalHeight})))"
)


class Browser:
    """A headless Chromium driven over the DevTools pipe."""

    def __init__(self, exe: str, timeout: float = 30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="capsim-chromium-")
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - chromium stderr; closed in close() (a pipe could stall it)
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # park the child's ends above 10 so the dup2 onto 3 and 4 below cannot clobber one with the other
        child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def child_fds() -> None:  # runs in the child between fork and exec
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=child_fds,  # the pipe protocol needs fds 3 and 4 in the child
            close_fds=False,  # our other fds are non-inheritable (PEP 446); 3 and 4 must survive exec
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        os.close(child_r)
        os.close(child_w)
        self.w, self.r = to_chrome_w, from_chrome_r
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        msg: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._recv(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return dict(m.get("result", {}))

    def _recv(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("no message from chromium in time")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                self.log.seek(0)
                err = self.log.read().decode(errors="replace")[-2000:]
                raise EOFError(f"chromium closed the DevTools pipe: {err}")
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\0", 1)
        m = json.loads(raw)
        if "method" in m:
            self.events.append(m)
        return dict(m)

    def wait_for(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            for e in self.events:
                if e["method"] == method:
                    return e
            self._recv(deadline)

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError, EOFError):
            self.send("Browser.close")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        os.close(self.w)
        os.close(self.r)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def load_page(path: Path, width: int = 1366, height: int = 768) -> dict[str, Any]:
    """Open a file in a fresh headless Chromium; return its images, console problems, requests and widths."""
    assert CHROMIUM is not None
    b = Browser(CHROMIUM)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            b.send(f"{domain}.enable", session=sid)
        b.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=sid,
        )
        b.send("Page.navigate", {"url": path.resolve().as_uri()}, session=sid)
        b.wait_for("Page.loadEventFired")

        def js(expr: str) -> Any:
            r = b.send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session=sid)
            return r["result"].get("value")

        # a state, not a pause: once the page reports itself complete through a round trip, every console
        # message it logged while loading has arrived before that answer (the pipe keeps order)
        assert js("document.readyState") == "complete"

        images = json.loads(js(IMAGES_JS))
        widths = {"scroll": js("document.documentElement.scrollWidth"), "client": js("window.innerWidth")}
        title = js("document.title")
        problems = []
        for e in b.events:
            p = e["params"]
            if e["method"] == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                problems.append(f"{p['entry']['level']}: {p['entry']['text']} {p['entry'].get('url', '')}")
            elif e["method"] == "Runtime.exceptionThrown":
                problems.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif e["method"] == "Runtime.consoleAPICalled" and p["type"] in ("error", "warning", "assert"):
                problems.append(f"console.{p['type']}: {[a.get('value') for a in p['args']]}")
        requests = [e["params"]["request"]["url"] for e in b.events if e["method"] == "Network.requestWillBeSent"]
        return {"images": images, "problems": problems, "requests": requests, "widths": widths, "title": title}
    finally:
        b.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "run"
    args = ["run", "experiments/default.yaml", "--reps", "2", "--out", str(out), "--workers", "1", "--quiet"]
    args += ["--set", "horizon_h=12", "--set", "workload.arrivals.mean_rps=0.5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out / "report.html"


def test_report_loads_with_every_image_and_no_console_error(report: Path) -> None:
    page = load_page(report)
    assert page["title"].startswith("capsim report:")
    assert page["problems"] == []
    assert len(page["images"]) >= 5
    for img in page["images"]:
        assert img["src"].startswith("data:image/png;base64,")
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img
    # self-contained: the only requests are the page itself and its inline images
    assert all(u.startswith(("file://", "data:")) for u in page["requests"]), page["requests"]
    # readable on a laptop: no horizontal scrolling at 1366 px
    assert page["widths"]["scroll"] <= page["widths"]["client"]


def test_the_checks_catch_a_broken_page(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!doctype html><title>bad</title><img src='missing.png'><img src='https://capsim.invalid/x.png'>"
        "<script>console.error('boom'); notDefined();</script>",
        encoding="utf-8",
    )
    page = load_page(bad)
    text = "\n".join(page["problems"])
    assert "boom" in text and "exception" in text and "ERR_FILE_NOT_FOUND" in text
    assert any(not (i["complete"] and i["w"] > 0) for i in page["images"])
    assert any(u.startswith("https://") for u in page["requests"])


@pytest.fixture(scope="module")
def sweep_and_compare(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from tests.planning_configs import mgc_config, write

    root = tmp_path_factory.mktemp("browser-sweep")
    cfg = mgc_config(horizon_h=0.1, replications=2, output={"timeseries": True, "report": True})
    path = write(root, cfg)
    args = ["run", path, "--sweep", "backends.gpu_pool.servers=3,4,5", "--out", str(root / "sweep"), "--quiet"]
    result = CliRunner().invoke(app, [*args, "--workers", "1"])
    assert result.exit_code == 0, result.output
    points = sorted((root / "sweep" / "points").iterdir())
    html_out = root / "compare.html"
    result = CliRunner().invoke(app, ["compare", str(points[0]), str(points[1]), "--html", "--html-out", str(html_out)])
    assert result.exit_code == 0, result.output
    return root / "sweep" / "report.html", html_out


@pytest.mark.parametrize("which", ["sweep", "compare"])
def test_sweep_and_compare_reports_render(sweep_and_compare: tuple[Path, Path], which: str) -> None:
    page = load_page(sweep_and_compare[0 if which == "sweep" else 1])
    assert page["title"].startswith(f"capsim {which}:")
    assert page["problems"] == []
    assert len(page["images"]) >= 2
    for img in page["images"]:
        assert img["src"].startswith("data:image/png;base64,")
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img
    assert all(u.startswith(("file://", "data:")) for u in page["requests"]), page["requests"]
    assert page["widths"]["scroll"] <= page["widths"]["client"]
