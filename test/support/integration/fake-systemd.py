#!/usr/bin/python3
# A stand-in for systemctl and journalctl inside the apt test's chroot, where no
# systemd runs. It implements what the library's scripts and debhelper's
# maintainer scripts (deb-systemd-helper, deb-systemd-invoke) ask of systemd:
# enable/disable/preset from a unit's [Install] section (symlinks under
# /etc/systemd/system, as systemctl makes them), is-enabled, is-active,
# start/stop/restart that really run ExecStartPre/ExecStart as the unit's User
# in its WorkingDirectory (daemonised, output to a log), show -p ActiveState,
# daemon-reload (nothing to do); and journalctl -u UNIT -n N (the log's tail).
#
# Every call is appended to /run/fake-systemd/calls as one JSON line with the
# arguments and, when a dpkg maintainer script made it, DPKG_MAINTSCRIPT_NAME
# and DPKG_MAINTSCRIPT_PACKAGE: the test reads who started what.
import json
import os
import pwd
import signal
import shlex
import subprocess
import sys
import time

STATE = "/run/fake-systemd"
UNIT_DIRS = ["/etc/systemd/system", "/run/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"]
ETC = "/etc/systemd/system"


def record(argv):
    os.makedirs(STATE, exist_ok=True)
    entry = {
        "argv": argv,
        "maintscript": os.environ.get("DPKG_MAINTSCRIPT_NAME", ""),
        "package": os.environ.get("DPKG_MAINTSCRIPT_PACKAGE", ""),
        "time": time.time(),
    }
    with open(os.path.join(STATE, "calls"), "a") as f:
        f.write(json.dumps(entry) + "\n")


def unit_path(name):
    for d in UNIT_DIRS:
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.path.realpath(p) != "/dev/null":
            return p
    return None


def parse_unit(name):
    """Sections of the effective unit file plus its drop-ins (later values win; lists accumulate)."""
    path = unit_path(name)
    if path is None:
        raise SystemExit(f"Unit {name} not found.")
    files = [path]
    for d in reversed(UNIT_DIRS):
        dd = os.path.join(d, name + ".d")
        if os.path.isdir(dd):
            files += [os.path.join(dd, f) for f in sorted(os.listdir(dd)) if f.endswith(".conf")]
    sections = {}
    for fp in files:
        section = None
        with open(fp) as f:
            for raw in f:
                line = raw.strip()
                if not line or line[0] in "#;":
                    continue
                if line.startswith("[") and line.endswith("]"):
                    section = sections.setdefault(line[1:-1], {})
                    continue
                key, _, value = line.partition("=")
                section.setdefault(key.strip(), []).append(value.strip())
    return sections


def wants_links(name):
    install = parse_unit(name).get("Install", {})
    links = []
    for kind, suffix in (("WantedBy", ".wants"), ("RequiredBy", ".requires")):
        for value in install.get(kind, []):
            for target in value.split():
                links.append(os.path.join(ETC, target + suffix, name))
    return links


def existing_links(name):
    found = []
    if os.path.isdir(ETC):
        for d in os.listdir(ETC):
            if d.endswith(".wants") or d.endswith(".requires"):
                p = os.path.join(ETC, d, name)
                if os.path.islink(p):
                    found.append(p)
    return found


def enable(name):
    for link in wants_links(name):
        if not os.path.islink(link):
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(unit_path(name), link)


def disable(name):
    for link in existing_links(name):
        os.unlink(link)


def pidfile(name):
    return os.path.join(STATE, name + ".pid")


def running_pid(name):
    try:
        pid = int(open(pidfile(name)).read().strip())
    except (OSError, ValueError):
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().split(")")[-1].split()[0] == "Z":
                return None
        os.kill(pid, 0)
        return pid
    except OSError:
        return None


def is_active(name):
    if name.endswith(".target"):
        return os.path.exists(os.path.join(STATE, name + ".active"))
    return running_pid(name) is not None


def strip_prefix(cmd):
    # systemd's "-" (ignore failure) and "@"/"+"/"!" prefixes
    ignore = False
    while cmd and cmd[0] in "-@+!:":
        ignore = ignore or cmd[0] == "-"
        cmd = cmd[1:]
    return cmd, ignore


def service_env(svc):
    user = (svc.get("User") or ["root"])[-1]
    pw = pwd.getpwnam(user)
    groups = os.getgrouplist(user, pw.pw_gid)

    def drop():
        os.setgid(pw.pw_gid)
        os.setgroups(groups)
        os.setuid(pw.pw_uid)
        os.umask(int((svc.get("UMask") or ["0022"])[-1], 8))

    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": pw.pw_dir, "USER": user, "LANG": "C.UTF-8"}
    cwd = (svc.get("WorkingDirectory") or ["/"])[-1]
    return drop, env, cwd


