"""`barque serve`: the Engine API on a unix socket. Versions, Docker's error bodies, a body
limit, and a graceful stop on SIGTERM (the containers go on: they are their monitors')."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import sys

from aiohttp import web

from barque.api import (
    archive,
    build,
    containers,
    events,
    exec,
    images,
    listeners,
    networks,
    resources,
    system,
    versions,
    volumes,
)
from barque.api.common import PATHS, READS, Handler, error_response
from barque.api.runs import RUNS, Runs
from barque.api.tls import TLSPump
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
    app[READS] = {}
    app[RUNS] = Runs(paths)
    app[exec.EXECS] = exec.Execs()
    routes = (system.ROUTES + containers.ROUTES + images.ROUTES + volumes.ROUTES
              + networks.ROUTES + archive.ROUTES + resources.ROUTES + build.ROUTES
              + events.ROUTES + exec.ROUTES)
    for method, path, handler in routes:
        for prefix in ("", "/v{version:[0-9]+\\.[0-9]+}"):
            app.router.add_route(method, prefix + path, handler)
    return app


async def _serve(paths: Paths, hosts: list[str], tls: listeners.TLSOptions) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # before a client can see the socket
        loop.add_signal_handler(sig, stop.set)
    bound = listeners.open_all(hosts, tls)
    app = make_app(paths)
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=5.0)
    pumps = []
    try:
        await runner.setup()
        for listener in bound:
            if listener.ssl is None:
                await web.SockSite(runner, listener.sock).start()
            else:  # see tls.py for why not aiohttp's ssl_context
                assert runner.server is not None
                pumps.append(await loop.create_server(
                    functools.partial(TLSPump, listener.ssl, runner.server),
                    sock=listener.sock))
        await stop.wait()
    finally:
        # Open streams (attach, wait, logs -f) are cut; their containers go on running.
        app[RUNS].stopping = True
        for pump in pumps:
            pump.close()
        await runner.cleanup()
        listeners.close_all(bound)  # systemd's socket stays for the next start


def serve(paths: Paths, hosts: list[str] | None = None,
          tls: listeners.TLSOptions | None = None) -> None:
    """Checks and binds every host first: a bad flag raises EngineError, nothing bound."""
    logging.basicConfig(level=logging.WARNING, format="barque serve: %(levelname)s %(message)s")
    asyncio.run(_serve(paths, hosts or [DEFAULT_HOST], tls or listeners.TLSOptions()))
    # Threads still blocked in the engine (a logs -f, a /wait on a container started by the
    # CLI) would keep the process until their containers end; what they hold (SQLite reads,
    # sockets) needs no goodbye.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
