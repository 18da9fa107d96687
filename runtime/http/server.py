"""Run the ASGI app with uvicorn in a background thread (how ``tqrun`` serves HTTP).

``start_in_thread(app, host, port)`` returns once the socket listens (``port=0`` picks a free one,
reported by ``handle.port``); ``handle.stop()`` shuts the server down gracefully. The same handle
runs the history sampler, so dashboard charts have points even when nobody is looking.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette

from runtime.errors import TaskQueueError


@dataclass
class ServerHandle:
    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int
    _stop: threading.Event = field(default_factory=threading.Event)
    _sampler: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.server.should_exit = True
        self.thread.join(timeout)
        if self._sampler is not None:
            self._sampler.join(timeout)


def _sample_forever(app: Starlette, stop: threading.Event) -> None:
    from runtime.http.views import gather

    state = getattr(app.state, "tqrun", None)
    if state is None:
        return
    while not stop.wait(min(state.history.interval, 5.0)):
        if state.history.due():
            try:
                gather(state)
            except (TaskQueueError, OSError):
                continue  # Redis down: the gap shows on the chart


def start_in_thread(app: Starlette, host: str = "127.0.0.1", port: int = 9090, *,
                    timeout: float = 10.0, sample: bool = True) -> ServerHandle:
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                            lifespan="off", server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="tqrun-http", daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if server.started:
            started.set()
            break
        if not thread.is_alive():
            break
        threading.Event().wait(0.02)
    if not started.is_set():
        server.should_exit = True
        raise TaskQueueError(f"HTTP server did not start on {host}:{port}")
    bound = port
    for srv in getattr(server, "servers", []):
        for sock in srv.sockets:
            bound = int(sock.getsockname()[1])
    handle = ServerHandle(server, thread, host, bound)
    if sample:
        handle._sampler = threading.Thread(target=_sample_forever, args=(app, handle._stop),
                                           name="tqrun-http-sampler", daemon=True)
        handle._sampler.start()
    return handle
