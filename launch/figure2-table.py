#!/usr/bin/env python3
"""The Figure-2 table of docs/results.md from a launch/figure2.sh run (needs only python3).

    launch/figure2-table.py WORKROOT SETTING LOG

Also prints the CNN table of launch/cnn-lds.sh (identity, K-FAC and SNI rows where present).
Reads WORKROOT/SETTING/lds/*.json and WORKROOT/SETTING-exact/lds/*.json (the `lds --ensemble`
results) and the script's log LOG, whose `== HH:MM:SS command` lines give each step's wall time
(5 models, two ranks, MPI start-up and, for source and astra-source, the segment fits included).
"""
import json, re, sys, datetime, pathlib

root, setting, log = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
steps = [(datetime.datetime.strptime(m.group(1), "%H:%M:%S"), m.group(2))
         for m in re.finditer(r"^== (\d\d:\d\d:\d\d) (.*)$", open(log).read(), re.M)]
seconds = {}
for (t0, cmd), (t1, _) in zip(steps, steps[1:]):
    m = re.search(r"score --workdir (\S+) --method (\S+)(.*)", cmd)
    if m:
        d = (t1 - t0).total_seconds() % 86400
        rest = re.sub(r"\s*--seeds \S+", "", m.group(3)).strip()   # the model-0 pass and the rest add up
        key = (pathlib.Path(m.group(1)).name, m.group(2), rest)
        seconds[key] = seconds.get(key, 0) + d   # a re-run adds its (skip) time

def row(ws, name):
    f = root / ws / "lds" / f"{name}.json"
    if not f.exists():
        return None
    d = json.load(open(f))
    one = d.get("perSeed") or d.get("seeds") or {}
    single = d.get("single") or d.get("model") or {}
    ens = d.get("ensemble") or {}
    fmt = lambda x: "—" if not x or x.get("mean") is None else f"{x['mean']:.3f} ± {x['standardError']:.3f}"
    return fmt(single), fmt(ens)

labels = [("identity", "gradient dot product"), ("tracin", "TracIn"), ("trak", "TRAK"), ("kfac", "K-FAC-IF"), ("ekfac", "EK-FAC-IF"),
          ("sni", "SNI-IF"), ("astra", "ASTRA-IF"), ("source", "EK-FAC-SOURCE"), ("astra-source", "ASTRA-SOURCE")]
print(f"| method ({setting}) | LDS, 1 model | LDS, ensemble of 5 | seconds, 5 models, 2 ranks |")
print("|---|---|---|---|")
for name, label in labels:
    r = row(setting, name)
    if r:
        s = seconds.get((setting, name, ""))
        print(f"| {label} | {r[0]} | {r[1]} | {s:.0f} |" if s is not None else f"| {label} | {r[0]} | {r[1]} | |")
for ws in (setting, setting + "-exact"):
    for f in sorted((root / ws / "lds").glob("*_*.json")):
        r = row(ws, f.stem)
        print(f"| {f.stem} | {r[0]} | {r[1]} | |")
