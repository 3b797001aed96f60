"""`barque build --cache-to type=local,dest=DIR` and `--cache-from type=local,src=DIR` as a CI
job runs them: the cache kept in a directory survives `builder prune -a` and `rmi`, and the
next build takes every step from it; bad specs get BuildKit's and buildx's words."""

from __future__ import annotations

import os

import pytest

from barque.build.options import CacheExport
from barque.cli.build import BuildError, local_cache_sources, parse_cache_to
from tests.cli.conftest import Barque, ok
from tests.cli.test_build import build, built, ctx, steps, write  # noqa: F401 (ctx: fixture)
from tests.support.marks import needs_busybox

DOCKERFILE = ("FROM busybox\n"
              "WORKDIR /app\n"
              "COPY a.txt .\n"
              "RUN cat a.txt > made.txt\n")


@needs_busybox
@pytest.mark.slow
def test_cache_dir_survives_prune_and_rmi(barque: Barque, ctx: str) -> None:  # noqa: F811
    write(ctx, {"Dockerfile": DOCKERFILE, "a.txt": "alpha\n"})
    cache = os.path.join(ctx + "-cache", "dir")
    try:
        image_id = built(barque, "-t", "app", "--cache-to",
                         f"type=local,dest={cache},mode=max", ctx)
        assert os.path.isfile(os.path.join(cache, "index.json"))
        ok(barque.run("builder", "prune", "-a", "-f"))
        ok(barque.run("rmi", "app"))
        result = build(barque, "--cache-from", f"type=local,src={cache}", "-t", "app", ctx)
        assert result.returncode == 0, result.stderr
        shown = steps(result.stderr)
        for name in ("[2/4] WORKDIR /app", "[3/4] COPY a.txt .",
                     "[4/4] RUN cat a.txt > made.txt"):
            assert shown[name][-1] == "CACHED", (name, result.stderr)
        assert f"importing cache manifest from local:{cache}" in shown
        assert ok(barque.run("image", "inspect", "-f", "{{.Id}}", "app")).strip() == image_id
    finally:
        import shutil

        shutil.rmtree(ctx + "-cache", ignore_errors=True)


@needs_busybox
@pytest.mark.slow
def test_bad_cache_specs(barque: Barque, ctx: str) -> None:  # noqa: F811
    write(ctx, {"Dockerfile": "FROM busybox\n"})
    for args, message in (
            (["--cache-to", "type=local"], "ERROR: local cache exporter requires dest\n"),
            (["--cache-from", "type=local"], "ERROR: local cache importer requires src\n"),
            (["--cache-to", "dest=/tmp/x"], 'ERROR: type required form> "dest=/tmp/x"\n'),
            (["--cache-to", "type=local,dest"], "ERROR: invalid value dest\n"),
            (["--cache-to", "type=gha"], 'ERROR: unknown cache exporter: "gha"\n')):
        result = build(barque, *args, ctx)
        assert (result.returncode, result.stderr) == (1, message), args


def test_parse_cache_to() -> None:
    assert parse_cache_to(["type=local,dest=/c", "type=local,dest=/d,mode=max,"
                           "oci-mediatypes=true", "type=inline"]) == [
        CacheExport("/c"), CacheExport("/d", "max")]
    assert parse_cache_to(["type=local,dest=rel"]) == [CacheExport(os.path.abspath("rel"))]
    assert parse_cache_to(["type=local,dest=/c,ignore-error=true"]) == [
        CacheExport("/c", ignore_error=True)]
    assert parse_cache_to(["app:cache", "type=registry,ref=h:5000/a,mode=max"]) == [
        CacheExport("docker.io/library/app:cache", type="registry"),
        CacheExport("h:5000/a:latest", "max", type="registry")]
    for bad, words in (("type=local,dest=/c,mode=all", 'invalid cache mode "all"'),
                       ("type=local,dest=/c,foo=1", "cache-to attribute 'foo' is not "
                                                    "supported"),
                       ("type=registry", "registry cache exporter requires ref"),
                       ("Bad:x", "invalid reference 'Bad:x'"),
                       ("type=s3,bucket=b", 'unknown cache exporter: "s3"'),
                       ("type=local,dest=/c,ignore-error=yes",
                        'parsing "yes": invalid syntax')):
        with pytest.raises(BuildError, match=words):
            parse_cache_to([bad])


def test_local_cache_sources() -> None:
    assert local_cache_sources(["app:cache", "type=registry,ref=x",
                                "type=local,src=/c"]) == ["/c"]


@needs_busybox
@pytest.mark.slow
def test_registry_cache_survives_prune_and_rmi(barque: Barque, ctx: str,  # noqa: F811
                                               tmp_path: str) -> None:
    from tests.support.registry import run_registry

    write(ctx, {"Dockerfile": DOCKERFILE, "a.txt": "alpha\n"})
    env = {"DOCKER_CONFIG": os.path.join(str(tmp_path), "docker-config")}
    with run_registry(os.path.join(str(tmp_path), "registry")) as registry:
        ref = f"{registry.host}/ci/app:buildcache"
        image_id = built(barque, "-t", "app", "--cache-to",
                         f"type=registry,ref={ref},mode=max", ctx, env=env)
        ok(barque.run("builder", "prune", "-a", "-f"))
        ok(barque.run("rmi", "app"))
        result = build(barque, "--cache-from", f"type=registry,ref={ref}", "-t", "app", ctx,
                       env=env)
        assert result.returncode == 0, result.stderr
        shown = steps(result.stderr)
        assert shown["[4/4] RUN cat a.txt > made.txt"][-1] == "CACHED", result.stderr
        assert ok(barque.run("image", "inspect", "-f", "{{.Id}}", "app")).strip() == image_id
