#!/usr/bin/env python3
"""Stands in for nodeos in the fault tests: the nodeos simulator, under the name the
fault harness gives it. `--fault-control=DIR` is the simulator's `--sim-control DIR`: the
faults a test switches (crash, SIGTERM ignored, slow stop, slow start, a lagging or
stalled head, a hung or failing API, a refused pause) are described in nodeos_sim.py.
It execs the simulator, so the pid is the simulator's."""

import os
import sys

SIM = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "nodeos_sim.py")

if __name__ == "__main__":
    os.execv(sys.executable, [sys.executable, SIM, *sys.argv[1:]])
