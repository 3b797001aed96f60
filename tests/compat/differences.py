"""Every known difference between Barque and Docker (Debian's docker.io 20.10) that the
compatibility suite finds: case id -> why. test_compat.py marks these cases xfail(strict=True),
so a difference that gets fixed fails until its line here is removed; README.md's
"Differences from Docker" shows this table (scripts/compat-differences writes it)."""

from __future__ import annotations

# Reasons shared by many cases.
_CLIENT_CHECK = ("the docker CLI checks this itself (\"X.\" and \"See 'docker CMD --help'.\"); "
                 "Barque reports it as \"Error response from daemon: X\"")
_CLIENT_LOOKUP = ("the docker CLI looks the object up first (\"Error: No such container: X\"); "
                  "Barque says \"Error response from daemon: …\"")
_UNKNOWN_FLAG = "argparse's message: \"docker: unknown flag: --bogus\" (Docker: no \"docker: \")"
_MISSING_ARGS = ("argparse's \"the following arguments are required: …\" and exit 125; Docker: "
                 "\"'docker CMD' requires at least 1 argument.\", its usage, exit 1")
_GROUP_HELP = ("argparse's help layout (usage, \"positional arguments\", lower-case words); "
               "Docker's has \"Usage:\", \"Commands:\" and a closing hint")
_TEMPLATE_FIELD = ("the type named in the error is docker 28's (`system.dockerInfo`); the "
                   "oracle's 20.10 client says `system.info`")
_NO_TTY = ("Docker refuses -t when stdin is not a terminal (\"the input device is not a TTY\", "
           "exit 1); Barque runs without one")
_LATEST = "Barque names the reference with `:latest` added"

_EPOCH_NA = ("deliberate: CREATED is `N/A` for an image made at the epoch (SOURCE_DATE_EPOCH=0), "
             "as Docker 28's CLI prints it; the oracle's 20.10 client prints \"56 years ago\"")

