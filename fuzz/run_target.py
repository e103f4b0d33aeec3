#!/usr/bin/env python3
"""Runs one libFuzzer target: its seed corpus, then new inputs for a while; prints one line
of figures (executions, time, coverage, crashes) and exits non-zero on a finding.

  run_target.py EXE --seeds DIR --work DIR [--dict FILE] [--seconds N | --runs N] [libFuzzer flags]

New interesting inputs go to WORK/corpus (kept from run to run; the seeds in the source tree
are never written), findings to WORK/findings, the full log to WORK/log.
"""
import argparse
import os
import re
import subprocess
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("exe")
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--dict")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--runs", type=int, help="stop after this many executions instead of a time")
    args, extra = parser.parse_known_args()

    # Absolute: libFuzzer runs in WORK, and a target may change its working directory.
    args.exe, args.seeds, args.work = map(os.path.abspath, (args.exe, args.seeds, args.work))
    if args.dict:
        args.dict = os.path.abspath(args.dict)
    name = os.path.basename(args.exe).removeprefix("fuzz_")
    corpus = os.path.join(args.work, "corpus")
    findings = os.path.join(args.work, "findings")
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(findings, exist_ok=True)
    log_path = os.path.join(args.work, "log")

    command = [args.exe,
               # A hang is a finding: nothing here takes a second. The bound is far above
               # that because at low priority on a busy machine a run can wait its turn for
               # over ten seconds (a 41-byte answer was once reported as a 12 s timeout).
               "-timeout=60",
               "-rss_limit_mb=2048",
               "-print_final_stats=1",
               f"-artifact_prefix={findings}/"]
    if args.dict:
        command.append(f"-dict={args.dict}")
    if args.runs is not None:
        command.append(f"-runs={args.runs}")
    else:
        # 0 would mean "forever" to libFuzzer: here it means the seeds alone.
        command.append(f"-max_total_time={args.seconds}" if args.seconds > 0 else "-runs=0")
    command += extra + [corpus, args.seeds]

    # Faster by a third, finding the same: no stack recorded for every allocation and free
    # (a finding's report still names where it happened; run its input again with the
    # defaults for the rest) and new memory not filled with a pattern. The caller's
    # settings win.
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "malloc_context_size=0:max_malloc_fill_size=0")

    started = time.monotonic()
    with open(log_path, "w") as log:
        status = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=args.work, env=env)
    elapsed = time.monotonic() - started
    text = open(log_path, errors="replace").read()

    def last(pattern, default="?"):
        found = re.findall(pattern, text)
        return found[-1] if found else default

    runs = last(r"stat::number_of_executed_units: (\d+)")
    speed = last(r"stat::average_exec_per_sec:\s+(\d+)")
    cov = last(r"\bcov: (\d+)")
    ft = last(r"\bft: (\d+)")
    corp = last(r"\bcorp: (\d+/\S+)")
    # A slow unit (over 10 s) is written too, but only as a hint: the run goes on.
    artifacts = [a for a in re.findall(r"Test unit written to (\S+)", text)
                 if not os.path.basename(a).startswith("slow-unit-")]
    print(f"{name}: {runs} runs in {elapsed:.0f} s ({speed}/s), cov {cov} ft {ft}, corpus {corp}, "
          f"crashes {len(artifacts) if status else 0}")
    if status:
        # What the sanitizer or the broken property said, and the input to reproduce it with.
        start = max(text.rfind("==ERROR"), text.rfind("property broken"), text.rfind("not a usage_error"))
        print(text[start:] if start >= 0 else text[-4000:], file=sys.stderr)
        for a in artifacts:
            print(f"{name}: reproduce with: {args.exe} {a}", file=sys.stderr)
        print(f"{name}: failed with status {status}; log in {log_path}", file=sys.stderr)
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
