#!/usr/bin/env python3
"""experiments_table.py -- tables of a scripts/experiments.sh root.

    scripts/experiments_table.py ROOT

Reads ROOT/cells/*/summary.json (+ command.txt, wall.txt, rc.txt) and writes
ROOT/table.csv (one row per cell) and ROOT/table.md: the Fig. 1 (right panel)
matrix of Xu & Huang -- per rule (rows) and attack (columns) the best mean
honest accuracy over the epochs and the consensus error (eq. 3) at that
epoch -- followed by the per-cell details and the command of every cell.
The Markdown is also printed on stdout.
"""
import csv
import json
import os
import sys

FIELDS = ["rule", "attack", "time_varying", "nodes", "byzantine", "epochs_run",
          "best_epoch", "best_accuracy", "consensus_at_best", "final_accuracy",
          "final_min_accuracy", "final_consensus", "final_byzantine_weight",
          "seconds_per_round", "wall_s", "status", "command"]


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def cell_row(root, name):
    d = os.path.join(root, "cells", name)
    parts = name.split("__")
    row = {k: "" for k in FIELDS}
    row.update(rule=parts[0], attack=parts[1] if len(parts) > 1 else "",
               time_varying="tv" in parts[2:], command=read(os.path.join(d, "command.txt")),
               wall_s=read(os.path.join(d, "wall.txt")))
    rc = read(os.path.join(d, "rc.txt"), "?")
    try:
        with open(os.path.join(d, "summary.json")) as f:
            s = json.load(f)
    except (OSError, ValueError):
        row["status"] = "no summary (rc %s)" % rc
        return row
    cfg, eps = s.get("config", {}), [e for e in s.get("epochs", []) if e.get("mean_accuracy") is not None]
    row.update(nodes=cfg.get("nodes", ""), byzantine=cfg.get("byzantine", ""), epochs_run=len(eps))
    if not eps:
        row["status"] = "no epoch (rc %s)" % rc
        return row
    best = max(eps, key=lambda e: e["mean_accuracy"])
    last = eps[-1]
    row.update(best_epoch=best["epoch"], best_accuracy=best["mean_accuracy"],
               consensus_at_best=best.get("consensus_error", ""),
               final_accuracy=last["mean_accuracy"], final_min_accuracy=last.get("min_accuracy", ""),
               final_consensus=last.get("consensus_error", ""),
               final_byzantine_weight=last.get("byzantine_weight", ""),
               seconds_per_round=last.get("seconds_per_round", ""))
    failed = [n["id"] for n in s.get("nodes", []) if n.get("failed")]
    status = "ok" if rc == "0" else "rc %s" % rc
    if len(eps) < cfg.get("epochs", len(eps)):
        status += ", %d/%d epochs" % (len(eps), cfg["epochs"])
    if failed:
        status += ", failed nodes %s" % failed
    row["status"] = status
    return row


def fmt(x, spec):
    return format(x, spec) if isinstance(x, (int, float)) and x != "" else str(x or "-")


def main():
    root = sys.argv[1]
    cells = sorted(os.listdir(os.path.join(root, "cells"))) if os.path.isdir(os.path.join(root, "cells")) else []
    rows = [cell_row(root, c) for c in cells]
    with open(os.path.join(root, "table.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)

    out = []
    for tv in (False, True):
        sub = [r for r in rows if r["time_varying"] == tv]
        if not sub:
            continue
        rules = list(dict.fromkeys(r["rule"] for r in sub))
        attacks = list(dict.fromkeys(r["attack"] for r in sub))
        by = {(r["rule"], r["attack"]): r for r in sub}
        out.append("### %s topology: best mean honest accuracy / consensus error at that epoch"
                   % ("time-varying" if tv else "static"))
        out.append("")
        out.append("| rule | " + " | ".join(attacks) + " |")
        out.append("|---|" + "---|" * len(attacks))
        for rule in rules:
            cellstr = []
            for a in attacks:
                r = by.get((rule, a))
                if r is None:
                    cellstr.append("")
                elif r["best_accuracy"] == "":
                    cellstr.append(r["status"])
                else:
                    cellstr.append("%.4f / %.2g%s" % (r["best_accuracy"], r["consensus_at_best"],
                                                     "" if r["status"] == "ok" else " (%s)" % r["status"]))
            out.append("| %s | %s |" % (rule, " | ".join(cellstr)))
        out.append("")
    out.append("### Per cell")
    out.append("")
    out.append("| rule | attack | tv | epochs | best acc (epoch) | consensus at best | final acc | final min acc "
               "| final consensus | byz weight | s/round | wall s | status |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        out.append("| %s | %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["rule"], r["attack"], "yes" if r["time_varying"] else "no", r["epochs_run"] or "-",
            fmt(r["best_accuracy"], ".4f"), r["best_epoch"] or "-", fmt(r["consensus_at_best"], ".2e"),
            fmt(r["final_accuracy"], ".4f"), fmt(r["final_min_accuracy"], ".4f"),
            fmt(r["final_consensus"], ".2e"), fmt(r["final_byzantine_weight"], ".3f"),
            fmt(r["seconds_per_round"], ".3f"), r["wall_s"] or "-", r["status"]))
    out.append("")
    out.append("### Commands")
    out.append("")
    out.append("```")
    for r in rows:
        out.append(r["command"])
    out.append("```")
    text = "\n".join(out) + "\n"
    with open(os.path.join(root, "table.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
