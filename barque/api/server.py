"""`barque serve`: the Engine API on a unix socket. Versions, Docker's error bodies, a body
limit, and a graceful stop on SIGTERM (the containers go on: they are their monitors')."""

from __future__ import annotations

import asyncio
import grp
import logging
import os
import signal
import socket
import stat
import sys

from aiohttp import web

from barque.api import containers, exec, system, versions
from barque.api.common import PATHS, Handler, error_response
from barque.api.runs import RUNS, Runs
from barque.engine.errors import EngineError
from barque.engine.paths import Paths

DEFAULT_HOST = "unix:///run/barque/barque.sock"
MAX_BODY = 16 * 1024 * 1024  # requests carry JSON (a tar context for build will stream)
SERVER_HEADER = "Barque (linux)"
_PREPARED = "barque.prepared"  # set on a request once its response's headers are out

@web.middleware
async def versioned(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Docker's answers for every route: the version checked, errors as {"message": ...}."""
    try:
        version, _ = versions.split_path(request.path)
        if version is not None:
            versions.check(version)
        response = await handler(request)
    except EngineError as e:
        if request.get(_PREPARED):
            raise  # a stream already under way: aiohttp cuts it (the client sees it end)
        response = error_response(str(e), e.status)
    except web.HTTPNotFound:
        response = error_response("page not found", 404)
    except web.HTTPRequestEntityTooLarge as e:
        response = error_response(e.text or "request body too large", 413)
    except web.HTTPException as e:
        response = error_response(e.reason, e.status)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception as e:  # a bug, or input the engine did not expect: still Docker's body
        if request.get(_PREPARED):
            raise
        logging.getLogger("barque.api").exception("%s %s", request.method, request.path)
        response = error_response(f"{type(e).__name__}: {e}", 500)
    return response


async def _docker_headers(request: web.Request, response: web.StreamResponse) -> None:
    request[_PREPARED] = True
    response.headers["Server"] = SERVER_HEADER
    response.headers.setdefault("API-Version", versions.MAX_API_VERSION)


def make_app(paths: Paths) -> web.Application:
    app = web.Application(middlewares=[versioned], client_max_size=MAX_BODY)
    app.on_response_prepare.append(_docker_headers)
    app[PATHS] = paths
    app[RUNS] = Runs(paths)
    app[exec.EXECS] = exec.Execs()
    for method, path, handler in system.ROUTES + containers.ROUTES + exec.ROUTES:
        for prefix in ("", "/v{version:[0-9]+\\.[0-9]+}"):
            app.router.add_route(method, prefix + path, handler)
    return app


def socket_path(host: str) -> str:
    if not host.startswith("unix://"):
        raise EngineError(f"unsupported host {host!r}: only unix:// sockets and fd:// "
                          "(systemd's) are served yet", status=400)
    path = host.removeprefix("unix://")
    if not path.startswith("/"):
        raise EngineError(f"invalid socket path {path!r}: must be absolute", status=400)
    return path


def _remove_stale(path: str) -> None:
    """The socket of a server that died goes; a live server's, or any other file, stays."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise EngineError(f"{path} exists and is not a socket", status=400)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
            return
    raise EngineError(f"listen unix {path}: bind: address already in use", status=400)


def bind(path: str) -> socket.socket:
    """The socket: its dir made 0711 if missing, 0660 owned by group `barque` (root if none),
    never world-accessible, not even between bind and chmod."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=0o711, exist_ok=True)
        os.chmod(parent, 0o711)
    _remove_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    try:
        gid = grp.getgrnam("barque").gr_gid
    except KeyError:
        gid = 0
    os.chown(path, 0, gid)
    os.chmod(path, 0o660)
    sock.listen(1024)  # clients that find the file can connect from here on
    return sock


def activated() -> socket.socket:
    """fd:// as dockerd takes it: the first socket systemd passed (barque.socket)."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or \
            int(os.environ.get("LISTEN_FDS") or 0) < 1:
        raise EngineError("no sockets found via socket activation: make sure the service "
                          "was started by systemd", status=400)
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for the monitors and runtimes it starts
    return socket.socket(fileno=3)


async def _serve(paths: Paths, host: str) -> None:
    loop = asyncio.get_running_loop()
    path = None if host == "fd://" else socket_path(host)
    sock = activated() if path is None else bind(path)
    app = make_app(paths)
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=5.0)
    await runner.setup()
    site = web.SockSite(runner, sock)
    await site.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        # Open streams (attach, wait, logs -f) are cut; their containers go on running.
        app[RUNS].stopping = True
        await runner.cleanup()
        if path is not None:  # systemd's socket stays for the next start
            try:
                os.unlink(path)
            except OSError:
                pass


def serve(paths: Paths, host: str = DEFAULT_HOST) -> None:
    logging.basicConfig(level=logging.WARNING, format="barque serve: %(levelname)s %(message)s")
    asyncio.run(_serve(paths, host))
    # Threads still blocked in the engine (a logs -f, a /wait on a container started by the
    # CLI) would keep the process until their containers end; what they hold (SQLite reads,
    # sockets) needs no goodbye.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
