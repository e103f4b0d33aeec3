#!/usr/bin/env python3
"""Stands in for nodeos in the fault tests: it reads the faults a test asked for from a
control directory, then becomes the nodeos simulator (exec, so the pid is the simulator's).

It takes the simulator's arguments plus `--fault-control=DIR`. Files in DIR, read at each
start, so a test switches a fault on or off between two starts of nodeos:
  crash-producer-ms, crash-validator-ms   crash N ms after start in that mode
  ignore-sigterm                          "producer", "validator" or "all"
  stop-delay-ms                           keep running (and producing) N ms after SIGTERM
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import nodeos_sim  # noqa: E402


def read(control, name):
    try:
        with open(os.path.join(control, name), encoding="utf-8") as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None


def main(argv):
    control, args, config_dir = None, [], None
    for i, arg in enumerate(argv):
        if arg.startswith("--fault-control="):
            control = arg.split("=", 1)[1]
            continue
        if arg == "--config-dir" and i + 1 < len(argv):
            config_dir = argv[i + 1]
        elif arg.startswith("--config-dir="):
            config_dir = arg.split("=", 1)[1]
        args.append(arg)
    if control and config_dir:
        try:
            producer = nodeos_sim.producer_of(config_dir)
        except OSError:
            producer = None
        mode = "producer" if producer else "validator"
        crash = read(control, f"crash-{mode}-ms")
        if crash:
            args.append(f"--sim-crash-after-ms={int(crash)}")
        ignore = read(control, "ignore-sigterm")
        if ignore:
            args.append(f"--sim-ignore-sigterm={ignore}")
        delay = read(control, "stop-delay-ms")
        if delay:
            args.append(f"--sim-stop-delay-ms={int(delay)}")
    os.execv(sys.executable, [sys.executable, nodeos_sim.__file__, *args])


if __name__ == "__main__":
    main(sys.argv[1:])
