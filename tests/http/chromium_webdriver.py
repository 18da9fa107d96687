"""A minimal W3C WebDriver client over httpx, driving Debian's chromium through chromedriver.

Only what the dashboard test needs: open a page, find elements by CSS, read text, type, click, take a
screenshot. Chromium runs headless with a fresh profile and no background network traffic.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from redis_proc import free_port

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROME_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,1800",
]


def available() -> bool:
    return bool(
        shutil.which("chromedriver") and (shutil.which("chromium") or shutil.which("chromium-browser"))
    )


class WebDriverError(RuntimeError):
    pass


class Browser:
    def __init__(self) -> None:
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="tq-chrome-")
        self.proc = subprocess.Popen(
            ["chromedriver", f"--port={self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=60)
        self._wait_ready()
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": binary,
                        "args": [*CHROME_ARGS, f"--user-data-dir={self.profile}"],
                    },
                }
            }
        }
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.http.get("/status").json()["value"]["ready"]:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.1)
        raise WebDriverError("chromedriver did not start")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        r = self.http.request(method, path, json=body)
        value = r.json().get("value")
        if r.status_code >= 400:
            raise WebDriverError(f"{method} {path}: {value}")
        return value

    def _s(self, path: str) -> str:
        return f"/session/{self.session}{path}"

    def get(self, url: str) -> None:
        self._call("POST", self._s("/url"), {"url": url})

    def find_all(self, css: str) -> list[str]:
        found = self._call("POST", self._s("/elements"), {"using": "css selector", "value": css})
        return [e[ELEMENT] for e in found]

    def text(self, css: str, timeout: float = 10.0) -> str:
        """Text of the first match, retrying while the page refreshes (stale or missing elements)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                ids = self.find_all(css)
                if ids:
                    return str(self._call("GET", self._s(f"/element/{ids[0]}/text")))
            except WebDriverError:
                pass
            if time.monotonic() > deadline:
                raise WebDriverError(f"no element {css!r}")
            time.sleep(0.1)

    def type(self, css: str, text: str) -> None:
        eid = self.find_all(css)[0]
        self._call("POST", self._s(f"/element/{eid}/value"), {"text": text})

    def click(self, css: str) -> None:
        eid = self.find_all(css)[0]
        self._call("POST", self._s(f"/element/{eid}/click"), {})

    def script(self, source: str) -> Any:
        return self._call("POST", self._s("/execute/sync"), {"script": source, "args": []})

    def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._call("GET", self._s("/screenshot"))))

    def close(self) -> None:
        with contextlib.suppress(WebDriverError, httpx.HTTPError):
            self._call("DELETE", self._s(""))
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
