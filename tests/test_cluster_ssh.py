"""The cluster launcher end to end on this machine, over SSH to an sshd of the test's own.

`ray up`, then the README's `ray submit` (the smoke search, with a relative `--config` and
`--out`, run from the head's home directory as `ray submit` runs it) and `ray exec` of top_k.py
exactly as the README writes them, with experiments/cluster-local.yaml for cluster.yaml, then
`ray down`; the sshd is bound to 127.0.0.1 (loopback only).

It changes the machine, so it runs only when asked: `python -m pytest -q -m host_changes`
(.ci/run asks). It installs openssh-server, openssh-client and rsync with apt-get where they are
missing (those stay installed). Skipped, with the reason, where it cannot run: not root, no sshd
or rsync and apt-get cannot install them, ~/sase-nas or ~/sase-runs/smoke already there, or
another Ray instance on this machine (`ray up` and `ray down` run `ray stop`, which ends every Ray
process here). Everything else it changes is put back: ~/.bashrc, the files `ray up` and `ray
submit` copy into ~, ~/sase-nas (the project as `ray up` copies it) and ~/sase-runs (the smoke
run), /run/sshd; the sshd it started is stopped by process id.
"""
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import yaml

import searchspace

ROOT = Path(__file__).resolve().parents[1]
LOCAL_YAML = ROOT / "experiments" / "cluster-local.yaml"
RAY = Path(sys.executable).with_name("ray")
HOME = Path.home()
# Files of ~ the test changes: ~/.bashrc, and what `ray up` (bootstrap config and key) and
# `ray submit` (the script) copy into the head's home.
HOME_FILES = [".bashrc", "ray_bootstrap_config.yaml", "ray_bootstrap_key.pem", "run_rl_search.py"]
# Folders of ~ it makes: the project where `ray up` copies it (file_mounts), the README's smoke run.
HOME_FOLDERS = ["sase-nas", "sase-runs"]
SMOKE_RUN = HOME / "sase-runs" / "smoke"

pytestmark = [pytest.mark.stops_ray, pytest.mark.host_changes,
              pytest.mark.skipif(sys.platform != "linux", reason="sshd test: Linux only")]


def skip(reason: str):
    print(f"SKIPPED test_cluster_ssh: {reason}")
    pytest.skip(reason)


def install_tools() -> None:
    """sshd and rsync (`ray up` copies files with it), from apt-get when missing."""
    if os.geteuid() != 0:
        skip("needs root: it installs and runs an sshd and logs in as root over loopback")
    wanted = {"openssh-server": "sshd", "openssh-client": "ssh-keygen", "rsync": "rsync"}
    missing = [package for package, tool in wanted.items() if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin")]
    if not missing:
        return
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    # Debian starts a service on install unless policy-rc.d forbids it: no sshd on 0.0.0.0:22.
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    try:
        if made_policy:
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        if done.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, env=env, timeout=300)
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        skip(f"apt-get install {' '.join(missing)} failed: {err}")
    finally:
        if made_policy:
            policy.unlink(missing_ok=True)
    if done.returncode != 0:
        skip(f"apt-get install {' '.join(missing)} failed: {done.stderr.strip()[-300:]}")


