#!/usr/bin/env python3
"""run_with_etcd.py [--auth] CMD...: runs CMD against a fresh single-member etcd.

The etcd listens on free loopback ports with its data in a temporary directory; CMD finds
its URL in NM_TEST_ETCD. etcd is stopped by its PID and the directory removed whatever
CMD does; the exit status is CMD's.

--auth: etcd has authentication on, simple tokens that expire after 2 s idle
(--auth-token-ttl), a root user, and a user whose role may read and write only the keys
[PREFIX, PREFIX0); CMD finds them in NM_TEST_ETCD_USER, NM_TEST_ETCD_PASSWORD,
NM_TEST_ETCD_PREFIX and NM_TEST_ETCD_ROOT_PASSWORD."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Etcd, stop_pid  # noqa: E402
from etcd_security import Etcdctl, enable_auth, group_role  # noqa: E402

AUTH_TOKEN_TTL = 2
AUTH_USER, AUTH_PASSWORD, AUTH_PREFIX, ROOT_PASSWORD = "nm-user", "nm-user's password", "nm-auth", "root-password"


def on_signal(signum, frame):
    # Turn SIGTERM/SIGHUP (a test runner's timeout) into an exception, so that the
    # `finally` below still stops etcd and the command.
    raise SystemExit(128 + signum)


def main(argv):
    auth = len(argv) > 1 and argv[1] == "--auth"
    if auth:
        argv = argv[1:]
    if len(argv) < 2:
        print("usage: run_with_etcd.py [--auth] CMD [ARG...]", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    workdir = tempfile.mkdtemp(prefix="nm-etcd-")
    etcd = Etcd(workdir, extra_args=["--auth-token-ttl", str(AUTH_TOKEN_TTL)] if auth else ())
    cmd = None
    try:
        etcd.start()
        env = dict(os.environ, NM_TEST_ETCD=etcd.url)
        if auth:
            enable_auth(Etcdctl(etcd.url), ROOT_PASSWORD, users={AUTH_USER: (AUTH_PASSWORD, ["nm-role"])},
                        roles={"nm-role": group_role(AUTH_PREFIX)})
            env.update(NM_TEST_ETCD_USER=AUTH_USER, NM_TEST_ETCD_PASSWORD=AUTH_PASSWORD,
                       NM_TEST_ETCD_PREFIX=AUTH_PREFIX, NM_TEST_ETCD_ROOT_PASSWORD=ROOT_PASSWORD,
                       NM_TEST_ETCD_TOKEN_TTL=str(AUTH_TOKEN_TTL))
        cmd = subprocess.Popen(argv[1:], env=env)
        status = cmd.wait()
    except BaseException:
        # Keep the log where it can be read before the directory goes.
        if os.path.exists(etcd.log_path):
            with open(etcd.log_path, "rb") as log:
                sys.stderr.write(log.read()[-4000:].decode(errors="replace"))
        raise
    finally:
        if cmd is not None:
            stop_pid(cmd, timeout=5.0)
        etcd.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    # A command killed by a signal reports -N; turn it into a shell-style failure status.
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
