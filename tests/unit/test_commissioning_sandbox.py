"""The commissioning sandbox: private link, private /data, parallel instances, nothing left behind."""

from __future__ import annotations

import os
import subprocess

import pytest

from hil.commissioning import sandbox as sandbox_mod
from hil.commissioning.sandbox import Sandbox, SandboxInfo, SandboxUnavailable
from hil.errors import CommissioningError

_avail = sandbox_mod.availability()
needs_sandbox = pytest.mark.skipif(not _avail.ok, reason=f"commissioning sandbox: {_avail.reason}")


def _links(sb: Sandbox) -> list[str]:
    out = sb.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


@needs_sandbox
def test_parallel_sandboxes_are_separate_links_with_separate_data(tmp_path):
    with Sandbox(log_dir=tmp_path / "a") as a, Sandbox(log_dir=tmp_path / "b") as b:
        assert a.tag != b.tag and a.node_address != b.node_address
        assert a.node_address.endswith("::1") and a.controller_address.endswith("::2")
        assert _links(a) == sorted(["lo", a.info.node_ifname, a.info.controller_ifname])
        assert _links(b) == sorted(["lo", b.info.node_ifname, b.info.controller_ifname])
        a.run(["sh", "-c", "echo probe > /data/hil-probe"], check=True)
        in_a = a.run(["cat", "/data/hil-probe"], capture_output=True, text=True)
        in_b = b.run(["ls", "/data"], capture_output=True, text=True)
        assert in_a.stdout == "probe\n" and "hil-probe" not in in_b.stdout
        assert not os.path.exists("/data/hil-probe")  # the host never sees the sandbox's /data
        addr = a.run(
            ["ip", "-6", "-o", "addr", "show", "dev", a.info.node_ifname], capture_output=True, text=True
        )
        assert f"{a.node_address}/64" in addr.stdout


@needs_sandbox
def test_the_host_does_not_see_the_links(tmp_path):
    with Sandbox(log_dir=tmp_path) as sb:
        host = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        assert sb.info.node_ifname not in host and sb.info.controller_ifname not in host


@needs_sandbox
def test_close_ends_the_holder_removes_private_files_and_keeps_logs(tmp_path):
    sb = Sandbox(log_dir=tmp_path / "logs").start()
    pid, workdir = sb.info.holder_pid, sb.workdir
    (sb.log_dir / "member.log").write_text("kept")
    sb.close()
    assert not workdir.exists() and (tmp_path / "logs" / "member.log").read_text() == "kept"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@needs_sandbox
def test_user_namespace_mode_works_too(tmp_path):
    """What non-root users get; forced here so the path is tested when the suite runs as root."""
    with Sandbox(mode="userns", log_dir=tmp_path) as sb:
        assert sb.info.mode == "userns"
        assert sb.run(["id", "-u"], capture_output=True, text=True).stdout.strip() == "0"  # mapped root
        assert _links(sb) == sorted(["lo", sb.info.node_ifname, sb.info.controller_ifname])


def test_unavailable_tools_give_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    avail = sandbox_mod.availability.__wrapped__()
    assert not avail.ok and "unshare" in avail.reason


def test_bad_mode_and_unstarted_use_are_errors():
    if _avail.ok:
        with pytest.raises(SandboxUnavailable, match="mode 'vm' is not allowed"):
            sandbox_mod.require("vm")  # type: ignore[arg-type]
    sb = Sandbox()
    try:
        with pytest.raises(CommissioningError, match="not started"):
            sb.info  # noqa: B018
    finally:
        sb.close()


def test_ports_are_unique_and_info_round_trips():
    sb = Sandbox()
    try:
        assert [sb.next_port() for _ in range(3)] == [5540, 5541, 5542]
    finally:
        sb.close()
    info = SandboxInfo(1, "root", "hilabc123", "hilabc123n", "hilabc123c", "fd42:1::1", "fd42:1::2")
    assert SandboxInfo.from_dict(info.to_dict()) == info
    assert info.nsenter_prefix() == ["nsenter", "--target", "1", "--net", "--mount"]
