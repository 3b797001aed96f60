"""Per-instruction reading after parsing (commands.py): Barque's own cases for the
behaviour and error texts of BuildKit's instruction parsing, RUN --mount and dispatchers."""

from __future__ import annotations

import pytest

from barque.build.dockerfile import commands
from barque.build.dockerfile.commands import (
    CopyFlags,
    InlineFile,
    MountSpec,
    arg_decls,
    chmod,
    command,
    copy_flags,
    copy_sources,
    env_pairs,
    healthcheck,
    label_pairs,
    parse_duration,
    parse_mount,
    ports,
    run_command,
    run_mounts,
    run_network,
)
from barque.build.dockerfile.expand import ExpandError
from barque.build.dockerfile.parser import parse


def one(text: str):
    return parse("FROM a\n" + text + "\n").stages[0].instructions[0]


def test_expanded_instructions_are_the_references():
    for kw in ("ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER",
               "VOLUME", "WORKDIR"):
        assert commands.expands(kw)
    for kw in ("RUN", "CMD", "ENTRYPOINT", "SHELL", "HEALTHCHECK", "MAINTAINER"):
        assert not commands.expands(kw)


# --- ENV / LABEL / ARG -------------------------------------------------------------------

@pytest.mark.parametrize("text,env,pairs", [
    ("ENV a=1", {}, [("a", "1")]),
    ('ENV a="x y" b=\'$c\' c=$c d=${c:-z}', {"c": "C"},
     [("a", "x y"), ("b", "$c"), ("c", "C"), ("d", "C")]),
    ("ENV abc=bye def=$abc", {"abc": "hello"}, [("abc", "bye"), ("def", "hello")]),
    ("ENV a b c  d", {}, [("a", "b c  d")]),
    ("ENV a $x y", {"x": "X"}, [("a", "X y")]),
    ("ENV a=b\\ c", {}, [("a", "b c")]),
    ("ENV a=", {}, [("a", "")]),
    ('ENV "k"="v"', {}, [("k", "v")]),
    ("ENV ${K}=v", {"K": "key"}, [("key", "v")]),
])
def test_env_pairs(text, env, pairs):
    assert env_pairs(one(text), env) == pairs


def test_env_blank_name_after_expansion():
    with pytest.raises(ValueError, match="ENV names can not be blank"):
        env_pairs(one("ENV $nothing=x"), {})


def test_env_expansion_error():
    with pytest.raises(ExpandError, match='failed to process "\\${x:\\?}": x: is not allowed'):
        env_pairs(one("ENV a=${x:?}"), {})


def test_label_pairs():
    instr = one('LABEL "com.example.vendor"="ACME Inc" version=1.0 desc="a \\"b\\""')
    assert label_pairs(instr, {}) == [("com.example.vendor", "ACME Inc"), ("version", "1.0"),
                                      ("desc", 'a "b"')]


def test_env_with_backtick_escape():
    df = parse("# escape=`\nFROM a\nENV p=c:\\dir`$x\n")
    assert env_pairs(df.stages[0].instructions[0], {"x": "1"}, "`") == [("p", "c:\\dir$x")]


def test_arg_decls():
    assert arg_decls(one('ARG a b= c=1 d="x y" e=$f')) == [
        ("a", None), ("b", ""), ("c", "1"), ("d", '"x y"'), ("e", "$f")]


# --- EXPOSE ------------------------------------------------------------------------------

@pytest.mark.parametrize("text,env,expected", [
    ("EXPOSE 80", {}, ["80/tcp"]),
    ("EXPOSE 80/UDP 443", {}, ["443/tcp", "80/udp"]),
    ("EXPOSE 8000-8002/sctp", {}, ["8000/sctp", "8001/sctp", "8002/sctp"]),
    ("EXPOSE $P", {"P": "1 2/udp"}, ["1/tcp", "2/udp"]),
    ("EXPOSE ${P:-9}", {}, ["9/tcp"]),
    ("EXPOSE 127.0.0.1:80:8080", {}, ["8080/tcp"]),
    ("EXPOSE 5-5", {}, ["5/tcp"]),
])
def test_ports(text, env, expected):
    assert ports(one(text), env) == expected


@pytest.mark.parametrize("spec,message", [
    ("80/xyz", 'invalid port: "80/xyz": invalid proto: xyz'),
    ("/tcp", 'invalid port: "/tcp": no port specified'),
    ("abc", "invalid containerPort: abc"),
    ("70000", "invalid containerPort: 70000"),
    ("9-5", "invalid containerPort: 9-5"),
    ("x:1:80", "invalid IP address: x"),
])
def test_port_errors(spec, message):
    with pytest.raises(ValueError) as info:
        commands.parse_port(spec)
    assert str(info.value) == message


