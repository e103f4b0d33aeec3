#!/usr/bin/env python3
"""One .deb for Debian 12 and 13 and Ubuntu 22.04 and 24.04: what the built nodeos-monitor
needs from the system must be there on the oldest of them, Ubuntu 22.04 (glibc 2.35, GCC
12's libstdc++ and libgcc, OpenSSL 3.0), and it must need no Boost library (Boost is
linked statically: Debian 12 has 1.81, Debian 13 1.83 and 1.88, Ubuntu 22.04 1.74, Ubuntu
24.04 1.83).

It reads the binary's needed libraries (`readelf -d`) and the versions of the symbols it
takes from them (`objdump -T`), and fails on a Boost library, on a library outside the
four releases' base (the C and C++ runtimes and OpenSSL), or on a symbol version newer
than Ubuntu 22.04's. With --deb it checks the packaged binary and the package's Depends:
line as well (each version no newer than Ubuntu 22.04's package).

    binary_compat.py BINARY [B_SANITIZE]     the build's binary (the test binary_compat,
                                             suite package); skipped in a sanitizer build,
                                             whose binary needs the sanitizers' runtimes
    binary_compat.py --deb PACKAGE.deb       the package (scripts/container-test)

The baseline is what the package is built on, Debian 12, or older: on a newer release
(Debian 13's glibc 2.41), the binary takes that release's symbol versions and the test is
skipped; such a build makes a package for that release only."""

import os
import re
import subprocess
import sys
import tempfile

SKIP = 77  # meson's "skipped"

# Ubuntu 22.04 (jammy), the oldest of the four: the highest version of each symbol
# namespace it provides, and its packages' versions.
BASELINE = {
    "GLIBC": (2, 35),          # glibc 2.35
    "GLIBCXX": (3, 4, 30),     # libstdc++ of GCC 12
    "CXXABI": (1, 3, 13),      # the same
    "GCC": (12, 0, 0),         # libgcc_s of GCC 12
    "OPENSSL": (3, 0, 0),      # OpenSSL 3.0.2
}
BASELINE_PACKAGES = {
    "libc6": "2.35-0ubuntu3",
    "libstdc++6": "12.3.0-1ubuntu1~22.04",
    "libgcc-s1": "12.3.0-1ubuntu1~22.04",
    "libssl3": "3.0.2-0ubuntu1",
    "adduser": "3.118ubuntu5",
}
# The libraries every one of the four has in its base (libc6, libstdc++6, libgcc-s1,
# libssl3).
ALLOWED_LIBRARIES = {
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "ld-linux-x86-64.so.2",
    "libstdc++.so.6", "libgcc_s.so.1", "libssl.so.3", "libcrypto.so.3",
}
# The build release's glibc (Debian 12): a newer one means a build for that release only.
BUILD_RELEASE_GLIBC = (2, 36)

VERSIONED = re.compile(r"\b(GLIBC|GLIBCXX|CXXABI|GCC|OPENSSL)_([0-9]+(?:\.[0-9]+)*)\b")


def version_tuple(text):
    return tuple(int(part) for part in text.split("."))


def needed_libraries(binary):
    out = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def symbol_versions(binary):
    """The highest version the binary needs in each namespace, and the symbols needing it."""
    out = subprocess.run(["objdump", "-T", binary], capture_output=True, text=True, check=True).stdout
    highest = {}
    for line in out.splitlines():
        # Only the symbols the binary takes from its libraries (undefined: *UND*).
        if "*UND*" not in line:
            continue
        for name, ver in VERSIONED.findall(line):
            v = version_tuple(ver)
            symbol = line.split()[-1]
            if name not in highest or v > highest[name][0]:
                highest[name] = (v, [symbol])
            elif v == highest[name][0]:
                highest[name][1].append(symbol)
    return highest


def check_binary(binary):
    """The problems found, and a summary line per finding."""
    problems, summary = [], []
    libraries = needed_libraries(binary)
    summary.append("needed libraries: " + " ".join(libraries))
    for lib in libraries:
        if "boost" in lib:
            problems.append(f"needs the Boost library {lib}: Boost must be linked statically")
        elif lib not in ALLOWED_LIBRARIES:
            problems.append(f"needs {lib}, which is not in the base of every release the package is for")
    highest = symbol_versions(binary)
    for name in sorted(highest):
        v, symbols = highest[name]
        text = ".".join(map(str, v))
        summary.append(f"highest {name}_ version: {name}_{text} ({', '.join(sorted(set(symbols))[:3])})")
        limit = BASELINE[name]
        if v > limit:
            problems.append(f"needs {name}_{text} ({', '.join(sorted(set(symbols)))}); Ubuntu 22.04 has "
                            f"{name}_{'.'.join(map(str, limit))} at most")
    return problems, summary


def dpkg_newer(a, b):
    return subprocess.run(["dpkg", "--compare-versions", a, "gt", b]).returncode == 0


def check_depends(deb):
    depends = subprocess.run(["dpkg-deb", "-f", deb, "Depends"], capture_output=True, text=True,
                             check=True).stdout.strip()
    problems = []
    for clause in (c.strip() for c in depends.split(",")):
        m = re.fullmatch(r"([a-z0-9.+-]+)(?:\s*\(\s*(>=|>>|=)\s*([^)\s]+)\s*\))?", clause)
        if not m:
            problems.append(f"Depends: {clause!r} is not one package with at most a minimum version")
            continue
        package, _, version = m.groups()
        if "boost" in package:
            problems.append(f"Depends: {clause}: Boost must be linked statically")
        elif package not in BASELINE_PACKAGES:
            problems.append(f"Depends: {clause}: not a package the four releases all have")
        elif version and dpkg_newer(version, BASELINE_PACKAGES[package]):
            problems.append(f"Depends: {clause}: Ubuntu 22.04 has {package} {BASELINE_PACKAGES[package]}")
    return depends, problems


def glibc_of_this_machine():
    return version_tuple(os.confstr("CS_GNU_LIBC_VERSION").split()[-1])


def main(argv):
    if argv[:1] == ["--deb"] and len(argv) == 2:
        deb = argv[1]
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", deb, tmp], check=True)
            problems, summary = check_binary(os.path.join(tmp, "usr/bin/nodeos-monitor"))
        depends, more = check_depends(deb)
        summary.insert(0, f"Depends: {depends}")
        problems += more
    elif len(argv) in (1, 2) and not argv[0].startswith("-"):
        if len(argv) == 2 and argv[1] != "none":
            print(f"skipped: a sanitizer build (b_sanitize={argv[1]}) needs the sanitizers' runtimes")
            return SKIP
        glibc = glibc_of_this_machine()
        if glibc > BUILD_RELEASE_GLIBC:
            print(f"skipped: this machine's glibc {'.'.join(map(str, glibc))} is newer than Debian 12's, "
                  "where the package for all four releases is built")
            return SKIP
        problems, summary = check_binary(argv[0])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for line in summary:
        print(line)
    for problem in problems:
        print("FAIL: " + problem)
    if not problems:
        print("ok: installs on Ubuntu 22.04 and later, Debian 12 and later (no Boost library, "
              "no symbol version newer than Ubuntu 22.04's)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
