"""Live simulator: realistic traffic through the public API — new cases, lifecycles progressing, daily check-ins.

  gridwatch simulate --api http://127.0.0.1:8050 [--rate R] [--duration S] [--wait] [--speed X] [--seed N]

A simulated clock runs ``--speed`` times faster than real time (default 1: real time, so the
figures "today" stay those of a real day), and arrivals follow its daily and weekly rhythm around
``--rate`` cases per real second (GRIDWATCH_SIM_RATE; default ``auto``: the history's mean daily
volume of the last 30 days, about 220 a day in the Gansu demo, not a case a second). Cases land in grids weighted by township kind (街道 > 镇 > 乡) with the
demo's category mix; some come from AMap clients in GCJ-02, some through Open311, some are
retried with the same client_request_id, some are reported twice at the same place. Each case's
next action comes due after a few simulated hours and follows the lifecycle (accept, dispatch,
sometimes return or escalate or extend, start, feedback, verify or rework, visit); a share is
neglected, so some go overdue. A panel of grid workers checks in every simulated day; a few stop,
so their grids go silent. Nothing is written except through HTTP, by ``--clients`` clients at once
(a slow answer delays one of them, not the arrivals).
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import os
import random
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from geo.coords import wgs84_to_gcj02
from gridwatch import config, models
from gridwatch.casemix import MIX_RURAL, MIX_URBAN, TITLES

__all__ = ["Simulator", "add_arguments", "run", "rhythm", "wait_for"]

HOUR_W = (0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 2.5, 3.5, 3.6, 3.0, 1.8, 1.8, 3.0, 3.4, 3.2, 2.6, 1.6, 1.2, 1.0, 0.8, 0.6, 0.4)
DAY_W = (1.0, 1.0, 1.0, 1.0, 1.0, 0.7, 0.6)       # Monday … Sunday
MEAN_W = (sum(HOUR_W) / 24) * (sum(DAY_W) / 7)
TOWNSHIP_WEIGHT = {"街道": 3.0, "镇": 1.2, "乡": 0.8}


def _checked(model: type, payload: dict) -> dict:
    """``payload`` as the API's own model reads it (gridwatch.models): a simulator bug fails here, by field."""
    return models.validate(model, payload).model_dump(mode="json", exclude_none=True)