# --- STOPSIGNAL, USER, WORKDIR, VOLUME ---------------------------------------------------

def test_single_words_and_volumes():
    env = {"U": "app", "D": "/srv"}
    assert commands.single_word(one("USER $U:${G:-staff}"), env) == "app:staff"
    assert commands.single_word(one("WORKDIR $D/x y"), env) == "/srv/x y"
    assert commands.volumes(one("VOLUME $D /b"), env) == ["/srv", "/b"]
    assert commands.volumes(one('VOLUME ["$D"]'), env) == ["/srv"]
    assert commands.stop_signal(one("STOPSIGNAL SIG$S"), {"S": "TERM"}) == "SIGTERM"
    assert commands.stop_signal(one("STOPSIGNAL 9"), {}) == "9"
    with pytest.raises(ValueError, match="Invalid signal: SIGNOPE"):
        commands.stop_signal(one("STOPSIGNAL SIGNOPE"), {})


# --- CMD / ENTRYPOINT / SHELL / RUN ------------------------------------------------------

def test_shell_and_exec_forms():
    assert command(one('CMD ["a", "b"]'), None) == ["a", "b"]
    assert command(one("CMD echo $HOME"), None) == ["/bin/sh", "-c", "echo $HOME"]
    assert command(one("CMD echo"), ["/bin/bash", "-xc"]) == ["/bin/bash", "-xc", "echo"]
    assert command(one("ENTRYPOINT []"), None) is None
    assert command(one("CMD []"), None) == []
    assert commands.shell(one('SHELL ["pwsh", "-c"]')) == ["pwsh", "-c"]
    assert commands.shell_or_exec(one('HEALTHCHECK CMD ["a"]')) == (["a"], True)


def test_run_command_forms():
    assert run_command(one('RUN ["echo", "hi"]'), None).args == ["echo", "hi"]
    assert run_command(one("RUN echo hi"), ["/bin/bash", "-c"]).args == [
        "/bin/bash", "-c", "echo hi"]


def test_run_heredoc_alone_runs_body_in_shell():
    got = run_command(one("RUN <<EOF\necho a\necho b\nEOF"), None)
    assert got.args == ["/bin/sh", "-c", "echo a\necho b\n"]
    assert got.files == []


def test_run_heredoc_with_shebang_is_a_script():
    got = run_command(one("RUN <<script\n#!/usr/bin/env python3\nprint(1)\nscript"), None)
    assert got.args == ["/dev/pipes/script"]
    assert got.files == [InlineFile("/dev/pipes/script", "#!/usr/bin/env python3\nprint(1)\n",
                                    0o755)]


def test_run_heredocs_in_a_command_line():
    got = run_command(one("RUN cat <<A > /a && cat <<-B > /b\nx\nA\n\ty\n\tB"), None)
    assert got.args == ["/bin/sh", "-c", "cat <<A > /a && cat <<-B > /b\nx\nA\ny\nB"]


def test_heredoc_content_expansion():
    instr = one('COPY <<A <<"B" /d/\n$X "q" \\$Y\nA\n$X\nB')
    paths, docs, dest = copy_sources(instr, {"X": "1"})
    assert (paths, dest) == ([], "/d/")
    assert [commands.heredoc_content(d, {"X": "1"}) for d in docs] == ['1 "q" $Y\n', "$X\n"]


def test_display_keeps_unknown_variables():
    assert commands.display("RUN echo $A ${B} '$A'", {"A": "1"}) == "RUN echo 1 ${B} '$A'"
    assert commands.display("RUN echo \\$A \"$A\"", {"A": "1"}) == 'RUN echo $A "1"'
    assert commands.display("RUN echo 'unterminated", {}) == "RUN echo 'unterminated"


# --- RUN --network, --mount --------------------------------------------------------------

def test_run_network():
    assert run_network({}) == "default"
    assert run_network({"network": ["none"]}) == "none"
    with pytest.raises(ValueError, match='invalid network mode "x"'):
        run_network({"network": ["x"]})


