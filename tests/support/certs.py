"""A throwaway CA and the certificates signed by it, made by the openssl CLI, as Docker's
"Protect the Docker daemon socket" page makes them (EC keys, valid for a day)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from tests.support import tools

_CA_EXTENSIONS = ["basicConstraints=critical,CA:TRUE",
                  "keyUsage=critical,keyCertSign,cRLSign", "subjectKeyIdentifier=hash"]


@dataclass(frozen=True)
class Pair:
    cert: str
    key: str


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _key_and_request(path: str, name: str) -> None:
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{path}-key.pem", "-out", f"{path}.csr",
             "-subj", f"/CN={name}")


def make_ca(directory: str, name: str = "barque-test-ca") -> Pair:
    tools.require("openssl")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{path}-key.pem", "-out", f"{path}.pem", "-days", "1",
            "-subj", f"/CN={name}"]
    for extension in _CA_EXTENSIONS:
        args += ["-addext", extension]
    _openssl(*args)
    return Pair(f"{path}.pem", f"{path}-key.pem")


def sign(ca: Pair, directory: str, name: str, usage: str) -> Pair:
    """A certificate for `name` (usage: serverAuth, for 127.0.0.1 and localhost; or
    clientAuth) signed by the CA."""
    path = os.path.join(directory, name)
    _key_and_request(path, name)
    extensions = [f"extendedKeyUsage={usage}", "keyUsage=critical,digitalSignature",
                  "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid,issuer"]
    if usage == "serverAuth":
        extensions.append("subjectAltName=IP:127.0.0.1,DNS:localhost")
    with open(f"{path}.ext", "w") as f:
        f.write("\n".join(extensions) + "\n")
    _openssl("x509", "-req", "-in", f"{path}.csr", "-CA", ca.cert, "-CAkey", ca.key,
             "-CAcreateserial", "-out", f"{path}-cert.pem", "-days", "1",
             "-extfile", f"{path}.ext")
    return Pair(f"{path}-cert.pem", f"{path}-key.pem")