DIFFERENCES: dict[str, str] = {
    # run and create
    "run_env_file_missing": _CLIENT_CHECK,
    "run_user_unknown": "no trailing \".\" after \"no matching entries in passwd file\"",
    "run_cap_bad": "Docker: \"invalid CapAdd: unknown capability: 'CAP_BOGUS'.\"; "
                   "Barque: \"invalid capability: BOGUS\"",
    "run_security_opt_bad": _CLIENT_CHECK + " (also \"invalid --security-opt 1\" in its words)",
    "run_sysctl_bad": _CLIENT_CHECK + "; \"not allowed\" where Docker says \"not whitelisted\"",
    "run_rm_and_restart": _CLIENT_CHECK,
    "run_bad_flag": _UNKNOWN_FLAG,
    "run_no_args": _MISSING_ARGS,
    "run_bad_reference": _CLIENT_CHECK,
    "run_bad_reference_chars": _CLIENT_CHECK,
    "run_memory_bad": _CLIENT_CHECK + "; the flag named \"--memory\", Docker's \"-m, --memory\"",
    "run_network_unknown": "no trailing \".\" after \"network nosuchnet not found\"",
    "run_it_no_tty": _NO_TTY,
    "run_publish_bad": _CLIENT_CHECK + "; \"invalid containerPort\" in lower case",
    "run_device_missing": "exit 125 where Docker's is 127, and no trailing \".\"",
    "run_volume_bad": "deliberate: Barque refuses `-v ::` (\"invalid volume specification\"); "
                      "Docker 20.10 accepts it and runs",
    "create_health": "`{{json}}` of a struct prints its keys sorted, not in Docker's struct "
                     "order",
    "create_mounts": "`{{json}}` of a struct prints its keys sorted, not in Docker's struct "
                     "order",
    "create_bad_flag": _UNKNOWN_FLAG,
    "create_no_args": _MISSING_ARGS,
    # lifecycle
    "stop_no_args": _MISSING_ARGS,
    "rm_no_args": _MISSING_ARGS,
    # ps, logs, exec, inspect, top, port, cp, commit
    "ps_format_labels": "the template method `.Label \"a\"` is missing",
    "ps_filter_bad_key": "\"invalid filter\" where Docker says \"Invalid filter\"",
    "ps_filter_bad_status": "`--filter status=bogus` lists nothing instead of \"Invalid filter "
                            "'status=bogus'\", exit 1",
    "ps_bad_flag": _UNKNOWN_FLAG,
    "logs_unknown": _CLIENT_LOOKUP,
    "logs_no_args": _MISSING_ARGS,
    "exec_paused": "the paused-container error names the ID where Docker names what was given",
    "exec_unknown": _CLIENT_LOOKUP,
    "exec_no_cmd": "the usage lines after \"requires at least 2 arguments.\" are missing",
    "exec_it_no_tty": _NO_TTY,
    "inspect_type_bad": "argparse's \"invalid choice\" and exit 125; Docker: \"'bogus' is "
                        "not a valid value for --type\", exit 1",
    "inspect_size": "`inspect -s` has no SizeRw",
    "port_not_published": "\"No public port '80' published\": Docker adds the protocol, "
                          "'80/tcp'",
    "port_unknown": _CLIENT_LOOKUP,
    "cp_missing_path": "Docker: \"Error: No such container:path: c1:/nosuch\"",
    "cp_missing_host": _CLIENT_CHECK + " (Docker: \"lstat PATH: no such file or directory\")",
    "cp_in_stdin_not_tar": "\"Error processing tar file(truncated header)\" where Docker says "
                           "\"(exit status 1): unexpected EOF\"",
    "cp_unknown": "Docker: \"Error: No such container:path: nosuch:/x\"",
    "commit_bad_ref": _CLIENT_CHECK,
    "attach_stopped": "Docker's CLI checks the state itself (no \"Error response from "
                      "daemon: \" before \"You cannot attach to a stopped container\")",
    "attach_unknown": _CLIENT_LOOKUP,
    # volumes and networks
    "volume_inspect_json": "Labels and Options `null` where Docker shows `{}`",
    "volume_inspect_unknown": "\"get nosuch: no such volume\" from the daemon; Docker's CLI: "
                              "\"Error: No such volume: nosuch\"",
    "volume_rm_unknown": "\"get nosuch: no such volume\" from the daemon; Docker's CLI: "
                         "\"Error: No such volume: nosuch\"",
    "volume_prune": "deliberate: as Docker 23+, `volume prune` removes only anonymous volumes "
                    "(`-a` for all); Docker 20.10 removes named ones too",
    "volume_bad_flag": _UNKNOWN_FLAG,
    "volume_help": _GROUP_HELP,
    "network_create_bad_driver": "Docker: \"plugin 'bogus' not found\"",
    "network_inspect_unknown": "\"network nosuch not found\" from the daemon; Docker's CLI: "
                               "\"Error: No such network: nosuch\"",
    "network_rm_unknown": "\"network nosuch not found\" from the daemon; Docker's CLI: "
                          "\"Error: No such network: nosuch\"",
    "network_bad_flag": _UNKNOWN_FLAG,
    "network_help": _GROUP_HELP,
    # images
    "rmi_unknown": _CLIENT_LOOKUP + "; " + _LATEST,
    "rmi_in_use": _LATEST,
    "save_unknown": _LATEST,
    "load_missing": _CLIENT_CHECK,
    "load_not_tar": "\"invalid archive: truncated header\" where Docker says \"Error "
                    "processing tar file(exit status 1): unexpected EOF\"",
    "build_bad_instruction": "deliberate: BuildKit's error (the Dockerfile excerpt, \"did you "
                             "mean FROM?\"); Docker 20.10's classic builder prints \"Sending "
                             "build context…\" and a one-line parse error",
    "builder_prune": "deliberate: Barque keeps BuildKit's build cache and deletes it here; "
                     "Docker 20.10's classic builder has no cache records",
    "push_unknown": _CLIENT_CHECK + "; no \"The push refers to repository […]\" line",
    "image_help": _GROUP_HELP,
    "images_bad_flag": _UNKNOWN_FLAG,
    # system
    "info_unknown_field": _TEMPLATE_FIELD,
    "version_client_api": "deliberate: Barque's client speaks API 1.43; the oracle's 20.10 "
                          "client says 1.41",
    "system_help": _GROUP_HELP,
    "unknown_global_flag": "argparse's short message; Docker prints its whole usage",
    "unknown_container_subcommand": "\"docker: 'bogus' is not a docker command.\"; Docker "
                                    "prints the group's usage",
    # Deliberate: the issue asks for Docker 28's CLI, which prints N/A for an image made at
    # the epoch; the oracle's 20.10 client prints "56 years ago".
    "history": _EPOCH_NA,
    "history_created": _EPOCH_NA,
}
