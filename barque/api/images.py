"""/images: list, inspect, history, create (pull, import), push, tag, remove, prune, get
(save), load, search (not implemented); /auth. Every operation is barque/engine's (images.py,
image_list.py, auth.py); here are only dockerd's shapes, statuses and streams."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aiohttp import web

from barque.api import body
from barque.api.common import Handler, flag, in_engine, json_response, raw_filters, read_json
from barque.api.progress import Emit, JSONProgress, json_stream
from barque.engine import image_list
from barque.engine import images as eng
from barque.engine.context import Engine
from barque.engine.errors import EngineError
from barque.image import reference as refs
from barque.image.store import ImageConflict, ImageError, ImageNotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from barque.registry.auth import Credentials

_BAD_INPUT = ("invalid reference format", "refusing to create", "cannot push a digest",
              "Invalid filter", "invalid filter", "invalid value for", "syntax error in pattern")


def failure(error: BaseException) -> tuple[str, int]:
    """dockerd's message and status for what an image operation raised."""
    from barque.registry import errors as reg

    text = str(error)
    if isinstance(error, EngineError):
        return text, error.status
    if isinstance(error, ImageNotFound):
        return text, 404
    if isinstance(error, ImageConflict):
        return text, 409
    if isinstance(error, reg.NotFoundError):
        return text, 404
    if isinstance(error, reg.UnauthorizedError):
        return text, 404 if text.startswith("pull access denied") else 401
    if isinstance(error, (ImageError, ValueError)) and text.startswith(_BAD_INPUT):
        return text, 400
    return text, 500


def _known_errors() -> tuple[type[Exception], ...]:
    """What the image code raises for a request it cannot satisfy (anything else is a bug:
    the middleware's 500 names its class)."""
    from barque.image.archive_io import ArchiveError
    from barque.image.default import DefaultImageError
    from barque.image.oci_layout import LayoutError
    from barque.registry.errors import RegistryError
    from barque.storage.blobs import BlobError

    return (ImageError, RegistryError, ArchiveError, BlobError, LayoutError,
            DefaultImageError, ValueError, OSError)


async def _engine(request: web.Request, fn: Any) -> Any:
    """in_engine with image errors as dockerd's statuses."""
    try:
        return await in_engine(request, fn)
    except EngineError:
        raise
    except Exception as e:
        if isinstance(e, _known_errors()):
            text, status = failure(e)
            raise EngineError(text, status=status) from None
        raise


def _familiar(name: str) -> str:
    try:
        return refs.parse(name, default_tag=False).familiar
    except refs.ReferenceError:
        return name


def _unix(created: str) -> int:
    from barque.engine.logs import parse_time

    try:
        return int(parse_time(created))
    except ValueError:
        return 0


# --- list, inspect, history ----------------------------------------------------------------

async def list_(request: web.Request) -> web.Response:
    filters = raw_filters(request)

    def ls(engine: Engine) -> list[dict[str, Any]]:
        store = engine.store
        out = []
        for image in image_list.select_images(store, filters):
            tags = image_list.listed_tags(image, filters)
            labels = (store.config(image).get("config") or {}).get("Labels") or {}
            out.append({"Id": image.id, "ParentId": "",
                        "RepoTags": [_familiar(t) for t in tags],
                        "RepoDigests": [_familiar(d) for d in image.repo_digests],
                        "Created": _unix(image.created), "Size": image.size,
                        "SharedSize": -1, "VirtualSize": image.size, "Labels": labels,
                        "Containers": -1})
        return sorted(out, key=lambda s: s["Created"], reverse=True)

    return json_response(await _engine(request, ls))


