"""Every known difference between Barque and Docker (Debian's docker.io 20.10) that the
compatibility suite finds: case id -> why. test_compat.py marks these cases xfail(strict=True),
so a difference that gets fixed fails until its line here is removed; README.md's
"Differences from Docker" shows this table (scripts/compat-differences writes it)."""

from __future__ import annotations

# Reasons shared by many cases.
_CLIENT_CHECK = ("the docker CLI checks this itself (\"X.\" and \"See 'docker CMD --help'.\"); "
                 "Barque reports it as \"Error response from daemon: X\"")
_SEE_HELP = ("`run`/`create` errors lack Docker's trailing \".\" and \"See 'docker run "
             "--help'.\"")
_CLIENT_LOOKUP = ("the docker CLI looks the object up first (\"Error: No such container: X\"); "
                  "Barque says \"Error response from daemon: …\"")
_FAILED_TO = ("Docker's summary line (\"Error: failed to start containers: X\", \"Error: failed "
              "to rename container named X\") is missing")
_UNKNOWN_FLAG = "argparse's message: \"docker: unknown flag: --bogus\" (Docker: no \"docker: \")"
_MISSING_ARGS = ("argparse's \"the following arguments are required: …\" and exit 125; Docker: "
                 "\"'docker CMD' requires at least 1 argument.\", its usage, exit 1")
_GROUP_HELP = "argparse's help of the group lists no subcommands (issue 13, part 13b)"
_TEMPLATE_FIELD = ("an unknown template field prints `<no value>`, exit 0; Docker fails, exit 1 "
                   "(issue 13, part 13a)")
_GROUPS = "`id` lacks the supplementary groups Docker sets from /etc/group (part 13b)"
_RUNTIME_WORDS = ("barque-runtime's words (and an extra `barque-runtime:` line), not runc's "
                  "\"failed to create shim task: OCI runtime create failed: runc create "
                  "failed: …\"")
_NO_TTY = ("Docker refuses -t when stdin is not a terminal (\"the input device is not a TTY\", "
           "exit 1); Barque runs without one")
_PULL_NEVER = "`--pull never` is ignored: Barque contacts the registry (part 13a)"
_NOT_RUNNING_CASE = "\"container … is not running\": Docker capitalises \"Container\""
_LATEST = "Barque names the reference with `:latest` added"

