"""Run the early-warning rules, or list the live alerts.

  gridwatch alerts run                     every rule, as of now, in one transaction
  gridwatch alerts run --rule spike        only some rules (repeat --rule)
  gridwatch alerts run --every 60          keep running them once a minute (gridwatch up does this)
  gridwatch alerts list --region 6207      live alerts of 张掖市 and everything under it

Every run also escalates red alerts nobody acknowledged (silenced or inhibited ones excepted) for
--escalate-after minutes (GRIDWATCH_ESCALATE_MINUTES) one level up, written in their trail.

Rules: deadline (near/past), red (cases/hazards), spike (Poisson), hotspot (Getis-Ord Gi*),
repeat_place, repeat_party, silent_grid, hazard_overdue, department_returns. Re-running never
duplicates an alert; conditions that no longer hold are resolved.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime

import psycopg

from gridwatch import db
from gridwatch.alerts import RULE_NAMES, list_alerts, run_rules
from gridwatch.regions import region_code_arg
from gridwatch.triage import escalate


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("action", choices=["run", "list"], help="run the rules, or list live alerts")
    p.add_argument("--rule", action="append", choices=list(RULE_NAMES), help="only this rule (repeatable)")
    p.add_argument("--now", default=None, help="run as of this ISO time with zone, e.g. 2025-06-30T15:00+08:00")
    p.add_argument("--region", default=None, type=region_code_arg, help="list: region code, e.g. 6207 or 620700 (default: all)")
    p.add_argument("--lang", choices=["zh", "en"], default="zh", help="list: language of the explanations")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--escalate-after", type=float, default=None, metavar="MINUTES",
                   help="run: escalate red alerts nobody acknowledged for this long one level up "
                        "(default GRIDWATCH_ESCALATE_MINUTES)")
    p.add_argument("--every", type=float, default=None, metavar="SECONDS",
                   help="run: repeat every SECONDS until stopped (a database outage is waited out, not fatal)")


def run(args: argparse.Namespace) -> int:
    now = None
    if args.now:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            print(f"gridwatch alerts: --now {args.now!r} is not an ISO time; write e.g. 2025-06-30T15:00+08:00", file=sys.stderr)
            return 2
        if now.tzinfo is None:
            print(f"gridwatch alerts: --now {args.now!r} has no time zone; add one, e.g. +08:00", file=sys.stderr)
            return 2
    if args.action == "run" and args.every:
        return _run_every(args, now)
    with psycopg.connect(db.database_url()) as conn:
        if args.action == "run":
            summary = run_rules(conn, now=now, rules=args.rule)
            steps = escalate(conn, now=now, after_minutes=args.escalate_after)
            if args.json:
                print(json.dumps({**summary, "escalated": steps}, ensure_ascii=False))
            else:
                for rule, s in summary.items():
                    print(f"{rule:20s} found {s['found']:6d}  raised {s['raised']:6d}  updated {s['updated']:6d}  resolved {s['resolved']:6d}")
                for e in steps:
                    print(f"escalated #{e['id']} {e['from_name']} ({e['from_region']}) → {e['to_name']} ({e['escalated_to']}), level {e['escalation_level']}")
            return 0
        rows = list_alerts(conn, region=args.region, rule=(args.rule or [None])[0])
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, default=str))
        else:
            for a in rows:
                text = a["explanation_zh"] if args.lang == "zh" else a["explanation_en"]
                ack = f" [ack {a['acknowledged_by']}]" if a["acknowledged_by"] else ""
                print(f"#{a['id']} {a['severity']:6s} {a['rule']:18s} {a['region_code']:15s} {text}{ack}")
    return 0


def _run_every(args: argparse.Namespace, now) -> int:
    """Run the rules every ``args.every`` seconds; report each round in one line."""

    if args.every < 5:
        print("gridwatch alerts: --every must be at least 5 seconds", file=sys.stderr)
        return 2
    while True:
        started = time.monotonic()
        try:
            with psycopg.connect(db.database_url()) as conn:
                summary = run_rules(conn, now=now, rules=args.rule)
                steps = escalate(conn, now=now, after_minutes=args.escalate_after)
            raised = sum(s["raised"] for s in summary.values())
            resolved = sum(s["resolved"] for s in summary.values())
            print(f"alerts: {raised} raised, {resolved} resolved, {len(steps)} escalated in {time.monotonic() - started:.1f} s",
                  flush=True)
        except psycopg.OperationalError as exc:
            print(f"alerts: database unavailable ({str(exc).strip().splitlines()[0]}); retrying", flush=True)
        time.sleep(max(0.0, args.every - (time.monotonic() - started)))
