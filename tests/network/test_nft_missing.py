"""A kernel without nftables (no nfnetlink, as the cgroup v2 guest's): libnftables would exit()
the whole process with status 3 ("Unable to initialize Netlink socket"); Barque says so in an
error instead, and removing a table there is nothing to do. The kernel's answer is made here
by a seccomp filter that refuses netlink-netfilter sockets with EPROTONOSUPPORT."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.root

PROGRAM = textwrap.dedent("""
    import errno
    from barque.linux.seccomp import load_filter
    from barque.network import nft
    from barque.network.firewall import Firewall

    load_filter({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{
        "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPROTONOSUPPORT,
        "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},     # AF_NETLINK
                 {"index": 2, "value": 12, "op": "SCMP_CMP_EQ"}]}]})  # NETLINK_NETFILTER
    Firewall("barque_absent").delete_table()
    print("deleted: nothing to do")
    try:
        nft.run([{"list": {"tables": {}}}])
    except nft.NftError as e:
        print(f"error: {e}", e.unavailable)
""")


def test_no_nftables_in_the_kernel_is_an_error_not_an_exit() -> None:
    proc = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout.splitlines() == [
        "deleted: nothing to do",
        "error: this kernel has no nftables (netlink netfilter: Protocol not supported); "
        "load the nf_tables module True"]
