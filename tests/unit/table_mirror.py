#!/usr/bin/env python3
"""Checks that the transition table at the top of the failover core and its tests mirror
each other: every row (L1, K2, ...) has exactly one test named after it
(BOOST_AUTO_TEST_CASE(L1_...)), and every such test names a row of the table.

Usage: table_mirror.py src/core/failover.hpp tests/unit/test_failover_table.cpp"""

import re
import sys


def main(table_path, tests_path):
    with open(table_path, encoding="utf-8") as f:
        rows = re.findall(r"^// │ ([A-Z]\d+)\s", f.read(), re.M)
    with open(tests_path, encoding="utf-8") as f:
        tests = re.findall(r"^BOOST_AUTO_TEST_CASE\(([A-Z]\d+)_", f.read(), re.M)
    problems = []
    if not rows:
        problems.append(f"no table rows found in {table_path}")
    for row in sorted(set(rows)):
        if rows.count(row) > 1:
            problems.append(f"row {row} appears {rows.count(row)} times in the table")
        if tests.count(row) != 1:
            problems.append(f"row {row} has {tests.count(row)} tests (expected exactly one)")
    for test in sorted(set(tests) - set(rows)):
        problems.append(f"test {test}_... names no row of the table")
    for p in problems:
        print(p)
    print(f"{len(set(rows))} rows, {len(tests)} row tests, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
