"""The built-in busybox image as a docker-save tar (manifest.json, config, layer), for
`docker load` into a real dockerd."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from barque.image import default as default_image


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def write_busybox_archive(path: str, tag: str) -> None:
    """Write a docker-archive that `docker load` tags as `tag`."""
    layer = default_image.build_layer_tar()
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}]
    with tarfile.open(path, "w") as tar:
        _add(tar, config_name, config)
        _add(tar, "layer/layer.tar", layer)
        _add(tar, "manifest.json", json.dumps(manifest).encode())