async def inspect(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    data = await _engine(request, lambda e: eng.inspect_named(e.store, name))
    # What API 1.43 still has (gone in 1.44): no image of Barque's comes from a container.
    data.update({"Container": "", "ContainerConfig": eng.empty_config(),
                 "VirtualSize": data["Size"]})
    return json_response(data)


async def history(request: web.Request) -> web.Response:
    name = request.match_info["name"]

    def rows(engine: Engine) -> list[dict[str, Any]]:
        return [{"Id": r.id, "Created": _unix(r.created), "CreatedBy": r.created_by,
                 "Tags": [t for t in r.tags] or None, "Size": r.size, "Comment": r.comment}
                for r in eng.history(engine.store, name)]

    return json_response(await _engine(request, rows))


# --- pull, import, push ----------------------------------------------------------------------

def registry_auth(request: web.Request) -> tuple[Credentials | None, bool]:
    """X-Registry-Auth (base64url JSON AuthConfig) as (credentials, anonymous). Without it,
    or unreadable, the request is anonymous, as dockerd takes it: a daemon never reads the
    client's config file."""
    from barque.registry.auth import Credentials

    header = request.headers.get("X-Registry-Auth", "").strip()
    if not header:
        return None, True
    try:
        data = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error):
        return None, True
    if not isinstance(data, dict):
        return None, True
    username, password = str(data.get("username") or ""), str(data.get("password") or "")
    if not username and data.get("auth"):
        try:
            username, _, password = base64.b64decode(str(data["auth"])).decode().partition(":")
        except (ValueError, binascii.Error):
            return None, True
    if not username:
        return None, True
    return Credentials(username, password), False


def _pull_reference(image: str, tag: str) -> str:
    """fromImage and tag as dockerd joins them: the tag (or a digest in it) wins."""
    try:
        ref = refs.parse(image, default_tag=False)
    except refs.ReferenceError:
        raise EngineError("invalid reference format", status=400) from None
    if tag:
        joined = f"{ref.repository}@{tag}" if tag.startswith("sha256:") else \
            f"{ref.repository}:{tag}"
        try:
            return str(refs.parse(joined))
        except refs.ReferenceError:
            raise EngineError("invalid reference format", status=400) from None
    if not ref.tag and not ref.digest:
        raise EngineError("pulling every tag of a repository (docker pull --all-tags) is not "
                          "implemented by Barque: name a tag", status=501)
    return str(ref)


async def create(request: web.Request) -> web.StreamResponse:
    query = request.query
    if query.get("fromImage"):
        return await _pull(request, _pull_reference(query["fromImage"], query.get("tag", "")))
    if query.get("fromSrc") == "-":
        return await _import(request)
    if query.get("fromSrc"):
        raise EngineError("importing from a URL is not implemented by Barque: send the "
                          "archive in the request body (fromSrc=-)", status=501)
    raise EngineError("fromImage or fromSrc is required", status=400)


async def _pull(request: web.Request, text: str) -> web.StreamResponse:
    credentials, anonymous = registry_auth(request)
    platform = request.query.get("platform") or None

    def work(engine: Engine, emit: Emit) -> None:
        view = JSONProgress(emit)
        outcome = eng.pull(engine.store, text, platform=platform, progress=view,
                           credentials=credentials, anonymous=anonymous)
        view.pull_finished(outcome.reference, outcome.digest, up_to_date=not outcome.fresh)

    return await json_stream(request, work, failure)


async def _import(request: web.Request) -> web.StreamResponse:
    query = request.query
    repo, tag = query.get("repo", ""), query.get("tag", "")
    reference = (f"{repo}:{tag}" if tag else repo) or None
    changes = query.getall("changes", [])
    message, platform = query.get("message") or None, query.get("platform") or None
    source = body.body_reader(request)

    def work(engine: Engine, emit: Emit) -> None:
        image = eng.import_image(engine.store, source, reference, changes, message, platform)
        emit({"status": image.id})

    return await json_stream(request, work, failure)


async def push(request: web.Request) -> web.StreamResponse:
    name, tag = request.match_info["name"], request.query.get("tag", "")
    credentials, anonymous = registry_auth(request)

    try:
        repository = refs.parse(name, default_tag=False)
    except refs.ReferenceError:
        raise EngineError("invalid reference format", status=400) from None

    def work(engine: Engine, emit: Emit) -> None:
        store = engine.store
        view = JSONProgress(emit)
        view.push_started(repository)  # before the image is looked for, as dockerd
        names = [f"{name}:{tag}"] if tag else _push_names(store, name)
        for each in names:
            eng.push(store, each, progress=view, credentials=credentials, anonymous=anonymous)

    return await json_stream(request, work, failure)