def start(name):
    if name.endswith(".target"):
        os.makedirs(STATE, exist_ok=True)
        open(os.path.join(STATE, name + ".active"), "w").close()
        return 0
    if is_active(name):
        return 0
    svc = parse_unit(name).get("Service", {})
    drop, env, cwd = service_env(svc)
    log = open(os.path.join(STATE, name + ".log"), "ab")
    for pre in svc.get("ExecStartPre", []):
        cmd, ignore = strip_prefix(pre)
        rc = subprocess.call(shlex.split(cmd), preexec_fn=drop, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        if rc != 0 and not ignore:
            open(os.path.join(STATE, name + ".failed"), "w").close()
            print(f"Job for {name} failed (ExecStartPre exited {rc}).", file=sys.stderr)
            return 1
    cmd, _ = strip_prefix(svc["ExecStart"][-1])
    proc = subprocess.Popen(
        shlex.split(cmd), preexec_fn=drop, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
    )
    with open(pidfile(name), "w") as f:
        f.write(str(proc.pid))
    try:
        os.unlink(os.path.join(STATE, name + ".failed"))
    except OSError:
        pass
    with open(os.path.join(STATE, "starts"), "a") as f:
        f.write(json.dumps({"unit": name, "pid": proc.pid, "maintscript": os.environ.get("DPKG_MAINTSCRIPT_NAME", "")}) + "\n")
    return 0


def stop(name):
    if name.endswith(".target"):
        try:
            os.unlink(os.path.join(STATE, name + ".active"))
        except OSError:
            pass
        # PartOf=: stopping the target stops its members.
        for d in (os.path.join(ETC, name + ".wants"),):
            if os.path.isdir(d):
                for member in os.listdir(d):
                    stop(member)
        return 0
    pid = running_pid(name)
    if pid is None:
        return 0
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        os.kill(pid, signal.SIGTERM)
    for _ in range(300):
        if running_pid(name) is None:
            break
        time.sleep(0.1)
    else:
        os.killpg(pid, signal.SIGKILL)
    return 0


def systemctl(argv):
    record(argv)
    args = [a for a in argv if not a.startswith("-")]
    flags = [a for a in argv if a.startswith("-")]
    quiet = "-q" in flags or "--quiet" in flags
    value = "--value" in flags
    if "-p" in argv:
        i = argv.index("-p")
        prop = argv[i + 1]
        args = [a for a in args if a != prop]
    if not args:
        return 0
    verb, units = args[0], args[1:]
    if verb == "daemon-reload":
        return 0
    if verb in ("enable", "preset", "reenable"):
        for u in units:
            if verb == "reenable":
                disable(u)
            enable(u)
        return 0
    if verb == "disable":
        for u in units:
            disable(u)
        return 0
    if verb == "is-enabled":
        ok = all(existing_links(u) for u in units)
        if not quiet:
            for u in units:
                print("enabled" if existing_links(u) else ("disabled" if unit_path(u) else "not-found"))
        return 0 if ok else 1
    if verb == "is-active":
        ok = all(is_active(u) for u in units)
        if not quiet:
            for u in units:
                print("active" if is_active(u) else "inactive")
        return 0 if ok else 3
    if verb == "start":
        return max([start(u) for u in units] or [0])
    if verb == "stop":
        for u in units:
            stop(u)
        return 0
    if verb in ("restart", "try-restart"):
        rc = 0
        for u in units:
            if verb == "try-restart" and not is_active(u):
                continue
            stop(u)
            rc = max(rc, start(u))
        return rc
    if verb == "show":
        for u in units:
            if os.path.exists(os.path.join(STATE, u + ".failed")):
                state = "failed"
            else:
                state = "active" if is_active(u) else "inactive"
            print(state if value else f"ActiveState={state}")
        return 0
    if verb == "reload":
        for u in units:
            pid = running_pid(u)
            if pid:
                os.kill(pid, signal.SIGHUP)
        return 0
    print(f"fake systemctl: {verb} is not implemented", file=sys.stderr)
    return 1


def journalctl(argv):
    unit, n = None, 40
    for i, a in enumerate(argv):
        if a == "-u":
            unit = argv[i + 1]
        if a == "-n":
            n = int(argv[i + 1])
    if unit:
        try:
            with open(os.path.join(STATE, unit + ".log"), "rb") as f:
                sys.stdout.write(b"".join(f.readlines()[-n:]).decode(errors="replace"))
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    tool = os.path.basename(sys.argv[0])
    sys.exit(journalctl(sys.argv[1:]) if tool == "journalctl" else systemctl(sys.argv[1:]))
