"""What the page holds while it encrypts a ~20 MiB image: the old whole-message path against the
streamed one, in real Chromium (Debian's package, driven by Playwright, nothing downloaded).

A benchmark-like check, not a timed test: the page (web/test/stream-heap-page.ts, bundled for the
browser) encrypts a 20 MiB file either way while this test samples the renderer's heap through the
DevTools protocol (`Runtime.getHeapUsage`: the V8 heap plus ArrayBuffer backing stores, where image
and ciphertext arrays live). The peak over the run, less the heap before it, is what encrypting
cost. The whole-message path must show the image held several times (this proves the sampling sees
the arrays at all); the streamed path must stay well below one image. A second view, reported but
not asserted: the growth of the renderer processes' anonymous resident memory (/proc). Numbers:
docs/web.md, and CCC_WEB_HEAP_OUT (a JSON file) when set.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, CDPSession, sync_playwright

WEB = Path(__file__).resolve().parents[2] / "web"
CHROMIUM = os.environ.get("CCC_CHROMIUM", "/usr/bin/chromium")
SIZE = 20 * 1024 * 1024
MIB = 1024 * 1024
BUILD = """
import { build } from "esbuild";
await build({
  entryPoints: ["test/stream-heap-page.ts"], outfile: process.env.CCC_OUT, bundle: true, platform: "browser",
  format: "esm", target: "es2022", define: { global: "globalThis" }, inject: ["src/buffer-shim.ts"],
  logLevel: "warning",
});
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    node = shutil.which("node")
    if node is None or not (WEB / "node_modules").is_dir():
        pytest.fail("node and web/node_modules are needed (make setup runs `npm ci` in web/)")
    root = tmp_path_factory.mktemp("heap-page")
    built = subprocess.run(
        [node, "--input-type=module", "-e", BUILD],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": str(Path(node).parent), "CCC_OUT": str(root / "bench.js")},
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (root / "index.html").write_text('<!doctype html><script type="module" src="bench.js"></script>')
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make setup` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless=new", "--no-sandbox", "--disable-gpu"], headless=True
        )
        yield launched
        launched.close()


def _held(usage: dict[str, Any]) -> int:
    """The V8 heap in use plus the ArrayBuffer backing stores (image and ciphertext arrays live there)."""
    return int(usage["usedSize"]) + int(usage.get("backingStorageSize", 0))


def _renderers_anonymous_memory(browser_session: CDPSession) -> int:
    """Anonymous resident memory of the renderer processes (the page's process; Blob data lives in the
    browser process, outside it), from /proc: a second view that needs nothing from V8."""
    total = 0
    for process in browser_session.send("SystemInfo.getProcessInfo")["processInfo"]:
        if process["type"] != "renderer":
            continue
        try:
            status = Path(f"/proc/{process['id']}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("RssAnon:"):
                total += int(line.split()[1]) * 1024
    return total


def _peak_while_encrypting(browser: Browser, url: str, which: str) -> dict[str, Any]:
    """Run one path; at each checkpoint, where the page waits, read the heap as it is (garbage
    included), then after a full collection (what the page still holds), and the renderers' memory."""
    context = browser.new_context()
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    processes = browser.new_browser_cdp_session()
    try:
        page.goto(url)
        page.wait_for_function("() => globalThis.bench !== undefined")
        page.evaluate(f"() => bench.prepare({SIZE})")
        cdp.send("HeapProfiler.enable")
        cdp.send("HeapProfiler.collectGarbage")
        baseline = _held(cdp.send("Runtime.getHeapUsage"))
        rss_baseline = _renderers_anonymous_memory(processes)
        peaks = {"heap": baseline, "live": baseline, "rss": rss_baseline}
        checkpoints = 0
        page.evaluate(f"() => bench.start('{which}')")
        deadline = time.monotonic() + 300
        while True:
            state, paused = page.evaluate("() => [bench.state, bench.paused]")
            if paused is not None:
                checkpoints += 1
                peaks["heap"] = max(peaks["heap"], _held(cdp.send("Runtime.getHeapUsage")))
                peaks["rss"] = max(peaks["rss"], _renderers_anonymous_memory(processes))
                cdp.send("HeapProfiler.collectGarbage")
                peaks["live"] = max(peaks["live"], _held(cdp.send("Runtime.getHeapUsage")))
                page.evaluate("() => bench.resume()")
                continue
            if state != "running":
                break
            assert time.monotonic() < deadline, f"the page did not finish encrypting ({checkpoints} checkpoints)"
            time.sleep(0.002)
        assert state == "done", state
        return {
            "baseline_bytes": baseline,
            "live_growth_bytes": peaks["live"] - baseline,
            "heap_growth_bytes": peaks["heap"] - baseline,
            "renderer_rss_anon_growth_bytes": peaks["rss"] - rss_baseline,
            "checkpoints": checkpoints,
            "message_bytes": page.evaluate("() => bench.size"),
        }
    finally:
        processes.detach()
        context.close()


def test_the_streamed_path_holds_far_less_than_one_image_where_the_whole_message_path_held_several(
    browser: Browser, page_url: str
) -> None:
    whole = _peak_while_encrypting(browser, page_url, "whole")
    streamed = _peak_while_encrypting(browser, page_url, "streamed")
    report = {"image_bytes": SIZE, "whole_message": whole, "streamed": streamed}
    if os.environ.get("CCC_WEB_HEAP_OUT"):
        Path(os.environ["CCC_WEB_HEAP_OUT"]).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    for run in (whole, streamed):  # both made the whole message (the DER signature's length varies)
        assert SIZE < run["message_bytes"] < SIZE + 64 * 1024, report
    # 4 steps of the old path; the header, 320 frames and the Blob of the streamed one
    assert whole["checkpoints"] == 4 and streamed["checkpoints"] == SIZE // (64 * 1024) + 2, report
    # At its checkpoints the old path holds the image and its message at least twice over: the
    # measurement sees the arrays. The streamed path holds a few frames and a 1 MiB batch.
    assert whole["live_growth_bytes"] > 2 * SIZE, report
    assert streamed["live_growth_bytes"] < SIZE // 4, report
