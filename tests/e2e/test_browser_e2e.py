"""The browser client in a real headless Chromium (Debian's package) against a real local stack.

What a user relies on, tested as a user acts: drop images on the page -> each is encrypted in the
page, uploaded, counted by the enclave, verified in the page against the imported trust file, and
shown as "N cats — verified" with N equal to `ccc count` on the same file; a trust file pinning
another PCR0 -> every result shown "not verified", never a count; and nothing the page sent or
received carries the image's bytes in any encoding (`ccc.telemetry.leakscan`).

Playwright's Python API drives the system Chromium (`executable_path`): nothing downloads a browser
build. Screenshots land in the test's artefact directory (tmp_path) and are kept for a look.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from ccc.local.stack import LocalStack
from ccc.telemetry.leakscan import LeakScanner
from ccc_core.limits import LIMITS

CHROMIUM = os.environ.get("CCC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RESULT_TIMEOUT_S = 180.0
ARTEFACTS = Path(os.environ.get("CCC_TEST_ARTEFACTS", "")) if os.environ.get("CCC_TEST_ARTEFACTS") else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `make setup` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


class NetworkLog:
    """Every request and response body the page exchanged (what a network observer could see).

    A request whose body is a Blob (the page uploads its ciphertext Blob) carries no bytes in
    Playwright's request event; those bodies are read through the DevTools protocol
    (`Network.getRequestPostData`, which reads Blob bodies too) when the log is looked at.
    """

    def __init__(self, page: Page) -> None:
        self._entries: list[tuple[str, bytes]] = []
        self._bodies: dict[str, bytes] = {}  # request line -> body, as sent
        self._pending: dict[str, str] = {}  # DevTools request id -> request line, body still to read
        self._cdp = page.context.new_cdp_session(page)
        # DevTools keeps a request's body only if it fits its per-resource buffer (a 20 MiB upload does
        # not fit the default): room for the largest upload, and for several.
        self._cdp.send(
            "Network.enable",
            {
                "maxPostDataSize": 64 * 1024 * 1024,
                "maxResourceBufferSize": 64 * 1024 * 1024,
                "maxTotalBufferSize": 512 * 1024 * 1024,
            },
        )
        self._cdp.on("Network.requestWillBeSent", self._devtools_request)
        page.on("request", self._request)
        page.on("response", self._response)

    def _devtools_request(self, event: dict[str, Any]) -> None:
        request = event["request"]
        if request.get("hasPostData") and not request.get("postDataEntries"):
            self._pending[event["requestId"]] = f"{request['method']} {request['url']}"

    def _request(self, request: Any) -> None:
        body = request.post_data_buffer or b""
        line = f"{request.method} {request.url}"
        if body or line not in self._bodies:  # never replace a Blob body already read with Playwright's empty one
            self._bodies[line] = body
        self._entries.append((line, request.url.encode() + b"\n" + body))

    def _response(self, response: Any) -> None:
        try:
            body = response.body()
        except Exception:  # a preflight or a redirect has no body to read
            body = b""
        self._entries.append((f"response {response.url}", body))

    def _read_pending(self) -> None:
        for request_id, line in list(self._pending.items()):
            answer = self._cdp.send("Network.getRequestPostData", {"requestId": request_id})
            data = answer["postData"]
            body = base64.b64decode(data) if answer.get("base64Encoded") else data.encode("utf-8", "surrogateescape")
            del self._pending[request_id]
            self._bodies[line] = body
            entry = (line, line.split(" ", 1)[1].encode() + b"\n" + body)
            # The same request's entry from Playwright's event (without the body) becomes this one.
            same = [i for i, (source, _) in enumerate(self._entries) if source == line]
            if same:
                self._entries[same[0]] = entry
            else:
                self._entries.append(entry)

    @property
    def entries(self) -> list[tuple[str, bytes]]:
        self._read_pending()
        return self._entries

    @property
    def bodies(self) -> dict[str, bytes]:
        self._read_pending()
        return self._bodies


def _open_page(browser: Browser, stack: LocalStack, trust_file: Path) -> tuple[Page, NetworkLog]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    log = NetworkLog(page)
    page.goto(stack.info.web_url)
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    page.set_input_files("#trust-file", str(trust_file))
    page.wait_for_selector("#trust-status[data-state=ok]", timeout=10_000)
    return page, log


def _drop(page: Page, images: list[Path]) -> None:
    """A real drop event on the drop zone carrying the files (as dragging from a file manager)."""
    files = [
        {
            "name": p.name,
            "type": "image/jpeg" if p.suffix == ".jpg" else "image/png",
            "data": base64.b64encode(p.read_bytes()).decode(),
        }
        for p in images
    ]
    page.evaluate(
        """(files) => {
            const transfer = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
                transfer.items.add(new File([bytes], f.name, { type: f.type }));
            }
            const drop = new DragEvent('drop', { dataTransfer: transfer, bubbles: true });
            document.querySelector('#drop').dispatchEvent(drop);
        }""",
        files,
    )


def _rows(page: Page) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        ".job",
        """rows => rows.map(r => ({file: r.dataset.file, state: r.dataset.state, cats: r.dataset.cats || '',
                                  reason: r.dataset.reason || '', verdict: r.querySelector('.verdict').textContent,
                                  status: r.querySelector('.status').textContent}))""",
    )
    return rows


def _poll(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll from Python: the page's CSP has no 'unsafe-eval', so Playwright's string predicates cannot run."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def _wait_all(page: Page, count: int) -> list[dict[str, str]]:
    def finished() -> bool:
        states = [r["state"] for r in _rows(page)]
        return len(states) == count and all(s not in ("working", "queued") for s in states)

    _poll(finished, RESULT_TIMEOUT_S, f"{count} results")
    return _rows(page)


def _screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if ARTEFACTS is not None:
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ARTEFACTS / name)
    return path


def _ccc_count(images: list[Path]) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-m", "ccc", "count", "--json", *map(str, images)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    counts = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {Path(c["image"]).name: int(c["cats"]) for c in counts}


def test_dropped_images_are_counted_verified_in_the_page_and_never_leave_it_in_the_clear(
    stack: LocalStack, browser: Browser, samples: list[Path], tmp_path: Path
) -> None:
    images = samples[:3]
    page, network = _open_page(browser, stack, Path(os.environ["CCC_TRUST_FILE"]))
    _drop(page, images)
    rows = _wait_all(page, len(images))
    shot = _screenshot(page, tmp_path, "browser-verified.png")
    expected = _ccc_count(images)
    assert {r["file"]: (r["state"], r["verdict"]) for r in rows} == {
        name: ("verified", f"{cats} {'cat' if cats == 1 else 'cats'} — verified") for name, cats in expected.items()
    }, rows
    assert shot.stat().st_size > 0

    scanner = LeakScanner()
    for image in images:
        scanner.add_blob(image.name, image.read_bytes())
    leaks = [leak for source, data in network.entries for leak in scanner.scan_bytes(source, data)]
    assert leaks == []
    # The images did travel — as ciphertext, and the scan saw exactly those bodies (not an empty capture):
    # each PUT body is the ciphertext whose SHA-256 the page recorded as the job's input.
    uploads = sorted(network.bodies[source] for source, _ in network.entries if source.startswith("PUT "))
    recorded = page.evaluate("() => JSON.parse(localStorage.getItem('ccc.uploads/v1'))")
    assert sorted(hashlib.sha256(body).hexdigest() for body in uploads) == sorted(recorded.values())
    assert all(len(body) > 1024 for body in uploads)


def test_a_trust_file_pinning_another_release_shows_every_result_not_verified(
    stack: LocalStack, browser: Browser, samples: list[Path], tmp_path: Path
) -> None:
    document = json.loads(Path(os.environ["CCC_TRUST_FILE"]).read_text())
    for release in document["releases"]:
        release["pcrs"] = {"PCR0": "ab" * 48}
        release["id"] = "another-release"
    other = tmp_path / "trust-other-pcr0.json"
    other.write_text(json.dumps(document))
    page, _ = _open_page(browser, stack, other)
    images = samples[:2]
    _drop(page, images)
    rows = _wait_all(page, len(images))
    _screenshot(page, tmp_path, "browser-not-verified.png")
    assert [(r["state"], r["reason"]) for r in rows] == [("not-verified", "pcr_mismatch")] * len(images), rows
    assert all("cat" not in r["verdict"] for r in rows)


OUTBOX_CONTENTS = """async () => {
    const db = await new Promise((ok, no) => { const r = indexedDB.open('ccc-outbox'); r.onsuccess = () => ok(r.result);
                                                 r.onerror = () => no(r.error); });
    const all = await new Promise((ok) => { const r = db.transaction('entries').objectStore('entries').getAll();
                                             r.onsuccess = () => ok(r.result); });
    const b64 = (bytes) => { let s = ''; for (const b of bytes) s += String.fromCharCode(b); return btoa(s); };
    const bytes = async (sealed) => sealed instanceof Blob ? new Uint8Array(await sealed.arrayBuffer()) : sealed;
    const out = [];
    for (const e of all) out.push({name: e.name, blob: e.sealed instanceof Blob, sealed: b64(await bytes(e.sealed))});
    return out;
}"""


def test_images_chosen_offline_wait_encrypted_survive_a_reload_and_are_verified_once_online(
    stack: LocalStack, browser: Browser, samples: list[Path], tmp_path: Path
) -> None:
    image = samples[3]
    page, _ = _open_page(browser, stack, Path(os.environ["CCC_TRUST_FILE"]))
    _poll(lambda: bool(page.evaluate("() => navigator.serviceWorker.controller !== null")), 15, "the service worker")
    page.context.set_offline(True)
    _drop(page, [image])
    page.wait_for_selector(".job[data-state=queued]", timeout=10_000)
    _poll(lambda: len(page.evaluate(OUTBOX_CONTENTS)) == 1, 10, "the outbox entry")

    page.reload()  # offline: the service worker serves the page, the outbox is still there
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    assert page.eval_on_selector_all(".job", "rows => rows.map(r => r.dataset.state)") == ["queued"]
    at_rest = page.evaluate(OUTBOX_CONTENTS)
    assert [(entry["name"], entry["blob"]) for entry in at_rest] == [(image.name, True)]  # a sealed Blob
    scanner = LeakScanner()
    scanner.add_blob(image.name, image.read_bytes())
    assert scanner.scan_bytes("outbox", base64.b64decode(at_rest[0]["sealed"])) == []  # ciphertext only at rest
    _screenshot(page, tmp_path, "browser-offline-queued.png")

    page.context.set_offline(False)
    page.evaluate("window.dispatchEvent(new Event('online'))")  # what the browser fires on reconnecting
    rows = _wait_all(page, 1)
    _screenshot(page, tmp_path, "browser-synced.png")
    cats = _ccc_count([image])[image.name]
    assert [(r["file"], r["state"], r["verdict"]) for r in rows] == [
        (image.name, "verified", f"{cats} {'cat' if cats == 1 else 'cats'} — verified")
    ], rows
    assert page.evaluate(OUTBOX_CONTENTS) == []  # drained once


def _large_png(sample: Path, out: Path) -> Path:
    """A PNG just under the stack's 20 MiB limit, made deterministically from a sample image: upscaled
    to 3000x2270 and stored uncompressed (PNG's zlib level 0), so its size is the pixels' size."""
    with Image.open(sample) as opened:
        opened.convert("RGB").resize((3000, 2270), Image.Resampling.BICUBIC).save(out, format="PNG", compress_level=0)
    return out


def test_an_image_close_to_the_limit_is_streamed_encrypted_in_the_page_counted_and_verified(
    stack: LocalStack, browser: Browser, samples: list[Path], tmp_path: Path
) -> None:
    image = _large_png(samples[0], tmp_path / "large-cats.png")
    size = image.stat().st_size
    assert 19 * 1024 * 1024 < size <= LIMITS.max_image_bytes
    page, network = _open_page(browser, stack, Path(os.environ["CCC_TRUST_FILE"]))
    _drop(page, [image])
    rows = _wait_all(page, 1)
    _screenshot(page, tmp_path, "browser-large-verified.png")
    cats = _ccc_count([image])[image.name]
    assert [(r["file"], r["state"], r["verdict"]) for r in rows] == [
        (image.name, "verified", f"{cats} {'cat' if cats == 1 else 'cats'} — verified")
    ], rows

    # What went out is one ESDK message of 64 KiB frames (a header, 312 frames, the signature), the
    # one whose SHA-256 the page recorded, and nothing the page sent carries the image's bytes.
    uploads = [network.bodies[source] for source, _ in network.entries if source.startswith("PUT ")]
    assert len(uploads) == 1
    frames = -(-size // (64 * 1024))
    assert size + frames * (4 + 12 + 16) < len(uploads[0]) < size + frames * (4 + 12 + 16) + 4096
    recorded = page.evaluate("() => JSON.parse(localStorage.getItem('ccc.uploads/v1'))")
    assert list(recorded.values()) == [hashlib.sha256(uploads[0]).hexdigest()]
    scanner = LeakScanner()
    scanner.add_blob(image.name, image.read_bytes())
    assert [leak for source, data in network.entries for leak in scanner.scan_bytes(source, data)] == []