DIFFERENCES: dict[str, str] = {
    # run and create
    "run_env_file_missing": _CLIENT_CHECK,
    "run_user_ids": _GROUPS,
    "run_user_name": _GROUPS,
    "run_group_add": _GROUPS + "; the primary group is not kept in the list with --group-add",
    "run_user_unknown": "no trailing \".\" after \"no matching entries in passwd file\"",
    "run_mount_bind_missing": _SEE_HELP,
    "run_cap_bad": "Docker: \"invalid CapAdd: unknown capability: 'CAP_BOGUS'.\"; "
                   "Barque: \"invalid capability: BOGUS\"",
    "run_security_opt_bad": _CLIENT_CHECK + " (also \"invalid --security-opt 1\" in its words)",
    "run_sysctl_bad": _CLIENT_CHECK + "; \"not allowed\" where Docker says \"not whitelisted\"",
    "run_dockerenv": "no /.dockerenv in the container (part 13b)",
    "run_it_typed_ahead": "input typed before the container is ready is lost (raw mode set "
                          "with a flush): no `hi`, exit 0 (part 13a)",
    "run_cmd_not_found": _RUNTIME_WORDS,
    "run_cmd_not_executable": _RUNTIME_WORDS + "; \"is a directory\" where runc says "
                              "\"permission denied\"",
    "run_name_conflict": _SEE_HELP,
    "run_name_invalid": _SEE_HELP,
    "run_restart_bad": "\"invalid restart policy: unknown policy 'bogus'; use one of …\" where "
                       "Docker says \"invalid restart policy 'bogus'\" (part 13b)",
    "run_rm_and_restart": _CLIENT_CHECK,
    "run_bad_flag": _UNKNOWN_FLAG,
    "run_no_args": _MISSING_ARGS,
    "run_pull_never_missing": _PULL_NEVER,
    "run_bad_reference": _CLIENT_CHECK,
    "run_bad_reference_chars": _CLIENT_CHECK,
    "run_memory_too_small": _SEE_HELP,
    "run_memory_bad": _CLIENT_CHECK + "; the flag named \"--memory\", Docker's \"-m, --memory\"",
    "run_cpus_too_many": _SEE_HELP,
    "run_network_unknown": "no trailing \".\" after \"network nosuchnet not found\"",
    "run_it_no_tty": _NO_TTY,
    "run_workdir_relative": _SEE_HELP,
    "run_publish_bad": _CLIENT_CHECK + "; \"invalid containerPort\" in lower case",
    "run_device_missing": "exit 125 where Docker's is 127, and no trailing \".\"",
    "run_volume_bad": "deliberate: Barque refuses `-v ::` (\"invalid volume specification\"); "
                      "Docker 20.10 accepts it and runs",
    "create_memory": "MemorySwap 0 where Docker sets twice the memory when only -m is given "
                     "(part 13b)",
    "create_health": "Healthcheck's JSON keys in sorted order, not Docker's struct order "
                     "(part 13b)",
    "create_mounts": "Mounts' JSON keys in sorted order, extra Driver/Name for a bind, "
                     "Propagation empty where Docker says rprivate (part 13b)",
    "create_bad_flag": _UNKNOWN_FLAG,
    "create_no_args": _MISSING_ARGS,
    "create_pull_never_missing": _PULL_NEVER,
    # lifecycle
    "start_unknown": _FAILED_TO,
    "start_two_unknown": _FAILED_TO,
    "start_failing": _FAILED_TO + "; " + _RUNTIME_WORDS,
    "stop_no_args": _MISSING_ARGS,
    "kill_not_running": "\"cannot kill container: c1: container … is not running\": Docker "
                        "capitalises \"Cannot\" and \"Container\"",
    "kill_unknown": "Docker: \"Cannot kill container: nosuch: No such container: nosuch\"",
    "rm_running": "Docker: \"You cannot remove a running container ID. Stop the container "
                  "before attempting removal or force remove\" (part 13b)",
    "rm_unknown": _CLIENT_LOOKUP,
    "rm_force_unknown": _CLIENT_LOOKUP + "; Docker's `rm -f` of a missing container exits 0",
    "rm_no_args": _MISSING_ARGS,
    "rename_unknown": _FAILED_TO,
    "rename_taken": _FAILED_TO + "; the conflict does not name the container holding the name",
    "rename_same": _FAILED_TO,
    "rename_invalid": _FAILED_TO + "; Docker says \"Error when allocating new name: Invalid "
                      "container name (/bad name)\"",
    "update_restart_bad": "\"invalid restart policy: unknown policy 'bogus'; use one of …\" "
                          "where Docker says \"invalid restart policy 'bogus'\"",
    # ps, logs, exec, inspect, top, port, cp, commit
    "ps_size": "`ps -s` lacks \"(virtual SIZE)\" (part 13b)",
    "ps_format_command": "COMMAND is not quoted as Docker's (\"sh -c 'echo 'a b''\") "
                         "(part 13b)",
    "ps_format_labels": "the template method `.Label \"a\"` is missing",
    "ps_format_mounts_bind": "{{.Mounts}} is empty for a bind mount; Docker shows its source "
                             "(part 13b)",
    "ps_format_unknown_field": _TEMPLATE_FIELD,
    "ps_format_parse_error": "\"template parsing error:\" where `ps` says \"failed to parse "
                             "template:\" (part 13a)",
    "ps_filter_health": "`--filter health=` is refused (part 13b)",
    "ps_filter_bad_key": "\"invalid filter\" where Docker says \"Invalid filter\"",
    "ps_filter_bad_status": "`--filter status=bogus` lists nothing instead of \"Invalid filter "
                            "'status=bogus'\", exit 1",
    "ps_bad_flag": _UNKNOWN_FLAG,
    "logs_unknown": _CLIENT_LOOKUP,
    "logs_no_args": _MISSING_ARGS,
    "exec_not_found": "exit 127 where Docker's exec gives 126, and barque-runtime's message on "
                      "stderr where Docker prints runc's on stdout",
    "exec_not_running": _NOT_RUNNING_CASE,
    "exec_paused": "the paused-container error names the ID where Docker names what was given",
    "exec_unknown": _CLIENT_LOOKUP,
    "exec_no_cmd": "the usage lines after \"requires at least 2 arguments.\" are missing",
    "exec_it_no_tty": _NO_TTY,
    "inspect_driver": "Driver `overlay` where Docker says `overlay2` (part 13b)",
    "inspect_hostname": "Config.Hostname empty where Docker sets the short ID (part 13b)",
    "inspect_shm_size": "HostConfig.ShmSize 0 where Docker records 67108864 (part 13b)",
    "inspect_config_keys": "Config has ExposedPorts when there are none (part 13b)",
    "inspect_hostconfig_keys": "HostConfig lacks Docker's Blkio*, ConsoleSize, CpuCount, "
                               "CpuPercent, CpuRealtime*, DeviceCgroupRules, DeviceRequests, "
                               "IOMaximum*, KernelMemory* and MemorySwappiness keys, and has "
                               "Init, Mounts, Sysctls, Tmpfs when unset (part 13b)",
    "inspect_unknown_field": _TEMPLATE_FIELD,
    "inspect_unknown_top_field": _TEMPLATE_FIELD,
    "inspect_parse_error": "Docker: \"template parsing error: …\", exit 64; Barque: the bare "
                           "message, exit 1",
    "inspect_type_bad": "argparse's \"invalid choice\" and exit 125; Docker: \"'bogus' is "
                        "not a valid value for --type\", exit 1",
    "inspect_size": "`inspect -s` has no SizeRw",
    "top_not_running": _NOT_RUNNING_CASE,
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
    "volume_inspect_json": "Labels and Options `null` where Docker shows `{}` (part 13b)",
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
    "images_created_at": "CreatedAt in RFC 3339; Docker: \"2026-12-04 20:03:53 +0000 UTC\" "
                         "(part 13b)",
    "tag_bad_ref": _CLIENT_CHECK + " (Docker: \"Error parsing reference: …\")",
    "rmi_unknown": _CLIENT_LOOKUP + "; " + _LATEST,
    "rmi_in_use": _LATEST,
    "image_inspect_keys": "no Container, ContainerConfig, VirtualSize (Docker 20.10's; later "
                          "Dockers drop them)",
    "save_unknown": _LATEST,
    "load_missing": _CLIENT_CHECK,
    "load_not_tar": "\"invalid archive: truncated header\" where Docker says \"Error "
                    "processing tar file(exit status 1): unexpected EOF\"",
    "build_bad_instruction": "deliberate: BuildKit's error (the Dockerfile excerpt, \"did you "
                             "mean FROM?\"); Docker 20.10's classic builder prints \"Sending "
                             "build context…\" and a one-line parse error",
    "builder_prune": "deliberate: Barque keeps BuildKit's build cache and deletes it here; "
                     "Docker 20.10's classic builder has no cache records",
    "login_unreachable": "a Python traceback: barque/cli/main.py's `_loaded_errors` names "
                         "`barque.registry.auth.AuthError`, which does not exist, so the "
                         "except clause itself raises AttributeError (part 13a)",
    "pull_unreachable": "a Python traceback instead of Docker's \"Get 'http://…/v2/': "
                        "dial tcp …: connect: connection refused\" (part 13a; the same "
                        "`_loaded_errors` AttributeError as login_unreachable)",
    "pull_bad_ref": _CLIENT_CHECK,
    "push_unknown": _CLIENT_CHECK + "; no \"The push refers to repository […]\" line",
    "image_help": _GROUP_HELP,
    "images_bad_flag": _UNKNOWN_FLAG,
    # system
    "info_driver": "Driver `overlay` where Docker says `overlay2` (part 13b)",
    "info_security_options": "SecurityOptions is null; Docker lists name=seccomp,profile="
                             "default (part 13b)",
    "info_swarm": "no Swarm section (part 13b)",
    "info_unknown_field": _TEMPLATE_FIELD,
    "version_client_api": "no Client.APIVersion (part 13b)",
    "version_bad_field": _TEMPLATE_FIELD,
    "system_help": _GROUP_HELP,
    "unknown_global_flag": "argparse's short message; Docker prints its whole usage",
    "unknown_container_subcommand": "\"docker: 'bogus' is not a docker command.\"; Docker "
                                    "prints the group's usage",
}
