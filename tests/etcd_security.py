"""etcd with its security on, for the tests: users and roles (etcd's authentication), and a
CA with certificates made by the openssl command (TLS).

Used by tests/run_with_etcd.py --auth (the client's tests) and tests/e2e/test_security.py.
Every command has a time limit and fails with what it printed."""

import os
import shutil
import ssl
import subprocess
import json
import urllib.request

from harness import Etcd


def run(cmd, what, timeout=20, env=None):
    """Runs a command; raises AssertionError with its output when it fails."""
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{what}: still running after {timeout} s: {' '.join(cmd)}") from None
    if done.returncode != 0:
        raise AssertionError(f"{what} failed with {done.returncode}: {' '.join(cmd)}\n"
                             f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}")
    return done.stdout.decode(errors="replace")


# --- users and roles -------------------------------------------------------------------

class Etcdctl:
    """etcdctl against one etcd, as root once authentication is on."""

    def __init__(self, url, tls=None):
        self.url = url
        self.tls = tls  # a Certificates, for an etcd that wants client certificates
        self.user = None  # "root:password" once authentication is on

    def __call__(self, *args):
        cmd = [shutil.which("etcdctl") or "/usr/bin/etcdctl", "--endpoints", self.url,
               "--command-timeout=10s", "--dial-timeout=5s"]
        if self.user:
            cmd += ["--user", self.user]
        if self.tls:
            cmd += ["--cacert", self.tls.ca, "--cert", self.tls.client, "--key", self.tls.client_key]
        return run(cmd + list(args), f"etcdctl {args[0]}", env={**os.environ, "ETCDCTL_API": "3"})


def enable_auth(etcdctl, root_password, users, roles):
    """Creates `roles` ({name: [(permission, key, range_end)]}, range_end "" for one key) and
    `users` ({name: (password, [role])}), then turns authentication on with a root user
    (etcd requires one, holding the root role)."""
    for role, grants in roles.items():
        etcdctl("role", "add", role)
        for permission, key, range_end in grants:
            etcdctl("role", "grant-permission", role, permission, key, *([range_end] if range_end else []))
    for name, (password, user_roles) in users.items():
        etcdctl("user", "add", name, f"--new-user-password={password}")
        for role in user_roles:
            etcdctl("user", "grant-role", name, role)
    etcdctl("user", "add", "root", f"--new-user-password={root_password}")
    etcdctl("user", "grant-role", "root", "root")
    etcdctl("auth", "enable")
    etcdctl.user = f"root:{root_password}"


def group_role(group):
    """What a monitor of `group` needs: read and write on the group's keys, [GROUP, GROUP0)
    (the lock GROUP and everything under GROUP/), nothing else."""
    return [("readwrite", group, group + "0")]


# --- certificates ----------------------------------------------------------------------