def processes():
    """(pid, parent pid, name, command line) of every process, read from /proc."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:  # it ended meanwhile
                continue
            name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
            yield int(entry.name), int(rest[1]), name, cmdline


def descendants(pid: int) -> list:
    children = {}
    for child, parent, _, _ in processes():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def end(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def raylets():
    return [pid for pid, _, name, _ in processes() if name == "raylet"]


def wait_for_no_other_ray(timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while raylets() and time.monotonic() < deadline:
        time.sleep(2)
    if raylets():
        skip(f"another Ray instance runs on this machine (raylet pids {raylets()}); "
             "`ray up`/`ray down` would end it with `ray stop`")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def sshd(folder: Path, port: int):
    """An sshd on 127.0.0.1:port taking only a key made here; yields the private key's path."""
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
    (folder / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {folder / 'host_key'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}", f"PidFile {folder / 'sshd.pid'}",
        "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "UsePAM no", "StrictModes no", "", ]))
    privsep = Path("/run/sshd")  # sshd refuses to start without its privilege-separation folder
    made_privsep = not privsep.exists()
    privsep.mkdir(mode=0o755, parents=True, exist_ok=True)
    log = open(folder / "sshd.log", "w")
    daemon = subprocess.Popen([shutil.which("sshd", path="/usr/sbin:/usr/bin:/sbin"), "-D", "-e",
                               "-f", str(folder / "sshd_config")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and daemon.poll() is None:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        assert daemon.poll() is None, (folder / "sshd.log").read_text()
        yield folder / "user_key"
    finally:
        sessions = descendants(daemon.pid) if daemon.poll() is None else []
        daemon.terminate()
        daemon.wait(timeout=10)
        end(sessions)  # connections still open (none, normally: the ssh wrapper shares none)
        log.close()
        if made_privsep:
            shutil.rmtree(privsep, ignore_errors=True)


@contextmanager
def home_restored():
    """Whatever this block does to ~/.bashrc and the files Ray copies into ~ is undone after it; the
    folders of HOME_FOLDERS it made are removed."""
    saved = {name: (HOME / name).read_bytes() if (HOME / name).exists() else None for name in HOME_FILES}
    made = [HOME / name for name in HOME_FOLDERS if not (HOME / name).exists()]
    try:
        yield
    finally:
        for name, data in saved.items():
            if data is None:
                (HOME / name).unlink(missing_ok=True)
            else:
                (HOME / name).write_bytes(data)
        for folder in made:
            shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(SMOKE_RUN, ignore_errors=True)  # checked absent before the test


def readme_command(*words: str) -> list:
    """The README's command line holding every one of ``words``, split as a shell would (comment dropped)."""
    lines = [line for line in (ROOT / "README.md").read_text().splitlines()
             if line.startswith("ray ") and all(word in line for word in words)]
    assert len(lines) == 1, f"the README has {len(lines)} `ray` lines with {words}, want 1"
    return shlex.split(lines[0], comments=True)


def on_cluster(command: list, config: Path) -> list:
    """A README command for cluster.yaml, run against the test's cluster config instead."""
    assert command[2] == "cluster.yaml", command
    return command[1:2] + [str(config)] + command[3:]


def remove_launcher_files(tmp_path: Path) -> None:
    """The launcher's config cache files of this test's cluster (they name its tmp folder) and its
    ssh control folder, if empty (shared with any other cluster of this name)."""
    for cached in Path(tempfile.gettempdir()).glob("ray-config-*"):
        if str(tmp_path) in cached.read_text(errors="replace"):
            cached.unlink()
    name = yaml.safe_load(LOCAL_YAML.read_text())["cluster_name"]
    for control in Path("/tmp").glob(f"ray_ssh_*/{hashlib.sha256(name.encode()).hexdigest()[:10]}"):
        if control.is_dir() and not any(control.iterdir()):
            control.rmdir()


def stop_leftovers(ray_tmp: str) -> list:
    """End the Ray processes of this test's session only (their command lines name its temp dir)."""
    ours = [pid for pid, _, _, cmdline in processes() if ray_tmp in cmdline and pid != os.getpid()]
    end(ours)
    return ours


def remote_shell_settings(ray_tmp: str) -> str:
    """Appended to ~/.bashrc (after any PATH changes there): what cluster-local.yaml asks for."""
    return (f"\n# tests/test_cluster_ssh.py (this file is restored after the test)\n"
            f"export PATH=\"{Path(sys.executable).parent}:$PATH\"\n"
            f"export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 "
            f"RAY_TMPDIR={ray_tmp}\n")


def cluster_config(folder: Path, key: Path, gcs_port: int) -> Path:
    """cluster-local.yaml with the test's key and a free GCS port."""
    config = yaml.safe_load(LOCAL_YAML.read_text())
    config["auth"]["ssh_private_key"] = str(key)
    config["head_start_ray_commands"] = [c.replace("--port=6379", f"--port={gcs_port}")
                                         for c in config["head_start_ray_commands"]]
    path = folder / "cluster-local.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def ssh_wrapper(folder: Path, port: int) -> Path:
    """An `ssh` first on the launcher's PATH that adds the port (the launcher's auth has no
    ssh_port) and turns off connection sharing, so no ssh master outlives the test."""
    folder.mkdir()
    wrapper = folder / "ssh"
    options = f"-p {port} -o ControlMaster=no -o ControlPath=none"
    wrapper.write_text(f"#!/bin/sh\nexec {shutil.which('ssh')} {options} \"$@\"\n")
    wrapper.chmod(0o755)
    return folder


def ray_cli(env, *args, timeout=120) -> str:
    done = subprocess.run([str(RAY), *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"ray {args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_readmes_cluster_commands_over_ssh(tmp_path):
    install_tools()
    for taken in (HOME / "sase-nas", SMOKE_RUN):
        if taken.exists():
            skip(f"{taken} exists: the test would copy the project or write the smoke run over it")
    wait_for_no_other_ray()
    submit = readme_command("ray submit cluster.yaml", "--config smoke")
    top_k = readme_command("ray exec cluster.yaml", "top_k.py", "sase-runs/smoke")
    ray_tmp = tempfile.mkdtemp(prefix="rayssh-", dir="/tmp")  # short: Ray's socket paths live under it
    ssh_port, gcs_port = free_port(), free_port()
    env = dict(os.environ, PATH=f"{ssh_wrapper(tmp_path / 'bin', ssh_port)}:{os.environ['PATH']}",
               RAY_TMPDIR=ray_tmp, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    try:
        with sshd(tmp_path, ssh_port) as key, home_restored():
            with open(HOME / ".bashrc", "a") as bashrc:
                bashrc.write(remote_shell_settings(ray_tmp))
            config = cluster_config(tmp_path, key, gcs_port)
            try:
                ray_cli(env, "up", "-y", "--no-config-cache", config)
                submitted = ray_cli(env, *on_cluster(submit, config), timeout=240)
                top = ray_cli(env, *on_cluster(top_k, config))
                rewards = pd.read_parquet(SMOKE_RUN / "rewards")
                winner = searchspace.load(SMOKE_RUN / "winner.json")
            finally:
                ray_cli(env, "down", "-y", config)
        left = stop_leftovers(ray_tmp)
    finally:
        stop_leftovers(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)
        remove_launcher_files(tmp_path)
    assert left == [], f"`ray down` left Ray processes running: {left}"

    assert sorted(rewards["round"].unique()) == [1, 2] and len(rewards) == 8 and (rewards["status"] == "ok").all()
    assert f"winner: {SMOKE_RUN / 'winner.json'}" in submitted  # --out relative to the head's home
    assert winner.key in top  # the top-5 table printed on the head