@pytest.mark.parametrize("spec,expected", [
    ("target=/x", MountSpec(type="bind", target="/x", readonly=True)),
    ("type=bind,src=a,dst=/x,rw", MountSpec(type="bind", source="a", target="/x",
                                            readonly=False)),
    ("type=bind,source=a,target=/x,from=build,readonly=false",
     MountSpec(type="bind", source="a", target="/x", from_="build", readonly=False)),
    ("type=cache,target=/root/.cache", MountSpec(type="cache", target="/root/.cache",
                                                 readonly=False, id="/root/.cache",
                                                 sharing="shared")),
    ("type=cache,target=/c/,id=go,sharing=locked,mode=0700,uid=1,gid=2,ro",
     MountSpec(type="cache", target="/c", id="go", sharing="locked", mode=0o700, uid=1,
               gid=2, readonly=True)),
    ("type=tmpfs,target=/t,size=64m", MountSpec(type="tmpfs", target="/t", readonly=False,
                                                size=64 << 20)),
    ("type=secret,id=tok", MountSpec(type="secret", id="tok", target="/run/secrets/tok",
                                     readonly=True, mode=0o400, uid=0, gid=0)),
    ("type=secret,target=/etc/pw,required",
     MountSpec(type="secret", id="pw", target="/etc/pw", readonly=True, mode=0o400, uid=0,
               gid=0, required=True)),
    ("type=secret,id=tok,env=TOKEN", MountSpec(type="secret", id="tok", env="TOKEN",
                                               readonly=True, mode=0o400, uid=0, gid=0)),
    ("type=secret,src=aws,mode=0440,uid=5", MountSpec(type="secret", id="aws",
                                                      target="/run/secrets/aws",
                                                      readonly=True, mode=0o440, uid=5,
                                                      gid=0)),
    ("type=cache,target=rel", MountSpec(type="cache", target="/work/rel", id="rel",
                                        readonly=False, sharing="shared")),
    ("type=cache", MountSpec(type="cache", target="/work", id=".", readonly=False,
                             sharing="shared")),      # no target: the working dir
    ("type=bind,target=/a/../b/", MountSpec(type="bind", target="/b")),
    ('type=bind,"target=/x,y"', MountSpec(type="bind", target="/x,y")),  # CSV quoting
])
def test_mounts(spec, expected):
    assert parse_mount(spec, {}, workdir="/work") == expected


def test_mount_values_expanded():
    (m,) = run_mounts({"mount": ["type=cache,target=$DIR,id=${ID:-x}"]}, {"DIR": "/d"})
    assert (m.target, m.id) == ("/d", "x")


@pytest.mark.parametrize("spec,message", [
    ("type=foo,target=/x", 'unsupported mount type "foo"'),
    ("type=cahce,target=/x", 'unsupported mount type "cahce" (did you mean cache?)'),
    ("type=cache,target=/x,sharing=no", 'unsupported sharing value "no"'),
    ("type=bind,target=/x,mode=0700", 'mode not allowed for "bind" type mounts'),
    ("type=tmpfs,target=/x,uid=1", 'uid not allowed for "tmpfs" type mounts'),
    ("type=bind,target=/x,required", "unexpected key 'required' for mount type 'bind'"),
    ("type=cache,target=/x,size=1", "unexpected key 'size' for mount type 'cache'"),
    ("type=tmpfs,target=/x,size=lots", "invalid value for size: lots"),
    ("type=bind,target=/x,ro=maybe", "invalid value for ro: maybe"),
    ("type=cache,target=/x,mode=9", "invalid value 9 for mode"),
    ("type=cache,target=/x,uid=-1", "invalid value -1 for uid"),
    ("type=bind,target=/x,bogus=1", "unexpected key 'bogus' in 'bogus=1'"),
    ("type=bind,target=/x,tagret=1", "unexpected key 'tagret' in 'tagret=1' "
                                     "(did you mean target?)"),
    ("type=bind,target=/x,flag", "invalid field 'flag' must be a key=value pair"),
    ("type=secret,from=x,id=a", "secret mount should not have a from"),
    ("type=secret", "invalid secret mount. one of source, target required"),
    ("type=secret,src=a,id=b", "both source and id can't be set"),
    ("type=bind,target=/x,sharing=shared", "invalid cache sharing set for bind mount"),
    ("type=bind,target=/", 'invalid mount target "/"'),
    ("type=bind", 'invalid mount target "/"'),          # the working dir here is /
    ("type=bind,target=/x/..", 'invalid mount target "/"'),
])
def test_mount_errors(spec, message):
    with pytest.raises(ValueError) as info:
        parse_mount(spec, {})
    assert str(info.value) == message


# --- COPY / ADD flags --------------------------------------------------------------------

