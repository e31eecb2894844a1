"""The live view's web server: Starlette served by uvicorn in a daemon thread of the bench process.

Routes: ``/`` the page, ``/static/…`` its files (uPlot vendored), ``/events`` the run as server-sent events,
``/runs/<run-id>/report.html|report.pdf`` a run's report files, and two controls, ``POST /api/stop`` and
``POST /api/answer``, which need the per-run token in the ``X-Bench-Token`` header (docs/live-view.md: the
token rule). Everything else is read-only.

The server lives for the bench's sake: one pump task drains the feed every ``PUMP_S`` and fans the events out
to every page; a page that reads slowly or dies only delays its own connection. Errors are logged (never
with the token: the access log is off, and the token never travels in a logged URL) and never raised into
the run; a server that cannot start leaves the run without its page, with a warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import re
import secrets
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from bench.live.control import ControlRefused, RunControls
from bench.live.feed import Event, LiveFeed

__all__ = ["PAGE_DIR", "LiveServer", "new_token"]

log = logging.getLogger(__name__)
PAGE_DIR = Path(__file__).parent / "page"
PUMP_S = 0.25  # how often the feed is drained: a measurement reaches the page within about this
KEEPALIVE_S = 15.0
EVENTS_KEPT = 2000  # events a slow page may lag behind before it is sent the whole state again
REPORT_FILES = ("report.html", "report.pdf")
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
TOKEN_HEADER = "x-bench-token"


def new_token() -> str:
    return secrets.token_urlsafe(18)


class LiveServer:
    """``feed`` served at ``host:port`` (0: a free port); ``controls`` None: a read-only server (`bench view`)."""

    def __init__(
        self,
        feed: LiveFeed,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        controls: RunControls | None = None,
        runs_dir: Path | None = None,
    ) -> None:
        self.feed = feed
        self.host = host
        self.port = port
        self.token = token or new_token()
        self.controls = controls
        self.runs_dir = runs_dir
        self._events: deque[tuple[int, Event]] = deque(maxlen=EVENTS_KEPT)
        self._seq = 0
        self._cursors: dict[int, int] = {}  # connected page -> last event sent to it
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Condition | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._ready = threading.Event()

    # -- life -----------------------------------------------------------------------------------------------
    def start(self, timeout_s: float = 10.0) -> LiveServer:
        """Bind, serve in a daemon thread, return once the server listens (OSError: the address is taken)."""
        import uvicorn

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(128)  # connections wait in the backlog from now on, not refused until uvicorn is up
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app(),
            log_config=None,  # the bench's logging stays as it is
            access_log=False,  # a logged URL could carry the token
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, args=(sock,), name="live-view", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            log.warning("live view: the server did not start within %.0f s", timeout_s)
        return self

    def _serve(self, sock: socket.socket) -> None:
        try:
            self._server.run(sockets=[sock])
        except BaseException:  # the page can die; the run goes on
            log.exception("live view: the server stopped")
        finally:
            sock.close()
            self._ready.set()

    @property
    def url(self) -> str:
        """The page, read-only (give it the token to control: :attr:`control_url`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def control_url(self) -> str:
        return f"{self.url}?token={self.token}"

    def stop(self, drain_s: float = 2.0) -> None:
        """Send the last events to every page (at most ``drain_s``), then stop serving. Never raises."""
        loop = self._loop
        try:
            if loop is not None and loop.is_running():
                asyncio.run_coroutine_threadsafe(self._drain(drain_s), loop).result(timeout=drain_s + 1)
        except Exception as exc:
            log.debug("live view: last events not delivered: %s", exc)
        self._closing = True  # every page's stream ends now: uvicorn would otherwise wait out its graceful timeout
        try:
            if loop is not None and loop.is_running():
                asyncio.run_coroutine_threadsafe(self._notify(), loop).result(timeout=1)
        except Exception as exc:
            log.debug("live view: pages not told to close: %s", exc)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    async def _drain(self, drain_s: float) -> None:
        self._publish(self.feed.poll())
        last = self._seq
        deadline = asyncio.get_running_loop().time() + drain_s
        while any(cursor < last for cursor in self._cursors.values()):
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.02)  # poll interval of a bounded wait for the pages' sockets

    # -- events -----------------------------------------------------------------------------------------------
    def _publish(self, events: list[Event]) -> None:
        for event in events:
            self._seq += 1
            self._events.append((self._seq, event))
        if events and self._wake is not None:
            asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        assert self._wake is not None
        async with self._wake:
            self._wake.notify_all()

    async def _pump(self) -> None:
        failures = 0
        while not self._closing:
            try:
                self._publish(self.feed.poll())
            except Exception:
                failures += 1
                if failures == 1:  # once: a broken feed must not fill the run's logs
                    log.exception("live view: reading the run's feed failed (further failures not logged)")
            await asyncio.sleep(PUMP_S)

    async def _stream(self, client: int, controls: bool) -> AsyncIterator[str]:
        assert self._wake is not None
        cursor = self._seq
        self._cursors[client] = cursor
        try:
            for event in [self.feed.hello(controls=controls), *self.feed.replay()]:
                yield _sse(event)
            while not self._closing:
                async with self._wake:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), KEEPALIVE_S)
                if self._events and self._events[0][0] > cursor + 1:  # fell too far behind: the whole state
                    cursor = self._seq
                    for event in [self.feed.hello(controls=controls), *self.feed.replay()]:
                        yield _sse(event)
                pending = [(seq, event) for seq, event in self._events if seq > cursor]
                if not pending:
                    yield ": keep-alive\n\n"
                for seq, event in pending:
                    yield _sse(event)
                    cursor = seq
                self._cursors[client] = cursor
        finally:
            self._cursors.pop(client, None)

    # -- the application ------------------------------------------------------------------------------------
    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request
        from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
        from starlette.routing import Mount, Route
        from starlette.staticfiles import StaticFiles

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Condition()
            pump = asyncio.get_running_loop().create_task(self._pump())
            self._ready.set()
            try:
                yield
            finally:
                self._closing = True
                pump.cancel()
                await self._notify()

        def client_of(request: Request) -> str:
            return request.client.host if request.client is not None else "unknown"

        def authorised(request: Request) -> bool:
            given = request.headers.get(TOKEN_HEADER, "")
            return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

        async def page(request: Request) -> Response:
            return FileResponse(PAGE_DIR / "index.html", headers={"Cache-Control": "no-store"})

        async def events(request: Request) -> Response:
            client = id(request)
            controls = self.controls is not None
            return StreamingResponse(
                self._stream(client, controls),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
            )

        async def control(request: Request, act: Callable[[dict[str, Any], str], str]) -> Response:
            if self.controls is None:
                return JSONResponse({"ok": False, "message": "this page is read-only (no run)"}, status_code=403)
            if not authorised(request):
                return JSONResponse(
                    {"ok": False, "message": "read-only: open the URL printed with the run (it carries the token)"},
                    status_code=403,
                )
            try:
                body = await request.json()
            except ValueError:
                body = {}
            try:
                message = await run_in_threadpool(act, body if isinstance(body, dict) else {}, client_of(request))
            except ControlRefused as exc:
                return JSONResponse({"ok": False, "message": str(exc)}, status_code=409)
            except Exception as exc:
                log.exception("live view: control action failed")
                return JSONResponse({"ok": False, "message": f"failed: {exc}"}, status_code=500)
            return JSONResponse({"ok": True, "message": message})

        def do_stop(body: dict[str, Any], client: str) -> str:
            assert self.controls is not None
            return self.controls.stop(client)

        def do_answer(body: dict[str, Any], client: str) -> str:
            assert self.controls is not None
            try:
                prompt_id = int(body.get("id", -1))
            except (TypeError, ValueError):
                raise ControlRefused("no prompt id given") from None
            self.controls.answer(prompt_id, body.get("answer"), client)
            return "answered"

        async def stop(request: Request) -> Response:
            return await control(request, do_stop)

        async def answer(request: Request) -> Response:
            return await control(request, do_answer)

        async def report(request: Request) -> Response:
            run_id, name = request.path_params["run_id"], request.path_params["name"]
            if self.runs_dir is None or name not in REPORT_FILES or not _RUN_ID.match(run_id):
                return Response("not found", status_code=404)
            path = self.runs_dir / run_id / name
            if not path.is_file():
                return Response(f"{name} of run {run_id} is not written (yet)", status_code=404)
            return FileResponse(path)

        return Starlette(
            routes=[
                Route("/", page),
                Route("/events", events),
                Route("/api/stop", stop, methods=["POST"]),
                Route("/api/answer", answer, methods=["POST"]),
                Route("/runs/{run_id}/{name}", report),
                Mount("/static", StaticFiles(directory=PAGE_DIR), name="static"),
            ],
            lifespan=lifespan,
        )


def _sse(event: Event) -> str:
    name, data = event
    return f"event: {name}\ndata: {data}\n\n"
