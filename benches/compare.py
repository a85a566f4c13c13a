#!/usr/bin/env python3
"""Compares the `figure` lines of two benchmark runs.

Every bench prints, besides its human-readable table, one line per figure:

    figure<TAB>bench<TAB>name<TAB>value<TAB>unit

Save each run's output (`cargo bench ... | tee before.txt`), then

    benches/compare.py before.txt after.txt

prints each figure present in both with its change. A figure's direction
(higher or lower is better) follows from its unit: rates (`1/s`) are better
higher, times, latencies and memory (`s`, `ms`, `us`, `ns`, `KiB`) lower.
Repeated figures (several rounds in one file) are compared by their median.
"""

import statistics
import sys

HIGHER_IS_BETTER = {"1/s"}


def figures(path):
    found = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5 or parts[0] != "figure":
                continue
            _, bench, name, value, unit = parts
            found.setdefault((bench, name, unit), []).append(float(value))
    return {key: statistics.median(values) for key, values in found.items()}


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    before, after = figures(argv[1]), figures(argv[2])
    if not before or not after:
        print("no figure lines in one of the files", file=sys.stderr)
        return 1
    print(f"{'bench':<16} {'figure':<40} {'before':>14} {'after':>14} {'change':>9}")
    for key in sorted(before.keys() & after.keys()):
        bench, name, unit = key
        a, b = before[key], after[key]
        change = (b - a) / a * 100 if a else float("inf")
        better = (change > 0) == (unit in HIGHER_IS_BETTER)
        mark = "" if abs(change) < 1 else ("better" if better else "worse")
        print(f"{bench:<16} {name:<40} {a:>14.6g} {b:>14.6g} {change:>+8.1f}% {unit} {mark}")
    for key in sorted(before.keys() ^ after.keys()):
        print(f"only in {'before' if key in before else 'after'}: {' '.join(key)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