class Certificates:
    """A CA and the certificates the TLS tests need, made with openssl in `directory`:

    ca, ca_key            the CA that etcd trusts, and that signs the server's certificate
    server, server_key    etcd's, naming 127.0.0.1 (an IP SAN) and nothing else
    client, client_key    a client certificate of the CA
    expired, expired_key  a client certificate of the CA that expired in 2020
    expired_server(_key)  a server certificate for 127.0.0.1 that expired in 2020
    other_host(_key)      a server certificate of the CA for other.example and 127.0.0.2 only
    other_ca              another CA; other_client(_key): a client certificate it signed"""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca, self.ca_key = self._ca("nm-test-ca")
        self.other_ca, self.other_ca_key = self._ca("nm-other-ca")
        # etcd's gateway dials etcd's own gRPC port with the server certificate as its client
        # certificate: with --client-cert-auth it needs clientAuth too.
        server_ext = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
        client_ext = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n"
        self.server, self.server_key = self._signed(
            "server", "127.0.0.1", server_ext + "subjectAltName=IP:127.0.0.1\n")
        self.other_host, self.other_host_key = self._signed(
            "other-host", "other.example", server_ext + "subjectAltName=DNS:other.example,IP:127.0.0.2\n")
        self.client, self.client_key = self._signed("client", "nm-client", client_ext)
        self.other_client, self.other_client_key = self._signed(
            "other-client", "nm-client", client_ext, ca=(self.other_ca, self.other_ca_key))
        self.expired, self.expired_key = self._signed(
            "expired", "nm-client", client_ext, dates=("20200101000000Z", "20200102000000Z"))
        self.expired_server, self.expired_server_key = self._signed(
            "expired-server", "127.0.0.1", server_ext + "subjectAltName=IP:127.0.0.1\n",
            dates=("20200101000000Z", "20200102000000Z"))

    def path(self, name):
        return os.path.join(self.dir, name)

    def _key(self, name):
        key = self.path(f"{name}-key.pem")
        run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key],
            f"openssl genpkey {name}")
        os.chmod(key, 0o600)
        return key

    def _ca(self, name):
        key = self._key(name)
        cert = self.path(f"{name}.pem")
        run(["openssl", "req", "-x509", "-new", "-key", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            f"openssl req {name}")
        return cert, key

    def _signed(self, name, common_name, extensions, ca=None, dates=None):
        """A certificate signed by `ca` (default: the CA), valid for two days, or between
        `dates` (openssl ca's YYYYMMDDHHMMSSZ), which no other openssl command can set."""
        ca_cert, ca_key = ca or (self.ca, self.ca_key)
        key = self._key(name)
        csr = self.path(f"{name}.csr")
        cert = self.path(f"{name}.pem")
        ext = self.path(f"{name}.ext")
        with open(ext, "w", encoding="ascii") as f:
            f.write(extensions)
        run(["openssl", "req", "-new", "-key", key, "-out", csr, "-subj", f"/CN={common_name}"],
            f"openssl req {name}")
        if dates is None:
            run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                 "-out", cert, "-days", "2", "-extfile", ext], f"openssl x509 {name}")
            return cert, key
        # openssl ca: a throwaway database, and the dates given.
        db = self.path(f"{name}-ca")
        os.makedirs(db, exist_ok=True)
        open(os.path.join(db, "index.txt"), "w").close()
        with open(os.path.join(db, "serial"), "w", encoding="ascii") as f:
            f.write("1000\n")
        conf = os.path.join(db, "ca.cnf")
        with open(conf, "w", encoding="ascii") as f:
            f.write(f"[ca]\ndefault_ca = test\n[test]\ndatabase = {db}/index.txt\nserial = {db}/serial\n"
                    f"new_certs_dir = {db}\ndefault_md = sha256\npolicy = any\nunique_subject = no\n"
                    f"[any]\ncommonName = supplied\n")
        run(["openssl", "ca", "-batch", "-config", conf, "-cert", ca_cert, "-keyfile", ca_key, "-in", csr,
             "-out", cert, "-startdate", dates[0], "-enddate", dates[1], "-extfile", ext, "-notext"],
            f"openssl ca {name}")
        return cert, key


class TlsEtcd(Etcd):
    """One etcd member that serves its clients over TLS only and asks for a client
    certificate signed by the test CA (--client-cert-auth)."""

    def __init__(self, workdir, certs, name="m1", cert=None, key=None, extra_args=()):
        self.certs = certs
        cert = cert or certs.server
        key = key or certs.server_key
        super().__init__(workdir, name=name,
                         extra_args=["--cert-file", cert, "--key-file", key, "--client-cert-auth",
                                     "--trusted-ca-file", certs.ca, *extra_args])
        self.url = f"https://127.0.0.1:{self.client_port}"

    def _context(self):
        context = ssl.create_default_context(cafile=self.certs.ca)
        context.load_cert_chain(self.certs.client, self.certs.client_key)
        # A server certificate made to fail (expired, another host) still shows that etcd is up.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context

    def healthy(self):
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=0.5, context=self._context()) as r:
                return json.load(r).get("health") == "true"
        except (OSError, ValueError):
            return False

    def request(self, path, body, timeout=5.0):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout, context=self._context()) as r:
            return json.load(r)