def rhythm(sim_seconds: float) -> float:
    """Relative activity at a simulated time (seconds since a Monday 00:00 China time); mean 1.0."""
    hour = int(sim_seconds // 3600) % 24
    day = int(sim_seconds // 86400) % 7
    return HOUR_W[hour] * DAY_W[day] / MEAN_W


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", default=f"http://127.0.0.1:{config.get('GRIDWATCH_PORT')}", help="server base URL (default %(default)s)")
    p.add_argument("--rate", type=_rate, default=_rate(config.get("GRIDWATCH_SIM_RATE")),
                   help="mean new cases per real second, or auto: the history's mean daily volume of the last "
                        "30 days ÷ 86,400 (default GRIDWATCH_SIM_RATE = %(default)s)")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default 0: until interrupted)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per real second (default %(default)s: real time, so today's figures stay true)")
    p.add_argument("--workers", type=int, default=200, help="grid workers who check in every simulated day (default %(default)s)")
    p.add_argument("--clients", type=int, default=CLIENTS,
                   help="requests in flight at once, like that many independent clients (default %(default)s)")
    p.add_argument("--wait", action="store_true", help="wait for the server's /healthz first")
    p.add_argument("--wait-timeout", type=float, default=600, help="how long --wait waits (seconds, default %(default)s)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: a fresh one)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--token-env", default="GRIDWATCH_SIM_TOKEN", metavar="NAME",
                   help="environment variable holding the bearer token the simulator acts with (an operator's; "
                        "`gridwatch up` sets it to the demo account 'simulator'; default %(default)s)")
    p.add_argument("--open311-key-env", default="GRIDWATCH_SIM_OPEN311_KEY", metavar="NAME",
                   help="environment variable holding the Open311 api_key (an open311_client's token; default "
                        "%(default)s, falling back to the bearer token)")


# Without history to measure (auto, but no cases in the last 30 days): the Gansu demo's daily volume.
DEFAULT_CASES_PER_DAY = 220.0


def _rate(value: str | float) -> float | str:
    """``auto`` or a non-negative number of cases per second (argparse type)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"rate {value!r} is neither auto nor a number of cases per second") from None
    if not (rate >= 0 and math.isfinite(rate)):
        raise argparse.ArgumentTypeError(f"rate {value!r} must be a non-negative number of cases per second")
    return rate


def history_rate(api: str, token: str | None = None) -> float:
    """Cases per second matching the history: the province's mean new cases a day over the last
    30 local days (``GET /api/v1/kpi/<province>``, read with the simulator's token: the database
    shows anonymous readers no cases) ÷ 86,400; 220 a day without history."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(api + "/api/v1/regions", headers=headers), timeout=30) as r:
            top = json.loads(r.read())
        code = (top[0] if isinstance(top, list) else (top.get("regions") or top.get("children") or [top])[0])["code"]
        with urllib.request.urlopen(urllib.request.Request(f"{api}/api/v1/kpi/{code}", headers=headers), timeout=60) as r:
            spark = json.loads(r.read())["kpi"]["sparkline"]
        days = [d["new"] for d in spark[:-1]]     # whole days only: today is not over
        per_day = sum(days) / len(days) if days and sum(days) else DEFAULT_CASES_PER_DAY
    except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError):
        per_day = DEFAULT_CASES_PER_DAY
    return per_day / 86400.0


def run(args: argparse.Namespace) -> int:
    api = args.api.rstrip("/")
    if args.wait and not wait_for(api, args.wait_timeout):
        print(f"gridwatch simulate: {api}/healthz did not answer 200 within {args.wait_timeout:g} s; "
              "start the server with `gridwatch serve` (or `gridwatch up`)", file=sys.stderr)
        return 2
    token = os.environ.get(args.token_env) or None
    if not token:
        print(f"gridwatch simulate: set {args.token_env} to an operator's token (gridwatch tokens create NAME): "
              "the server refuses anonymous writes", file=sys.stderr)
        return 2
    rate = history_rate(api, token) if args.rate == "auto" else args.rate
    if not args.quiet:
        print(f"simulate: {rate * 86400:.0f} new cases a day ({rate:.5f}/s), clock × {args.speed:g}", flush=True)
    sim = Simulator(api, rate=rate, speed=args.speed, workers=args.workers, seed=args.seed, quiet=args.quiet, clients=args.clients,
                    token=token, open311_key=os.environ.get(args.open311_key_env) or token)
    try:
        sim.setup()
        sim.run(args.duration or math.inf)
    except KeyboardInterrupt:
        pass
    print("gridwatch simulate: " + json.dumps(sim.stats, ensure_ascii=False), flush=True)
    return 0 if sim.stats["acknowledged"] or not sim.stats["posted"] else 1


def wait_for(api: str, timeout: float) -> bool:
    """Poll ``api``/healthz until it answers 200 or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(api + "/healthz", timeout=3) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.5)
    return False


# The longest real interval whose arrivals one pass of the loop draws (after a stall, a suspended laptop …).
MAX_CATCH_UP = 5.0
# Independent clients (half for new reports, half for the steps of reported cases and the check-ins):
# each is one job for the first free client of its kind, so a slow answer holds up one client, not
# the arrivals (a case's steps still follow one another).
CLIENTS = 8


@dataclass(order=True)
class Due:
    at: float
    case_id: int = field(compare=False)


class Simulator:
    """Sends the traffic; ``stats`` counts what happened."""

    def __init__(self, api: str, *, rate: float = 1.0, speed: float = 720.0, workers: int = 200,
                 seed: int | None = None, quiet: bool = False, token: str | None = None, open311_key: str | None = None,
                 clients: int = CLIENTS):
        self.api, self.rate, self.speed, self.n_workers, self.quiet = api, rate, speed, workers, quiet
        self.token, self.open311_key = token, open311_key or token
        self.rng = random.Random(seed)
        self.stats = {"posted": 0, "acknowledged": 0, "retries": 0, "duplicates_flagged": 0, "open311": 0, "gcj02": 0,
                      "actions": 0, "refused_actions": 0, "checkins": 0, "errors": 0}
        self.state: dict[int, dict] = {}
        self.queue: list[Due] = []
        self.depts: dict[tuple[str, str], int | None] = {}
        self.clients = max(1, int(clients))
        self._lock = threading.Lock()           # stats and the queue, shared by the clients
        self._failed: list[BaseException] = []

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    # -- HTTP ---------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body=None, *, form: bool = False, headers: dict | None = None, tries: int = 5):
        data = None
        hdrs = dict(headers or {})
        if self.token and not (form and body and "api_key" in body):
            hdrs.setdefault("Authorization", f"Bearer {self.token}")
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                hdrs["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body, ensure_ascii=False).encode()
                hdrs["Content-Type"] = "application/json"
        for attempt in range(tries):
            req = urllib.request.Request(self.api + path, data=data, method=method, headers=hdrs)
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    return r.status, json.loads(r.read() or b"null")
            except urllib.error.HTTPError as e:
                if e.code >= 500 and attempt < tries - 1:
                    time.sleep(0.2 * (attempt + 1))
                    continue
                try:
                    return e.code, json.loads(e.read() or b"null")
                except ValueError:
                    return e.code, None
            except (urllib.error.URLError, OSError):
                if attempt == tries - 1:
                    raise
                self._count("retries")
                time.sleep(0.2 * (attempt + 1))
        raise RuntimeError("unreachable")

    # -- setup --------------------------------------------------------------------------------
    def setup(self) -> None:
        _, cats = self._call("GET", "/api/v1/categories")
        _, grids = self._call("GET", "/api/v1/checkins/grids")
        if not grids:
            raise SystemExit("gridwatch simulate: the server has no grids; load the hierarchy first (gridwatch etl gansu)")
        self.categories = {c["code"]: c for c in cats}
        self.grids = grids
        weights = [TOWNSHIP_WEIGHT.get(g.get("township_kind"), 1.0) for g in grids]
        total = sum(weights)
        self.cum = []
        acc = 0.0
        for w in weights:
            acc += w / total
            self.cum.append(acc)
        self.titles = TITLES
        self.mix = {k: ([c for c in m if c in self.categories], [m[c] for c in m if c in self.categories])
                    for k, m in (("urban", MIX_URBAN), ("rural", MIX_RURAL))}
        panel = self.rng.sample(grids, min(self.n_workers, len(grids)))
        # about one worker in twenty stops checking in at some point: their grid goes silent
        self.workers = [{"grid": g["code"], "name": f"网格员{g['code'][-5:]}",
                         "quits_day": self.rng.randint(1, 5) if self.rng.random() < 0.05 else None} for g in panel]
        self.recent: list[dict] = []

    # -- the loop -----------------------------------------------------------------------------
    def run(self, duration: float) -> None:
        start = time.monotonic()
        # in real time the rhythm follows the clock (China time since Monday 00:00); faster, simulated
        # time starts at a random hour of a Monday … Sunday, so a short run still has a rhythm
        if self.speed == 1.0:
            local = time.time() + 8 * 3600
            sim0 = (local - 4 * 86400) % (7 * 86400)        # 1970-01-01 was a Thursday
        else:
            sim0 = self.rng.uniform(0, 7 * 86400)
        tick = 0.2
        day_done = -1
        last_report = last = start
        # new reports and the steps of cases already reported have clients of their own, so a flood of
        # arrivals the server cannot keep up with never stalls the lifecycles (nor the check-ins)
        pool = ThreadPoolExecutor(max(1, self.clients // 2), thread_name_prefix="simulate-new")
        steps = ThreadPoolExecutor(max(1, self.clients - self.clients // 2), thread_name_prefix="simulate-steps")
        jobs: set[Future] = set()          # new reports in flight or waiting for a client
        owed = 0                            # arrivals drawn but not handed to a client yet
        try:
            while time.monotonic() - start < duration and not self._failed:
                t0 = time.monotonic()
                sim = sim0 + (t0 - start) * self.speed
                # arrivals over the real time since the last draw, not one tick's worth: a pass that waited
                # on a slow server must not thin the offered rate (at most MAX_CATCH_UP s after a stall)
                arrivals = self._poisson(self.rate * rhythm(sim) * min(t0 - last, MAX_CATCH_UP))
                last = t0
                # a server that cannot keep up: arrivals wait here (a bounded backlog) rather than in
                # a queue without end, and never hold up the steps below
                owed = min(owed + arrivals, max(arrivals, int(self.rate * MAX_CATCH_UP) + 1))
                while owed and len(jobs) < 4 * self.clients:
                    self._submit(pool, jobs, self._new_case, sim)
                    owed -= 1
                while (case_id := self._due(t0)) is not None:
                    steps.submit(self._job, self._progress, case_id)
                sim_day = int(sim // 86400)
                if sim_day != day_done:
                    steps.submit(self._job, self._checkins, sim_day - int(sim0 // 86400))
                    day_done = sim_day
                if not self.quiet and t0 - last_report > 10:
                    last_report = t0
                    print(f"simulate: {json.dumps(self.stats, ensure_ascii=False)}", flush=True)
                time.sleep(max(0.0, tick - (time.monotonic() - t0)))
        finally:
            for executor in (pool, steps):                   # work begun ends; work not begun is dropped
                executor.shutdown(wait=True, cancel_futures=True)
        if self._failed:
            raise self._failed[0]

    def _submit(self, pool: ThreadPoolExecutor, jobs: set, fn, *args) -> None:
        job = pool.submit(self._job, fn, *args)
        jobs.add(job)
        job.add_done_callback(jobs.discard)

    def _job(self, fn, *args) -> None:
        try:
            fn(*args)
        except (urllib.error.URLError, OSError):        # the server stayed away through the retries
            self._count("errors")
        except BaseException as exc:                     # a simulator bug: stop the run with it
            self._failed.append(exc)

    def _due(self, now: float) -> int | None:
        with self._lock:
            if self.queue and self.queue[0].at <= now:
                return heapq.heappop(self.queue).case_id
        return None

    def _poisson(self, lam: float) -> int:
        limit, k, p = math.exp(-lam), 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k

    def _grid(self) -> dict:
        r = self.rng.random()
        lo, hi = 0, len(self.cum) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.cum[mid] < r:
                lo = mid + 1
            else:
                hi = mid
        return self.grids[lo]

    def _new_case(self, sim: float) -> None:
        rng = self.rng
        if self.recent and rng.random() < 0.03:        # the same thing reported again by someone else
            base = rng.choice(self.recent)
            lon, lat, category = base["lon"] + rng.uniform(-1e-4, 1e-4), base["lat"] + rng.uniform(-1e-4, 1e-4), base["category"]
        else:
            g = self._grid()
            spread = max(0.05, g.get("size_km") or 0.5) * 0.15 / 111.0
            lon, lat = g["lon"] + rng.uniform(-spread, spread), g["lat"] + rng.uniform(-spread, spread)
            codes, weights = self.mix["urban" if g.get("township_kind") == "街道" else "rural"]
            category = rng.choices(codes, weights)[0]
        roll = rng.random()
        grade = "red" if roll < 0.03 else ("orange" if roll < 0.15 else None)
        crid = f"sim-{uuid.UUID(int=rng.getrandbits(128))}"
        title = rng.choice(self.titles.get(category, [self.categories[category]["name_zh"]]))
        self._count("posted")
        if rng.random() < 0.1:                           # an Open311 client
            status, body = self._call("POST", "/open311/v2/requests.json", {
                "service_code": category, "lat": f"{lat:.6f}", "long": f"{lon:.6f}", "description": title,
                **({"api_key": self.open311_key} if self.open311_key else {})},
                form=True, headers={"Idempotency-Key": crid})
            if status == 200 and body:
                self._count("open311")
                self._track(int(body[0]["service_request_id"]), category, lon, lat, sim)
            else:
                self._count("errors")
            return
        payload = {"category": category, "lon": round(lon, 6), "lat": round(lat, 6), "title": title,
                   "channel": rng.choice(["simulator", "grid_worker", "grid_worker", "hotline", "window"]),
                   "client_request_id": crid}
        if grade:
            payload["grade"] = grade
        if rng.random() < 0.1:                           # an AMap/Tencent client: GCJ-02 coordinates
            glon, glat = wgs84_to_gcj02(lon, lat)
            payload.update(lon=round(glon, 7), lat=round(glat, 7), coord_system="gcj02")
            self._count("gcj02")
        payload = _checked(models.CaseIn, payload)
        status, body = self._call("POST", "/api/v1/cases", payload)
        if rng.random() < 0.05 and status in (200, 201):  # a client that did not see the answer retries
            self._count("retries")
            status, body = self._call("POST", "/api/v1/cases", payload)
        if status in (200, 201):
            if body.get("possible_duplicate_of"):
                self._count("duplicates_flagged")
            self._track(body["id"], category, lon, lat, sim, body)
        else:
            self._count("errors")

    def _track(self, case_id: int, category: str, lon: float, lat: float, sim: float, body: dict | None = None) -> None:
        self._count("acknowledged")
        if case_id in self.state:
            return
        self.recent = (self.recent + [{"lon": lon, "lat": lat, "category": category}])[-50:]
        if self.rng.random() < 0.12:                     # neglected: nobody acts, it will go overdue
            return
        self.state[case_id] = {"state": "reported", "category": category, "body": body, "visited": False}
        self._schedule(case_id)

    def _schedule(self, case_id: int, mean_sim_hours: float = 6.0) -> None:
        real = self.rng.expovariate(1 / mean_sim_hours) * 3600 / self.speed
        with self._lock:
            heapq.heappush(self.queue, Due(time.monotonic() + real, case_id))

    def _department(self, case: dict, kind: str) -> int | None:
        for region in (case.get("township_code"), case.get("county_code"), case.get("prefecture_code")):
            if not region:
                continue
            key = (region, kind)
            if key not in self.depts:
                _, rows = self._call("GET", "/api/v1/departments?" + urllib.parse.urlencode({"region": region, "kind": kind, "limit": 1}))
                self.depts[key] = rows[0]["id"] if rows else None
            if self.depts[key]:
                return self.depts[key]
        for region in (case.get("township_code"), case.get("county_code")):
            if region:
                _, rows = self._call("GET", "/api/v1/departments?" + urllib.parse.urlencode({"region": region, "limit": 1}))
                if rows:
                    return rows[0]["id"]
        return None

    def _progress(self, case_id: int) -> None:
        info = self.state.get(case_id)
        if info is None:
            return
        rng = self.rng
        state = info["state"]
        cat = self.categories[info["category"]]
        body: dict = {"actor": "模拟综治中心"}
        if state == "reported":
            r = rng.random()
            body["action"] = "reject" if r < 0.04 else ("escalate" if r < 0.09 else "accept")
            body["note"] = "不属于受理范围" if body["action"] == "reject" else ("超出本级处置能力" if body["action"] == "escalate" else None)
        elif state in ("accepted", "returned"):
            if state == "accepted" and rng.random() < 0.04:
                body.update(action="escalate", note="提请上级协调")
            else:
                if "case" not in info:
                    _, info["case"] = self._call("GET", f"/api/v1/cases/{case_id}")
                dept = self._department(info["case"], cat["department_kind"])
                if dept is None:
                    body.update(action="park", note="无对应承办部门，暂时挂账")
                else:
                    body.update(action="dispatch", department_id=dept)
        elif state == "dispatched":
            r = rng.random()
            if r < 0.08 and not info.get("returned"):
                info["returned"] = True
                body.update(action="return", actor="承办部门", note="不属本单位职责")
            elif r < 0.12 and not info.get("extended"):
                body.update(action="request_extension", actor="承办部门", hours=48, note="需多部门协调")
                info["extended"] = "pending"
            elif info.get("extended") == "pending":
                body.update(action="approve_extension")
                info["extended"] = True
            else:
                body.update(action="start", actor="承办部门")
        elif state == "in_progress":
            if info.get("extended") == "pending":
                body.update(action="approve_extension")
                info["extended"] = True
            elif cat["family"] == "dispute" and not info.get("mediated") and rng.random() < 0.25:
                body.update(action="mediate", kind=rng.choice(["people", "people", "administrative", "judicial"]),
                            mediator="人民调解委员会")
                info["mediated"] = "ongoing"
            elif info.get("mediated") == "ongoing":
                ok = rng.random() < 0.8
                body.update(action="mediation_result", outcome="agreed" if ok else "failed",
                            agreement="双方达成协议" if ok else None)
                info["mediated"] = True
            elif rng.random() < 0.01:
                body.update(action="park", note="历史遗留问题，暂时挂账")
            else:
                body.update(action="feedback", actor="承办部门", note="已办理", resolved=rng.random() < 0.92)
        elif state == "feedback":
            if rng.random() < 0.12 and not info.get("reworked"):
                info["reworked"] = True
                body.update(action="rework", actor="网格员", note="核查未通过")
            else:
                body.update(action="verify", actor="网格员")
        elif state == "closed":
            if info["visited"] or rng.random() < 0.5:
                self.state.pop(case_id, None)
                return
            body.update(action="visit", actor="回访员", satisfaction=rng.choice([5, 5, 5, 4, 4, 3, 2]))
            info["visited"] = True
        else:                                            # rejected or parked: done here
            self.state.pop(case_id, None)
            return
        body = {k: v for k, v in body.items() if v is not None}
        status, out = self._call("POST", f"/api/v1/cases/{case_id}/actions", _checked(models.ActionIn, body))
        if status == 200:
            self._count("actions")
            info["state"] = out["case"]["state"]
            info["case"] = out["case"]
        else:
            self._count("refused_actions")
            _, case = self._call("GET", f"/api/v1/cases/{case_id}")
            if case and "state" in case:
                info["state"], info["case"] = case["state"], case
        if info["state"] in ("rejected",):
            self.state.pop(case_id, None)
            return
        self._schedule(case_id)

    def _checkins(self, day_number: int) -> None:
        for w in self.workers:
            if w["quits_day"] is not None and day_number >= w["quits_day"]:
                continue
            kind = "report" if self.rng.random() < 0.12 else "all_clear"
            status, _ = self._call("POST", "/api/v1/checkins",
                                   _checked(models.CheckinIn, {"grid_code": w["grid"], "worker": w["name"], "kind": kind}))
            if status in (200, 201):
                self._count("checkins")
            else:
                self._count("errors")
