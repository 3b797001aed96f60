"""`inspect -f`, `info --format` and `version --format` as the docker CLI runs them.

Docker executes these templates over Go structs, so a field that does not exist is an error
(exit 1), never `<no value>`. `inspect` first tries its typed struct and, when that fails,
the raw JSON with `missingkey=error` ("map has no entry for key"); a template that does not
parse is a status-64 error before any object is looked up. Barque's objects are dicts: the
views here mark which of them are structs (gofmt.GoStruct) and which are Go maps of user
keys (labels, options, networks by name...), where a missing key stays `<no value>`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from barque.cli.formatting import FormatError
from barque.cli.gofmt import GoStruct
from barque.cli.gotemplate import Template, TemplateError, compile

# Keys whose values are Go maps in Docker's types (user-chosen keys), by name anywhere...
_USER_MAPS = frozenset({
    "Labels", "Volumes", "ExposedPorts", "Ports", "Networks", "Options", "DriverOpts",
    "Sysctls", "StorageOpt", "Tmpfs", "Data", "Containers", "Status", "Annotations",
    "Runtimes", "Services",
})
# ...and by (parent, key) where the same name is a struct elsewhere (Config).
_USER_MAPS_AT = frozenset({("LogConfig", "Config")})

INFO_TYPES = {(): "system.dockerInfo", ("Plugins",): "system.PluginsInfo",
              ("RegistryConfig",): "*registry.ServiceConfig",
              ("ContainerdCommit",): "system.Commit", ("RuncCommit",): "system.Commit",
              ("InitCommit",): "system.Commit", ("Swarm",): "swarm.Info",
              ("ClientInfo",): "*system.clientInfo"}
VERSION_TYPES = {(): "system.versionInfo", ("Client",): "system.clientVersion",
                 ("Server",): "*types.Version", ("Client", "Platform"): "*system.platformInfo",
                 ("Server", "Platform"): "struct { Name string }"}
# Fields of Docker's inspect structs that their JSON omits when empty (`omitempty`), with the
# Go zero value a template sees there (None: a nil pointer, printed `<nil>`, false in `if`).
_CONFIG_OPTIONAL: dict[str, Any] = {"ExposedPorts": {}, "Healthcheck": None, "ArgsEscaped": False,
                    "NetworkDisabled": False, "MacAddress": "", "StopSignal": "",
                    "StopTimeout": None, "Shell": []}
OPTIONAL: dict[tuple[str, ...], dict[str, Any]] = {
    (): {"Node": None, "SizeRw": None, "SizeRootFs": None},
    ("State",): {"Health": None},
    ("Config",): _CONFIG_OPTIONAL,
    ("ContainerConfig",): _CONFIG_OPTIONAL,
    ("HostConfig",): {"Init": None, "Mounts": [], "Annotations": {}},
    ("Mounts",): {"Type": "", "Name": "", "Driver": ""},
}
VOLUME_TYPES = {(): "volume.Volume", ("UsageData",): "*volume.UsageData"}


def typed(value: Any, names: Mapping[tuple[str, ...], str] | None = None,
          path: tuple[str, ...] = ()) -> Any:
    """value with its struct dicts made GoStructs (named from `names` by key path, else
    "types." + their key) and its user maps left maps (their values typed in turn)."""
    if isinstance(value, Mapping):
        if path and (path[-1] in _USER_MAPS or tuple(path[-2:]) in _USER_MAPS_AT):
            return {k: typed(v, names, (*path, "*")) for k, v in value.items()}
        fields = {k: typed(v, names, (*path, k)) for k, v in value.items()}
        name = (names or {}).get(path) or ("types." + (path[-1] if path else "Object"))
        return GoStruct(fields, name, {**OPTIONAL.get(path, {}), **getattr(value, "optional", {})},
                        ordered=True)
    if isinstance(value, list):
        return [typed(v, names, path) for v in value]
    return value


def inspect_template(source: str | None, name: str = "") -> Template | None:
    """The parsed template of `-f` (None without one); docker's status 64 if it does not
    parse, checked before any object is looked up."""
    if not source:
        return None
    try:
        return compile(source, name)
    except TemplateError as e:
        raise FormatError(f"template parsing error: {e}", exit_code=64) from None


def _execute(tmpl: Template, obj: Any, names: Mapping[tuple[str, ...], str] | None,
             raw_fallback: bool) -> str:
    try:
        return tmpl.execute(typed(obj, names))
    except TemplateError:
        if not raw_fallback:
            raise
    return tmpl.execute(obj, missingkey="error")


def print_objects(found: Sequence[Any], template: str | Template | None,
                  names: Mapping[tuple[str, ...], str] | None = None,
                  raw_fallback: bool = True) -> int:
    """inspect's output: a JSON array, or the template applied to each object (buffered: an
    empty result is a blank line, as docker's Flush); the status: 1 if a template failed
    or an item of `found` is a str (a look-up's error), else 0. Errors go to stderr after
    the output, in the order of `found`, as docker's."""
    tmpl = inspect_template(template) if isinstance(template, str) else template
    if tmpl is None:
        print(json.dumps([obj for obj in found if not isinstance(obj, str)], indent=4))
        sys.stdout.flush()
        sys.stderr.write("".join(obj + "\n" for obj in found if isinstance(obj, str)))
        return 1 if any(isinstance(obj, str) for obj in found) else 0
    out, errors = [], []
    for obj in found:
        if isinstance(obj, str):
            errors.append(obj + "\n")
            continue
        try:
            out.append(_execute(tmpl, obj, names, raw_fallback) + "\n")
        except TemplateError as e:
            errors.append(f"template parsing error: {e}\n")
    sys.stdout.write("".join(out) or "\n")
    sys.stdout.flush()
    sys.stderr.write("".join(errors))
    return 1 if errors else 0


def print_struct(source: str, data: Any, names: Mapping[tuple[str, ...], str],
                 name: str = "") -> int:
    """`info`/`version --format`: the template over docker's struct; an execution error is
    Go's message alone after a blank line on stdout, exit 1."""
    tmpl = inspect_template(source, name)
    assert tmpl is not None
    try:
        text = tmpl.execute(typed(data, names))
    except TemplateError as e:
        print()
        raise FormatError(str(e)) from None
    print(text)
    return 0