def test_copy_flags():
    instr = one("COPY --from=build --chown=${U}:g --chmod=0755 --link --exclude=*.md "
                "--exclude=$X a /b")
    assert copy_flags(instr, {"U": "app"}) == CopyFlags(
        from_="build", chown="app:g", chmod="0755", link=True, excludes=["*.md", "$X"])
    assert copy_flags(instr) == CopyFlags(from_="build", chown="${U}:g", chmod="0755",
                                          link=True, excludes=["*.md", "$X"])


@pytest.mark.parametrize("source", ["$S", "${S}", "'x'", "a\\b"])
def test_copy_from_takes_no_variables(source):
    instr = one(f"COPY --from={source} a /b")
    instr.flags["from"] = [source]
    with pytest.raises(ValueError, match="variable expansion is not supported for --from"):
        copy_flags(instr, {"S": "build"})


def test_add_flags():
    instr = one("ADD --checksum=sha256:abc --unpack=false --keep-git-dir a /b")
    assert copy_flags(instr, {}) == CopyFlags(checksum="sha256:abc", unpack=False,
                                              keep_git_dir=True)
    assert copy_flags(one("ADD a /b"), {}).unpack is None


def test_copy_flags_refuses_unknown_and_duplicates():
    instr = one("COPY a /b")
    instr.flags = {"unpack": ["true"]}
    with pytest.raises(ValueError, match="unknown flag: --unpack"):
        copy_flags(instr)
    instr.flags = {"from": ["a", "b"]}
    with pytest.raises(ValueError, match="duplicate flag specified: --from"):
        copy_flags(instr)


def test_copy_sources():
    instr = one("COPY $A ${B:-b}* /dest/$D")
    assert copy_sources(instr, {"A": "x y", "D": "d"}) == (["x y", "b*"], [], "/dest/d")
    assert copy_sources(one('COPY ["a b", "c"]'), {}) == (["a b"], [], "c")


@pytest.mark.parametrize("text,value", [
    ("755", 0o755), ("0644", 0o644), ("7777", 0o7777), ("0", 0),
    ("u+x", "u+x"), ("go-w,a+rX", "go-w,a+rX"), ("u=rwx,g=rx,o=", "u=rwx,g=rx,o="),
])
def test_chmod(text, value):
    assert chmod(text) == value


@pytest.mark.parametrize("text,message", [
    ("17777", "invalid chmod parameter: '17777'. it should be octal string and between 0 "
              "and 07777"),
    ("8", "invalid chmod parameter: '8'. it should be octal string and between 0 and 07777"),
    ("u+q", "invalid syntax"),
    ("+755", "invalid syntax"),
    ("", "invalid syntax"),
])
def test_chmod_errors(text, message):
    with pytest.raises(ValueError) as info:
        chmod(text)
    assert str(info.value) == message


@pytest.mark.parametrize("spec,mode,is_dir,expected", [
    # BuildKit's dchapes-mode (BSD setmode), quirks included
    ("u+x", 0o644, False, 0o744),
    ("go-w", 0o666, False, 0o644),
    ("a+X", 0o644, False, 0o644),
    ("a+X", 0o644, True, 0o755),
    ("a+X", 0o744, False, 0o755),
    ("u=rwx,g=rx,o=", 0o777, False, 0o750),
    ("+x", 0o600, False, 0o711),
    ("=r", 0o777, False, 0o444),
    ("g=u", 0o640, False, 0o660),
    ("u+s", 0o755, False, 0o4755),
    ("g-u", 0o664, False, 0o604),
    ("go=u-w", 0o755, False, 0o755),
    ("u+x,g+X", 0o644, False, 0o744),          # X looks at the mode before the change
    ("a-X", 0o755, False, 0o644),
    ("o+t", 0o755, True, 0o755),               # t and s need a class other than o
    ("o+s", 0o755, True, 0o755),
    ("u+t", 0o755, True, 0o1755),
    ("+t", 0o755, True, 0o1755),
    ("o=", 0o1777, True, 0o1770),
    ("a=", 0o7777, False, 0o1000),             # = keeps the sticky bit
    ("=r", 0o1777, False, 0o1444),
    ("a=rX", 0o1777, True, 0o1555),
    ("+rt", 0o600, False, 0o1600),             # BSD: with t, the other bits are dropped
    ("u=rwX,go=rX", 0o640, True, 0o755),
    ("u+", 0o644, False, 0o644),
    ("0700", 0o644, True, 0o700),
])
def test_chmod_applies_as_buildkit(spec, mode, is_dir, expected):
    from barque.build import modes
    chmod(spec)  # accepted by the Dockerfile's check too
    parsed = modes.parse(spec)
    assert parsed is not None and parsed.apply(mode, is_dir) == expected


