#!/usr/bin/env python3
"""Prints the median of every criterion benchmark under a criterion output directory
(default: target/criterion; with CARGO_TARGET_DIR=target/bench it is target/bench/criterion)."""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "target/criterion"
for dirpath, _, files in sorted(os.walk(root)):
    if os.path.basename(dirpath) == "new" and "estimates.json" in files:
        with open(os.path.join(dirpath, "estimates.json")) as f:
            ns = json.load(f)["median"]["point_estimate"]
        name = os.path.relpath(os.path.dirname(dirpath), root)
        unit = (1e6, "ms") if ns >= 1e6 else (1e3, "us") if ns >= 1e3 else (1, "ns")
        print(f"{name:56} {ns / unit[0]:10.2f} {unit[1]}")
