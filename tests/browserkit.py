"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``).

Standard library only: Chromium reads commands from fd 3 and writes replies and events to fd 4, one JSON
message per NUL-terminated record. Used by the report's browser tests to set an exact viewport, measure
the laid-out page (``Runtime.evaluate``: DevTools evaluation is not page script, the pages' CSP still
forbids scripts) and take screenshots.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
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

# Every element whose right edge passes the viewport and that no scrolling box of its own clips.
OVERFLOW_JS = """(() => {
  const de = document.documentElement, body = document.body, width = de.clientWidth;
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
    }
    return false;
  };
  const over = [];
  for (const el of body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > width + 0.5 && !clipped(el)) {
      const cls = typeof el.className === 'string' && el.className ? '.' + el.className : '';
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + cls;
      over.push(name + ' right=' + Math.round(r.right));
    }
  }
  return {body_scroll: body.scrollWidth, body_client: body.clientWidth, doc_scroll: de.scrollWidth,
          doc_client: de.clientWidth, height: de.scrollHeight, over: over.slice(0, 12)};
})()"""


class CdpError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page; ``with Browser(profile) as b: b.open(url, 1366, 768)``."""

    def __init__(self, profile: Path, timeout: float = 60.0) -> None:
        self.timeout = timeout
        cmd_r, self._cmd_w = os.pipe()  # we write commands, Chromium reads fd 3
        self._out_r, out_w = os.pipe()  # Chromium writes fd 4, we read

        def wire() -> None:  # in the child, before exec: the pipe ends become fds 3 and 4
            os.dup2(cmd_r, 3)
            os.dup2(out_w, 4)

        self.proc = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=wire,  # noqa: PLW1509 (tests are single-threaded here)
        )
        os.close(cmd_r)
        os.close(out_w)
        self._buffer = b""
        self._id = 0
        self._events: list[dict[str, Any]] = []
        self.session = ""

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError, CdpError):
            self.send("Browser.close", session=False)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd_w, self._out_r):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._out_r], [], [], left)[0]:
                raise CdpError("no answer from chromium in time")
            chunk = os.read(self._out_r, 1 << 20)
            if not chunk:
                raise CdpError(f"chromium closed the pipe (exit {self.proc.poll()})")
            self._buffer += chunk
        record, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(record)
        return message

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> Any:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == method:
                    return self._events.pop(i)
            self._events.append(self._read(deadline))

    def open(self, url: str, width: int, height: int) -> None:
        """A fresh page of ``width`` x ``height`` CSS pixels showing ``url`` (loaded)."""
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send(
            "Target.attachToTarget", {"targetId": target, "flatten": True}, session=False
        )["sessionId"]
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise CdpError(f"evaluation failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def overflow(self) -> dict[str, Any]:
        """Widths of the body and the document (scroll vs client) and the elements sticking out."""
        value: dict[str, Any] = self.evaluate(OVERFLOW_JS)
        return value

    def screenshot(self, path: Path, *, full_page: bool = False, max_height: int = 0) -> bytes:
        """A PNG of the viewport, or of the whole page (as wide as the viewport, at most ``max_height``
        pixels tall when given), written to ``path``."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            width, height = self.evaluate(
                "[document.documentElement.clientWidth, document.documentElement.scrollHeight]"
            )
            height = min(height, max_height) if max_height else height
            params["captureBeyondViewport"] = True
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        path.write_bytes(data)
        return data
