"""Every known difference between Barque and Docker (Debian's docker.io 20.10) that the
compatibility suite finds: case id -> why. test_compat.py marks these cases xfail(strict=True),
so a difference that gets fixed fails until its line here is removed; README.md's
"Differences from Docker" shows this table (scripts/compat-differences writes it)."""

from __future__ import annotations

# Reasons shared by many cases.
_TEMPLATE_FIELD = ("the type named in the error is docker 28's (`system.dockerInfo`); the "
                   "oracle's 20.10 client says `system.info`")

_EPOCH_NA = ("deliberate: CREATED is `N/A` for an image made at the epoch (SOURCE_DATE_EPOCH=0), "
             "as Docker 28's CLI prints it; the oracle's 20.10 client prints \"56 years ago\"")

DIFFERENCES: dict[str, str] = {
    # run and create
    "run_volume_bad": "deliberate: Barque refuses `-v ::` (\"invalid volume specification\"); "
                      "Docker 20.10 accepts it and runs",
    "run_bad_detach_keys": "deliberate: Barque refuses a bad `--detach-keys` before anything "
                           "is made, in dockerd's words, as run's other bad flags (125); "
                           "Docker creates and starts the container, then its attach fails "
                           "as `attach_bad_detach_keys` (exit 1)",
    # lifecycle
    "start_attach_bad_detach_keys": "deliberate: Barque refuses a bad `--detach-keys` before "
                                    "starting, in dockerd's words; Docker starts the container, "
                                    "then its attach fails as `attach_bad_detach_keys`",
    "attach_bad_detach_keys": "deliberate: Barque prints dockerd's words (\"Error response "
                              "from daemon: Invalid detach keys (ctrl-1) provided\"); the "
                              "docker CLI reads dockerd's answer to its hijack as a stream "
                              "and says \"Unrecognized input header: 73\"",
    # ps, logs, exec, inspect, top, port, cp, commit
    # volumes and networks
    "volume_prune": "deliberate: as Docker 23+, `volume prune` removes only anonymous volumes "
                    "(`-a` for all); Docker 20.10 removes named ones too",
    "volume_help": "deliberate: prune is described as Docker 23+ describes it, \"Remove unused "
                   "local volumes\" (Barque prunes only anonymous ones, as 23+); 20.10 says "
                   "\"Remove all unused local volumes\"",
    # images
    "build_bad_instruction": "deliberate: BuildKit's error (the Dockerfile excerpt, \"did you "
                             "mean FROM?\"); Docker 20.10's classic builder prints \"Sending "
                             "build context…\" and a one-line parse error",
    "builder_prune": "deliberate: Barque keeps BuildKit's build cache and deletes it here; "
                     "Docker 20.10's classic builder has no cache records",
    "image_help": "deliberate: `image --help` also lists Barque's own `build-default` and "
                  "`save-default`",
    # system
    "info_unknown_field": _TEMPLATE_FIELD,
    "version_client_api": "deliberate: Barque's client speaks API 1.43; the oracle's 20.10 "
                          "client says 1.41",
    "unknown_global_flag": "the usage that follows lists Barque's own global options "
                           "(--root, --runroot) and commands, not the docker CLI's (--config, "
                           "--context, swarm, …), and no closing \"To get more help…\" line",
    # Deliberate: the issue asks for Docker 28's CLI, which prints N/A for an image made at
    # the epoch; the oracle's 20.10 client prints "56 years ago".
    "history": _EPOCH_NA,
    "history_created": _EPOCH_NA,
}