# --- HEALTHCHECK -------------------------------------------------------------------------

def test_healthcheck():
    instr = one("HEALTHCHECK --interval=5m --timeout=3s --start-period=1.5s "
                "--start-interval=100ms --retries=3 CMD curl -f http://x/ || exit 1")
    assert healthcheck(instr) == {
        "Test": ["CMD-SHELL", "curl -f http://x/ || exit 1"], "Interval": 300 * 10**9,
        "Timeout": 3 * 10**9, "StartPeriod": 1_500_000_000, "StartInterval": 100_000_000,
        "Retries": 3}
    assert healthcheck(one('HEALTHCHECK CMD ["true"]')) == {"Test": ["CMD", "true"]}
    assert healthcheck(one("HEALTHCHECK none")) == {"Test": ["NONE"]}
    assert healthcheck(one("HEALTHCHECK --interval=0s CMD x")) == {"Test": ["CMD-SHELL", "x"]}


@pytest.mark.parametrize("text,ns", [
    ("0", 0), ("1h2m3s", 3723 * 10**9), ("1.5h", 5400 * 10**9), ("-2s", -2 * 10**9),
    ("300ms", 300_000_000), ("0.3s", 300_000_000), ("1.000000001s", 1_000_000_001),
    ("1us", 1000), ("1µs", 1000), ("2ns", 2), (".5s", 500_000_000),
])
def test_durations(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize("text,message", [
    ("", 'time: invalid duration ""'),
    ("5", 'time: missing unit in duration "5"'),
    ("5x", 'time: unknown unit "x" in duration "5x"'),
    ("s", 'time: invalid duration "s"'),
    ("1s2", 'time: missing unit in duration "1s2"'),
])
def test_duration_errors(text, message):
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message


def test_healthcheck_shell_words_joined():
    # a shell-form node holding several words (as a trigger or a hand-built node may)
    # gives one shell command line, the words joined by spaces
    instr = one("HEALTHCHECK CMD x")
    instr.args = ["CMD", "pg_isready", "-q", "-h", "127.0.0.1"]
    assert healthcheck(instr)["Test"] == ["CMD-SHELL", "pg_isready -q -h 127.0.0.1"]


@pytest.mark.parametrize("name,path", [("../../etc/x", "/dev/pipes/.._.._etc_x"),
                                       ("..", "/dev/pipes/_")])
def test_run_heredoc_script_name_stays_in_its_directory(name, path):
    got = run_command(one(f"RUN <<'{name}'\n#!/bin/sh\ntrue\n{name}"), None)
    assert got.args == [path] and got.files[0].path == path


@pytest.mark.parametrize("text,error", [
    ("ADD --checksum=sha256:ab http://127.0.0.1/x /x", None),
    ("ADD --checksum=sha256:ab https://h/r.git /x", None),
    ("ADD --checksum=sha256:ab a /x", "checksum requires HTTP(S) or Git sources"),
    ("ADD --checksum=sha256:ab http://h/a http://h/b /x/",
     "checksum can't be specified for multiple sources"),
    ("ADD a b /x/", None),
])
def test_add_checksum_rules(text, error):
    instr = one(text)
    flags = copy_flags(instr, {})
    paths, _, _ = copy_sources(instr, {})
    if error is None:
        commands.check_add_checksum(flags, paths)
    else:
        with pytest.raises(ValueError) as info:
            commands.check_add_checksum(flags, paths)
        assert str(info.value) == error


def test_source_kinds():
    assert commands.is_http_source("https://example.com/a.tar.gz")
    assert not commands.is_http_source("https://github.com/o/r.git")
    assert commands.is_git_source("git@github.com:o/r.git")
    assert not commands.is_git_source("dir/x.git")


def test_from_base_and_platform():
    df = parse("ARG V=1\nFROM busybox:$V\nFROM --platform=$P ${NONE}\n")
    first, second = df.stages
    assert commands.base_name(first, {"V": "1"}) == "busybox:1"
    assert commands.platform(first, {}) is None
    with pytest.raises(ValueError, match=r"^base name \(\$\{NONE\}\) should not be blank$"):
        commands.base_name(second, {})
    with pytest.raises(ValueError, match=r"^empty platform value from expression \$P$"):
        commands.platform(second, {})
    assert commands.platform(second, {"P": "linux/arm64"}) == "linux/arm64"
