"""`docker version`, `info`, `system df` and `system prune` as engine calls returning data."""

from __future__ import annotations

import io
import platform
import tarfile

import pytest

from barque.engine import images as eng_images
from barque.engine import system
from barque.engine.context import Engine, Paths
from barque.engine.create import create
from tests.cli.conftest import Barque
from tests.support.marks import needs_busybox


def _dangling_tar() -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("empty"), io.BytesIO(b""))
    buf.seek(0)
    return buf


def test_version_data() -> None:
    data = system.version()
    assert data["Client"]["Version"] == data["Server"]["Version"] == system.barque_version()
    assert data["Server"]["ApiVersion"] == system.API_VERSION
    assert data["Server"]["KernelVersion"] == platform.release()
    assert data["Server"]["Components"][0]["Name"] == "barque-runtime"


@pytest.mark.root
@needs_busybox
def test_info_df_and_system_prune(barque: Barque) -> None:
    with Engine(Paths(barque.root, barque.runroot)) as engine:
        record = create(engine, "busybox", {"Cmd": ["true"]}, {})
        dangling = eng_images.import_image(engine.store, _dangling_tar())
        data = system.info(engine)
        assert (data["Containers"], data["ContainersStopped"], data["Images"]) == (1, 1, 2)
        assert data["ServerVersion"] == system.barque_version()
        rows = {r["Type"]: r for r in system.disk_usage(engine)}
        assert (rows["Images"]["TotalCount"], rows["Containers"]["TotalCount"]) == (2, 1)

        report = system.prune_system(engine)
        assert report.containers == [record.id] and report.container_errors == []
        assert {"Deleted": dangling.id} in report.images
        assert report.volumes == [] and report.reclaimed > 0
        assert engine.records.all() == []
        assert [i.tags for i in engine.store.images()] == [["docker.io/library/busybox:latest"]]
        again = system.prune_system(engine, all_images=True, volumes=True)
        assert again.containers == [] and again.images  # busybox is unused now
        assert engine.store.images() == []


def test_version_fields_in_dockers_order() -> None:
    """The docker CLI's clientVersion and dockerd's types.Version field order (20.10); the
    Engine API's /version and `version --format '{{json .}}'` print them so."""
    data = system.version()
    assert list(data["Client"])[:10] == ["Platform", "Version", "ApiVersion",
                                         "DefaultAPIVersion", "GitCommit", "GoVersion", "Os",
                                         "Arch", "BuildTime", "Context"]
    assert list(data["Server"])[:10] == ["Platform", "Components", "Version", "ApiVersion",
                                         "MinAPIVersion", "GitCommit", "GoVersion", "Os",
                                         "Arch", "KernelVersion"]


@pytest.mark.root
@needs_busybox
def test_info_fields_in_dockerds_order(barque: Barque) -> None:
    from tests.cli.test_docker_output import DOCKER_INFO_KEYS

    with Engine(Paths(barque.root, barque.runroot)) as engine:
        data = system.info(engine)
    dockers = [k for k in DOCKER_INFO_KEYS if k != "ClientInfo"]  # the CLI's own part
    assert [k for k in data if k in dockers] == dockers
    assert data["SecurityOptions"] == ["name=seccomp,profile=default"]
    assert data["Swarm"]["LocalNodeState"] == "inactive"