def _push_names(store: Any, name: str) -> list[str]:
    """No tag: the name's own tag, else every tag of its repository (dockerd's rule)."""
    ref = refs.parse(name, default_tag=False)
    if ref.tag:
        return [name]
    names = eng.repository_tags(store, name)
    if not names:
        raise ImageNotFound(f"An image does not exist locally with the tag: {ref.familiar}")
    return names


# --- tag, remove, prune ------------------------------------------------------------------------

async def tag(request: web.Request) -> web.Response:
    name, repo, new_tag = (request.match_info["name"], request.query.get("repo", ""),
                           request.query.get("tag", ""))
    if not repo:
        raise EngineError("invalid reference format", status=400)
    target = f"{repo}:{new_tag}" if new_tag else repo
    await _engine(request, lambda e: eng.tag(e.store, name, target))
    return web.Response(status=201)


async def remove(request: web.Request) -> web.Response:
    name, force = request.match_info["name"], flag(request, "force")
    # noprune: Barque's images have no parent images to keep or prune.
    done = await _engine(request, lambda e: eng.remove(e.store, name, force=force,
                                                       paths=e.paths))
    return json_response(done)


async def prune(request: web.Request) -> web.Response:
    filters = raw_filters(request)
    report = await _engine(request, lambda e: eng.prune(e.store, filters=filters))
    return json_response({"ImagesDeleted": report["ImagesDeleted"] or None,
                          "SpaceReclaimed": report["SpaceReclaimed"]})


# --- save, load --------------------------------------------------------------------------------

async def get_one(request: web.Request) -> web.StreamResponse:
    return await _save(request, [request.match_info["name"]])


async def get_many(request: web.Request) -> web.StreamResponse:
    return await _save(request, request.query.getall("names", []))


async def _save(request: web.Request, names: list[str]) -> web.StreamResponse:
    """A docker-save tarball, streamed; a missing image is a 404 before any byte."""
    if not names:
        raise EngineError("no images to save: give names", status=400)
    response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
    out = body.response_writer(request, response)

    def save(engine: Engine) -> None:
        eng.save(engine.store, names, out)
        out.flush()

    await _engine(request, save)
    if not response.prepared:
        await response.prepare(request)
    await response.write_eof()
    return response


async def load(request: web.Request) -> web.StreamResponse:
    source = body.body_reader(request)

    def work(engine: Engine, emit: Emit) -> None:
        for line in eng.load(engine.store, source):
            emit({"stream": line + "\n"})

    # dockerd answers 200 at once and reports a bad archive in the stream.
    return await json_stream(request, work, failure, always_ok=True)


# --- search, auth ------------------------------------------------------------------------------

async def search(request: web.Request) -> web.Response:
    raise EngineError("image search is not implemented by Barque: search the registry's own "
                      "site or API", status=501)


async def auth(request: web.Request) -> web.Response:
    from barque.engine import auth as engine_auth

    config = await read_json(request)
    server = str(config.get("serveraddress") or "docker.io")
    username, password = str(config.get("username") or ""), str(config.get("password") or "")
    if not username:
        raise EngineError("Username is required to log in", status=400)

    def check(engine: Engine) -> dict[str, str]:
        return engine_auth.check(server, username, password)

    try:
        return json_response(await in_engine(request, check))
    except Exception as e:
        from barque.registry.errors import RegistryError

        if not isinstance(e, RegistryError):
            raise
        text, status = failure(e)
        raise EngineError(text, status=401 if status == 404 else status) from None


_NAME = "/images/{name:.+}"
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/images/json", list_),
    ("POST", "/images/create", create),
    ("GET", "/images/search", search),
    ("POST", "/images/prune", prune),
    ("GET", "/images/get", get_many),
    ("POST", "/images/load", load),
    ("POST", "/auth", auth),
    ("GET", _NAME + "/json", inspect),
    ("GET", _NAME + "/history", history),
    ("POST", _NAME + "/push", push),
    ("POST", _NAME + "/tag", tag),
    ("GET", _NAME + "/get", get_one),
    ("DELETE", _NAME, remove),
]
