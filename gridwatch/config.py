"""Settings from the environment: one table, each with a default and a one-line help."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Setting", "SETTINGS", "get", "project_root", "data_dir"]


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "", "External PostGIS to use (postgresql://user@host:port/db). Unset: gridwatch runs its own embedded cluster."),
    Setting("GRIDWATCH_DATA_DIR", "<checkout>/.gridwatch", "Folder of the embedded PostgreSQL cluster, its log and socket (as root, when the checkout is in a private folder such as /root: /var/lib/gridwatch/<hash>)."),
    Setting("GRIDWATCH_PG_PORT", "54329", "TCP port (on 127.0.0.1) of the embedded PostgreSQL cluster."),
    Setting("GRIDWATCH_PG_BINDIR", "auto", "Folder holding initdb/pg_ctl; auto picks the newest /usr/lib/postgresql/*/bin or the PATH."),
    Setting("GRIDWATCH_HOST", "127.0.0.1", "Address the dashboard server listens on."),
    Setting("GRIDWATCH_PORT", "8050", "Port the dashboard server listens on."),
    Setting("GRIDWATCH_LANG", "zh", "Default UI language: zh (简体中文) or en."),
    Setting("GRIDWATCH_BASEMAP_URL", "", "Optional intranet raster tile URL ({z}/{x}/{y}) drawn under our own boundary layers. Empty: no basemap, nothing fetched from outside."),
    Setting("GRIDWATCH_WALL_TOUR_SECONDS", "20", "Seconds the wall display stays on each prefecture during the auto-tour."),
    Setting("GRIDWATCH_STALE_SECONDS", "60", "A panel whose data is older than this shows an amber freshness badge."),
    Setting("GRIDWATCH_LIVE_MAX", "1000", "Open live streams (pages and /api/v1/live) one server process serves; beyond it /api/v1/live answers 503."),
    Setting("GRIDWATCH_LIVE_COALESCE_MS", "1000", "A live stream sends at most one change per this many milliseconds: a burst of changes makes one refresh."),
    Setting("GRIDWATCH_WORKERS", "1", "Server worker processes behind the one port (gridwatch serve --workers)."),
    Setting("GRIDWATCH_REDIS_URL", "", "Redis for the tile and aggregate caches shared by all workers (redis://127.0.0.1:6379/0). Empty: a small cache in each process."),
    Setting("GRIDWATCH_READ_URL", "", "A read replica (hot standby): tiles, aggregates, walls and exports read from it. Empty: everything reads the primary."),
    Setting("GRIDWATCH_LISTEN_URL", "", "The primary, directly, for LISTEN (needed when DATABASE_URL goes through pgbouncer's transaction pooling). Empty: DATABASE_URL."),
    Setting("GRIDWATCH_REPLICA_PORT", "54330", "TCP port (on 127.0.0.1) of the embedded read replica (gridwatch db replica start)."),
    Setting("GRIDWATCH_FRESH_WRITE_SECONDS", "5", "After a user writes, their reads go to the primary for this many seconds (read-your-writes with a replica)."),
    Setting("GRIDWATCH_PGBOUNCER", "off", "on when DATABASE_URL is a pgbouncer in transaction mode: no server-side prepared statements."),
    Setting("GRIDWATCH_POOL_SIZE", "8", "Maximum database connections per server process."),
    Setting("GRIDWATCH_MAX_BODY_BYTES", "1048576", "Largest request body the API accepts (bytes)."),
    Setting("GRIDWATCH_ALLOWED_ORIGINS", "self", "Origins (scheme://host[:port], comma-separated) whose pages may send cookie-authenticated writes; self: the server's own host only."),
    Setting("GRIDWATCH_HEAVY_WORKERS", "2", "Heavy requests (coverage, what-if, exports) one server process runs at once."),
    Setting("GRIDWATCH_HEAVY_QUEUE", "4", "Heavy requests waiting for a slot; one more is refused with 503 and Retry-After."),
    Setting("GRIDWATCH_HEAVY_PER_MINUTE", "30", "Heavy requests one user may start per minute (token bucket, shared in Redis when set); over it: 429 with Retry-After."),
    Setting("GRIDWATCH_HEAVY_BURST", "10", "Heavy requests one user may start at once before the per-minute rate applies."),
    Setting("GRIDWATCH_APP_DATABASE_URL", "", "URL the server should use to connect as the app role gridwatch_app (row-level security applies). Unset: the embedded cluster's gridwatch_app URL; with DATABASE_URL set, give it explicitly (the role's password comes from your DBA)."),
    Setting("GRIDWATCH_LOGIN_MAX_FAILURES", "5", "Wrong passwords in a row before an account is locked."),
    Setting("GRIDWATCH_LOGIN_LOCK_MINUTES", "15", "How long a locked account stays locked (minutes)."),
    Setting("GRIDWATCH_SESSION_HOURS", "12", "How long a login session lasts (hours)."),
    Setting("GRIDWATCH_SEED", "20240601", "Seed of the generated township/village/grid partitions and the demo history."),
    Setting("GRIDWATCH_SIM_RATE", "auto", "Mean new cases per second the live simulator sends (gridwatch simulate); auto: the demo history's mean daily volume of the last 30 days ÷ 86,400 (about 220 a day in Gansu)."),
    Setting("GRIDWATCH_ESCALATE_MINUTES", "30", "A red alert nobody acknowledged for this long goes one level up (超时未处置自动上报), and again after as long."),
    Setting("GRIDWATCH_WALL_TAKEOVER_MINUTES", "10", "The wall's red takeover shows red items reported in the last N minutes."),
    Setting("GRIDWATCH_WALL_TAKEOVER_MAX", "3", "At most M red items on the wall's takeover at a time; the rest wait in the ticker."),
    Setting("GRIDWATCH_WALL_TAKEOVER_SECONDS", "10", "The takeover collapses into the ticker after T seconds."),
    Setting("GRIDWATCH_WALL_TAKEOVER_QUIET", "90", "After a takeover collapses, new red items go to the ticker for this many seconds before the next takeover."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def get(name: str) -> str:
    """Value of setting ``name``: the environment's, else its default.

    >>> get("GRIDWATCH_PORT") in (os.environ.get("GRIDWATCH_PORT") or "8050",)
    True
    """
    setting = _BY_NAME[name]
    value = os.environ.get(name)
    if value is None or value == "":
        return setting.default
    return value


def project_root() -> Path:
    """The checkout this package runs from (editable install) or the working directory."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def data_dir() -> Path:
    """Folder of the embedded cluster (``GRIDWATCH_DATA_DIR``).

    By default ``.gridwatch/`` in the checkout. As root, PostgreSQL runs as the ``postgres`` user,
    which cannot enter a checkout under a private folder such as /root: then the cluster lives in
    ``/var/lib/gridwatch/<hash of the checkout path>`` instead.
    """
    value = os.environ.get("GRIDWATCH_DATA_DIR")
    if value:
        return Path(value).resolve()
    root = project_root()
    if os.geteuid() == 0 and not _world_traversable(root):
        digest = hashlib.sha1(str(root).encode()).hexdigest()[:12]
        return Path("/var/lib/gridwatch") / digest
    return root / ".gridwatch"


def _world_traversable(path: Path) -> bool:
    """True when every folder from / down to ``path`` lets other users pass (o+x)."""
    for folder in [path, *path.parents]:
        try:
            if not folder.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True
