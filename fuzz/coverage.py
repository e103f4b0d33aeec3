#!/usr/bin/env python3
"""Source coverage of the fuzz corpora (scripts/fuzz --coverage): runs each target, built
with clang's coverage mapping, once over its seeds and the inputs its runs kept, then merges
the profiles and reports per source file of src/ (llvm-cov), with an HTML report beside.

  coverage.py COVERAGE_BUILD FUZZ_BUILD [TARGET...]
"""
import glob
import json
import os
import shutil
import subprocess
import sys


def llvm_tool(name):
    """The release's own llvm tool (llvm-cov, llvm-profdata): unversioned, or the newest
    versioned one on the PATH (Debian 12 has llvm-cov-14, Debian 13 llvm-cov-19)."""
    if shutil.which(name):
        return name
    found = sorted(glob.glob(f"/usr/bin/{name}-[0-9]*"), key=lambda p: int(p.rsplit("-", 1)[1]))
    if not found:
        sys.exit(f"no {name} on this machine (package llvm)")
    return found[-1]


def main():
    build, fuzz_build, wanted = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    tests = json.loads(subprocess.check_output(["meson", "introspect", "--tests", build]))
    tests = [t for t in tests if t["suite"][0].split(":")[-1] == "fuzz"]
    tests = [t for t in tests if not wanted or t["name"].removeprefix("fuzz_") in wanted]
    if not tests:
        sys.exit("no such fuzz target: " + " ".join(sorted(wanted)))
    out = os.path.join(build, "coverage")
    os.makedirs(out, exist_ok=True)
    for old in glob.glob(os.path.join(out, "*.profraw")):
        os.remove(old)

    exes = []
    for t in tests:
        name = t["name"].removeprefix("fuzz_")
        cmd = t["cmd"]
        exe = os.path.abspath(os.path.join(t.get("workdir") or build, cmd[2]))
        seeds = os.path.abspath(os.path.join(t.get("workdir") or build, cmd[cmd.index("--seeds") + 1]))
        # The runner's own flags stop at --seconds N; what follows is libFuzzer's.
        flags = cmd[cmd.index("--seconds") + 2:]
        kept = os.path.abspath(os.path.join(fuzz_build, "fuzz", name, "corpus"))
        dirs = [seeds] + ([kept] if os.path.isdir(kept) else [])
        inputs = sum(len(os.listdir(d)) for d in dirs)
        env = dict(os.environ, LLVM_PROFILE_FILE=os.path.abspath(os.path.join(out, f"{name}.profraw")))
        # -runs=0: each input of the corpus once, no new ones.
        status = subprocess.call([exe, "-runs=0", *flags, *dirs], env=env, cwd=out,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"{name}: {inputs} inputs" + ("" if status == 0 else f" (exit status {status})"), flush=True)
        exes.append(exe)

    profile = os.path.join(out, "fuzz.profdata")
    subprocess.check_call([llvm_tool("llvm-profdata"), "merge", "-sparse", "-o", profile,
                           *glob.glob(os.path.join(out, "*.profraw"))])
    objects = [exes[0]] + [a for e in exes[1:] for a in ("-object", e)]
    # Only the project's sources: not the fuzz targets themselves, the libraries or the headers
    # of the system.
    select = ["-instr-profile", profile, "-ignore-filename-regex", r"^/usr/|/subprojects/|/fuzz/"]
    subprocess.check_call([llvm_tool("llvm-cov"), "report", *objects, *select])
    html = os.path.join(out, "html")
    subprocess.check_call([llvm_tool("llvm-cov"), "show", *objects, *select, "-format=html", f"-output-dir={html}"])
    print(f"HTML report: {os.path.join(html, 'index.html')}")


if __name__ == "__main__":
    main()
