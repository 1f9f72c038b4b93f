"""Accounts: the users/tokens commands, passwords, lockout, sessions, tokens, /login and /logout."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from gridwatch import auth
from tests.conftest import ANONYMOUS
from gridwatch.cli import main
from tests.conftest import ROOT
from tests.factories import make_department


def cli(capsys, monkeypatch, db_url: str, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``gridwatch ARGS`` in this process against ``db_url``; (exit code, stdout, stderr)."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    capsys.readouterr()
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_users_add_list_disable_enable_and_reset_password_from_the_command_line(tiny, db_url, conn, capsys, monkeypatch):
    rc, out, _ = cli(capsys, monkeypatch, db_url, "users", "add", "ganzhou_op", "--role", "operator", "--region", "620702")
    assert rc == 0 and "password: " in out
    generated = out.split("password: ", 1)[1].split()[0]
    assert len(generated) >= 16
    assert auth.login(conn, "ganzhou_op", generated)
    stored = conn.execute("SELECT password_hash FROM app_user WHERE username = 'ganzhou_op'").fetchone()["password_hash"]
    assert stored.startswith("$argon2id$") and generated not in stored

    rc, out, _ = cli(capsys, monkeypatch, db_url, "users", "add", "leader", "--role", "province_leader", "--password-stdin",
                     stdin="a-long-secret\n")
    assert rc == 0 and "password:" not in out
    assert auth.login(conn, "leader", "a-long-secret")

    rc, out, _ = cli(capsys, monkeypatch, db_url, "users", "list")
    assert rc == 0
    lines = {line.split("\t")[0]: line.split("\t") for line in out.strip().splitlines()}
    assert lines["ganzhou_op"][1:] == ["operator", "620702 甘州区", "active"]
    assert lines["leader"][1] == "province_leader"

    sid = auth.create_session(conn, conn.execute("SELECT id FROM app_user WHERE username = 'ganzhou_op'").fetchone()["id"])
    assert auth.resolve(conn, sid).username == "ganzhou_op"
    assert cli(capsys, monkeypatch, db_url, "users", "disable", "ganzhou_op")[0] == 0
    assert auth.resolve(conn, sid) is None
    with pytest.raises(auth.LoginRefused) as refused:
        auth.login(conn, "ganzhou_op", generated)
    assert refused.value.reason == "disabled"
    assert cli(capsys, monkeypatch, db_url, "users", "enable", "ganzhou_op")[0] == 0
    assert auth.login(conn, "ganzhou_op", generated)

    rc, out, _ = cli(capsys, monkeypatch, db_url, "users", "reset-password", "ganzhou_op", "--password-stdin", stdin="brand-new-pass\n")
    assert rc == 0
    assert auth.login(conn, "ganzhou_op", "brand-new-pass")
    with pytest.raises(auth.LoginRefused):
        auth.login(conn, "ganzhou_op", generated)


@pytest.mark.parametrize("args, says", [
    (("--role", "mayor"), "invalid choice"),
    (("--role", "operator"), "an operator needs --region"),
    (("--role", "operator", "--region", "620702100200"), "is a village"),
    (("--role", "operator", "--region", "629999"), "there is no region 629999"),
    (("--role", "grid_worker", "--region", "620702100"), "must be a grid"),
    (("--role", "department"), "needs --department"),
    (("--role", "department", "--department", "999999"), "there is no department 999999"),
    (("--role", "planner", "--password-stdin"), "at least 8 characters"),
])
def test_users_add_refuses_bad_input_with_a_clear_message_and_writes_nothing(tiny, db_url, conn, capsys, monkeypatch, args, says):
    if "invalid choice" in says:
        with pytest.raises(SystemExit):
            cli(capsys, monkeypatch, db_url, "users", "add", "someone", *args)
        assert says in capsys.readouterr().err
    else:
        rc, _, err = cli(capsys, monkeypatch, db_url, "users", "add", "someone", *args, stdin="short\n")
        assert rc == 2 and says in err, err
    assert conn.execute("SELECT count(*) AS n FROM app_user").fetchone()["n"] == 0


def test_a_prefecture_six_digit_code_and_a_department_are_accepted(tiny, db_url, conn, capsys, monkeypatch):
    dept = make_department(conn, "620702", "water", "甘州区水务局")
    assert cli(capsys, monkeypatch, db_url, "users", "add", "zhangye", "--role", "operator", "--region", "620700")[0] == 0
    assert cli(capsys, monkeypatch, db_url, "users", "add", "water", "--role", "department", "--department", str(dept))[0] == 0
    rows = {r["username"]: r for r in conn.execute("SELECT username, region_code, department_id FROM app_user").fetchall()}
    assert rows["zhangye"]["region_code"] == "6207"
    assert rows["water"]["department_id"] == dept


def test_an_account_locks_after_repeated_wrong_passwords_and_says_until_when(tiny, conn, monkeypatch):
    monkeypatch.setenv("GRIDWATCH_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("GRIDWATCH_LOGIN_LOCK_MINUTES", "10")
    auth.add_user(conn, "op", "operator", password="right-password", region_code="620702100")
    now = datetime.now(timezone.utc)
    for _ in range(2):
        with pytest.raises(auth.LoginRefused) as r:
            auth.login(conn, "op", "wrong-password", now=now)
        assert r.value.reason == "wrong username or password"
    with pytest.raises(auth.LoginRefused) as r:
        auth.login(conn, "op", "wrong-password", now=now)
    assert r.value.reason == "locked"
    assert timedelta(minutes=9) < r.value.locked_until - now <= timedelta(minutes=10, seconds=5)
    with pytest.raises(auth.LoginRefused) as r:   # even the right password, while locked
        auth.login(conn, "op", "right-password", now=now + timedelta(minutes=5))
    assert r.value.reason == "locked"
    assert auth.login(conn, "op", "right-password", now=now + timedelta(minutes=11))
    with pytest.raises(auth.LoginRefused) as r:
        auth.login(conn, "nobody", "whatever-pass")
    assert r.value.reason == "wrong username or password"


def test_a_token_is_printed_once_stored_hashed_resolves_and_stops_after_revoke_or_expiry(tiny, db_url, conn, capsys, monkeypatch):
    auth.add_user(conn, "wall", "wall")
    rc, out, _ = cli(capsys, monkeypatch, db_url, "tokens", "create", "wall", "--expires-days", "30")
    assert rc == 0
    token = out.strip().splitlines()[-1]
    token_id = int(out.split()[1])
    row = conn.execute("SELECT token_sha256, expires_at FROM api_token WHERE id = %s", (token_id,)).fetchone()
    assert bytes(row["token_sha256"]) == auth.sha256(token)
    assert timedelta(days=29) < row["expires_at"] - datetime.now(timezone.utc) <= timedelta(days=30)
    assert conn.execute("SELECT count(*) AS n FROM api_token WHERE token_sha256::text LIKE %s", (f"%{token}%",)).fetchone()["n"] == 0
    p = auth.resolve(conn, token)
    assert (p.username, p.role, p.via, p.region_scope) == ("wall", "wall", "token", "62")
    assert p.can("read_aggregates") and not p.can("read_personal_data")
    assert conn.execute("SELECT last_used_at FROM api_token WHERE id = %s", (token_id,)).fetchone()["last_used_at"] is not None

    rc, out, _ = cli(capsys, monkeypatch, db_url, "tokens", "revoke", str(token_id))
    assert rc == 0 and "revoked" in out
    assert auth.resolve(conn, token) is None
    rc, _, err = cli(capsys, monkeypatch, db_url, "tokens", "revoke", "424242")
    assert rc == 2 and "there is no token 424242" in err

    _, other = auth.create_token(conn, "wall", "kiosk", expires_days=1)
    assert auth.resolve(conn, other) is not None
    conn.execute("UPDATE api_token SET expires_at = now() - interval '1 second' WHERE name = 'kiosk'")
    assert auth.resolve(conn, other) is None


def test_db_url_role_app_prints_the_app_role_url_of_the_embedded_cluster(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GRIDWATCH_APP_DATABASE_URL")}
    env.update(GRIDWATCH_DATA_DIR=str(tmp_path / "gw"), GRIDWATCH_PG_PORT="54777")
    out = subprocess.run([sys.executable, "-m", "gridwatch.cli", "db", "url", "--role", "app"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "postgresql://gridwatch_app@127.0.0.1:54777/gridwatch"
    env["DATABASE_URL"] = "postgresql://someone@db.example:5432/gw"
    out = subprocess.run([sys.executable, "-m", "gridwatch.cli", "db", "url", "--role", "app"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=60)
    assert out.returncode == 2 and "GRIDWATCH_APP_DATABASE_URL" in out.stderr


def test_the_app_role_url_connects_as_gridwatch_app(db_url):
    with psycopg.connect(db_url.replace("postgresql://gridwatch@", "postgresql://gridwatch_app@", 1), row_factory=dict_row) as c:
        assert c.execute("SELECT current_user AS u").fetchone()["u"] == "gridwatch_app"


def test_login_sets_a_secure_http_only_cookie_and_logout_ends_the_session(tiny, db_url, conn, serve_in_process):
    auth.add_user(conn, "xindun", "operator", password="xindun-password", region_code="620702100")
    server = serve_in_process(db_url)
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30, headers=ANONYMOUS) as client:
        page = client.get("/login", params={"next": "/region/620702"})
        assert page.status_code == 200
        assert 'name="username"' in page.text and 'name="password"' in page.text and "登录" in page.text
        assert 'value="/region/620702"' in page.text

        assert client.get("/api/v1/me").status_code == 401

        wrong = client.post("/login", data={"username": "xindun", "password": "nope-nope", "next": "/region/620702"})
        assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
        assert not any(c.startswith("gridwatch_session=") for c in wrong.headers.get_list("set-cookie"))

        ok = client.post("/login", data={"username": "xindun", "password": "xindun-password", "next": "/region/620702"})
        assert ok.status_code == 303 and ok.headers["location"] == "/region/620702"
        cookie = next(c for c in ok.headers.get_list("set-cookie") if c.startswith("gridwatch_session="))
        flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert cookie.startswith("gridwatch_session=")
        assert {"httponly", "secure", "samesite", "path"} <= flags
        assert "samesite=lax" in cookie.lower() and "path=/" in cookie.lower()
        sid = cookie.split(";")[0].split("=", 1)[1]
        stored = conn.execute("SELECT count(*) AS n FROM user_session WHERE session_sha256 = %s", (auth.sha256(sid),)).fetchone()
        assert stored["n"] == 1

        me = client.get("/api/v1/me", headers={"Cookie": f"gridwatch_session={sid}"})
        assert me.status_code == 200
        assert me.json()["username"] == "xindun" and me.json()["region_scope"] == "620702100"

        out = client.post("/logout", headers={"Cookie": f"gridwatch_session={sid}", "Origin": server.url})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert client.get("/api/v1/me", headers={"Cookie": f"gridwatch_session={sid}"}).status_code == 401

        away = client.post("/login", data={"username": "xindun", "password": "xindun-password", "next": "//evil.example/x"})
        assert away.status_code == 303 and away.headers["location"] == "/"

        _, token = auth.create_token(conn, "xindun", "api")
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["via"] == "token"


def test_the_login_page_escapes_what_it_echoes_and_says_until_when_an_account_is_locked(tiny, db_url, conn, serve_in_process, monkeypatch):
    monkeypatch.setenv("GRIDWATCH_LOGIN_MAX_FAILURES", "2")
    auth.add_user(conn, "op", "operator", password="op-password", region_code="620702100")
    server = serve_in_process(db_url)
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as client:
        page = client.post("/login", data={"username": "<script>alert(1)</script>", "password": "x"})
        assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
        client.post("/login", data={"username": "op", "password": "wrong-1"})
        locked = client.post("/login", data={"username": "op", "password": "wrong-2"})
        assert locked.status_code == 403 and "账户已锁定" in locked.text and "locked until" in locked.text


def test_the_demo_creates_one_account_per_role_once_and_prints_the_same_passwords_again(tiny, db_url, conn, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("GRIDWATCH_DATA_DIR", str(tmp_path))
    make_department(conn, "620702", "water", "甘州区水务局")
    rc, first, _ = cli(capsys, monkeypatch, db_url, "users", "demo")
    assert rc == 0
    users = {r["username"]: r for r in conn.execute("SELECT username, role, region_code, department_id FROM app_user").fetchall()}
    assert {u["role"] for u in users.values()} == set(auth.ROLES)
    assert users["ganzhou"]["region_code"] == "620702"
    assert users["xindun"]["region_code"] == "620702100"          # 甘州区新墩镇 of the tiny hierarchy
    assert users["lanzhou_grid"]["region_code"].startswith("6201") and len(users["lanzhou_grid"]["region_code"]) == 15
    assert "caizi" not in users and "caizi" in first and "skipped" in first   # no 菜子镇 in the tiny hierarchy
    store = tmp_path / "demo-accounts.json"
    assert oct(store.stat().st_mode & 0o777) == "0o600"
    rc, second, _ = cli(capsys, monkeypatch, db_url, "users", "demo")
    assert rc == 0 and second == first
    assert conn.execute("SELECT count(*) AS n FROM app_user").fetchone()["n"] == len(users)
    password = first.split("ganzhou ", 1)[1].split("password ", 1)[1].split()[0]
    assert auth.login(conn, "ganzhou", password)
    kiosk = first.split("/wall?kiosk=", 1)[1].split()[0]
    assert auth.resolve(conn, kiosk).role == "wall"
