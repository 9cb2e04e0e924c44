"""Several replicas (issue 16): Dockerfile, .dockerignore, deploy/docker-compose.yml and
deploy/nginx.conf agree with each other and with the app, without network or a Docker daemon.

- The files are read with small parsers (PyYAML is not a dependency): compose services, the
  nginx upstream, the Dockerfile's instructions. Where PyYAML or `docker compose` happens to be
  installed, the compose file is also parsed by them.
- The Dockerfile's HEALTHCHECK one-liner is run against a local stub answering "ok" / 503.
- Where an `nginx` binary exists, the config is checked with `nginx -t` and then run for real in
  front of three stub replicas on loopback ports: stickiness by cookie, spread over replicas,
  websocket upgrade tunnelled to the same replica, the upload size limit. Without nginx those
  tests skip and say so.
What these tests do not do: build the image or start containers (docs/DEPLOY.md says what
was run by hand).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
STREAMLIT_CONFIG = ROOT / ".streamlit" / "config.toml"


# --- small parsers ----------------------------------------------------------------------------
def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comment lines dropped."""
    out, cur = [], ""
    for line in text.splitlines():
        if line.strip().startswith("#") or (not line.strip() and not cur):
            continue
        if line.rstrip().endswith("\\"):
            cur += line.rstrip()[:-1] + " "
            continue
        cur += line
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    assert not cur, "the Dockerfile ends inside a continued line"
    return out


def instr(name: str) -> list[str]:
    return [a for w, a in dockerfile_instructions(DOCKERFILE.read_text()) if w == name]


def exposed_port() -> int:
    ports = instr("EXPOSE")
    assert len(ports) == 1, f"expected one EXPOSE, got {ports}"
    return int(ports[0].split("/")[0])


def top_level_blocks(text: str) -> dict[str, list[str]]:
    """The compose file's top-level keys -> their lines (a line parser, not YAML)."""
    blocks: dict[str, list[str]] = {}
    key = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"^([A-Za-z0-9_.-]+):(.*)$", line)
        if m:
            key = m.group(1)
            blocks[key] = [line]
        elif key is not None:
            blocks[key].append(line)
    return blocks


def compose_services(text: str) -> dict[str, str]:
    """Service name -> its text (its own lines, or the anchor it aliases, e.g. `app1: *app`)."""
    blocks = top_level_blocks(text)
    anchors = {}
    for lines in blocks.values():
        m = re.match(r"^[A-Za-z0-9_.-]+:\s*&([A-Za-z0-9_-]+)\s*$", lines[0])
        if m:
            anchors[m.group(1)] = "\n".join(lines[1:])
    services: dict[str, list[str]] = {}
    name = None
    for line in blocks["services"][1:]:
        m = re.match(r"^  ([A-Za-z0-9_.-]+):(.*)$", line)
        if m:
            name = m.group(1)
            services[name] = [m.group(2).strip()]
        elif name is not None:
            services[name].append(line)
    out = {}
    for n, lines in services.items():
        head, body = lines[0], "\n".join(lines[1:])
        alias = re.fullmatch(r"\*([A-Za-z0-9_-]+)", head)
        merge = re.search(r"<<:\s*\*([A-Za-z0-9_-]+)", body)
        ref = alias or merge
        if ref:
            assert ref.group(1) in anchors, f"service {n} refers to unknown anchor {ref.group(0)}"
            body = anchors[ref.group(1)] + "\n" + body
        out[n] = body
    return out


def strip_nginx_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def nginx_block(text: str, head: str) -> str:
    """The body of the first block whose opening matches regex `head` (braces balanced)."""
    m = re.search(head + r"\s*\{", text)
    assert m, f"no block {head!r} in nginx.conf"
    depth, i = 1, m.end()
    while depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[m.end():i - 1]


def nginx_text() -> str:
    return strip_nginx_comments(NGINX_CONF.read_text())


def upstream_servers() -> list[tuple[str, int]]:
    body = nginx_block(nginx_text(), r"upstream\s+streamlit")
    out = []
    for host, port in re.findall(r"^\s*server\s+([A-Za-z0-9_.-]+):(\d+)", body, re.M):
        out.append((host, int(port)))
    return out


def size_bytes(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert m, f"unreadable nginx size {value!r}"
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]


def seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)?", value)
    assert m, f"unreadable nginx time {value!r}"
    return int(m.group(1)) * {"ms": 1e-3, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def dockerignore_patterns() -> list[tuple[bool, re.Pattern]]:
    """(negated, regex) per .dockerignore line, Docker's rules: anchored at the context root,
    `*` within one path part, `**` across parts; a path is out when it or a parent matches."""
    pats = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        p = line[1:] if neg else line
        p = p.strip("/")
        rx, i = "", 0
        while i < len(p):
            if p.startswith("**/", i):
                rx, i = rx + "(?:.*/)?", i + 3
            elif p.startswith("**", i):
                rx, i = rx + ".*", i + 2
            elif p[i] == "*":
                rx, i = rx + "[^/]*", i + 1
            elif p[i] == "?":
                rx, i = rx + "[^/]", i + 1
            else:
                rx, i = rx + re.escape(p[i]), i + 1
        pats.append((neg, re.compile(rx)))
    return pats


def docker_ignored(path: str, pats=None) -> bool:
    pats = dockerignore_patterns() if pats is None else pats
    parts = path.split("/")
    out = False
    for neg, rx in pats:
        if any(rx.fullmatch("/".join(parts[:k])) for k in range(1, len(parts) + 1)):
            out = not neg
    return out


def streamlit_max_upload_mb() -> int:
    cfg = tomllib.loads(STREAMLIT_CONFIG.read_text())
    return int(cfg.get("server", {}).get("maxUploadSize", 200))  # Streamlit's default: 200


# --- the Dockerfile ---------------------------------------------------------------------------
def test_dockerfile_runs_as_a_non_root_user():
    ins = dockerfile_instructions(DOCKERFILE.read_text())
    users = [(i, a) for i, (w, a) in enumerate(ins) if w == "USER"]
    assert users, "no USER: the container would run as root"
    last_i, user = users[-1]
    assert user.split(":")[0] not in ("root", "0"), f"the last USER is {user}"
    cmd_i = max(i for i, (w, _) in enumerate(ins) if w == "CMD")
    assert last_i < cmd_i
    name = user.split(":")[0]
    assert any(w == "RUN" and re.search(rf"useradd\b.*\b{re.escape(name)}\b", a)
               for w, a in ins[:last_i]), f"user {name} is never created"


def test_dockerfile_exposes_the_port_streamlit_serves_on():
    cmd = json.loads(instr("CMD")[-1])
    assert cmd[:3] == ["streamlit", "run", "app.py"]
    opts = dict(zip(cmd[3::2], cmd[4::2]))
    assert opts["--server.headless"] == "true"
    assert opts["--server.address"] == "0.0.0.0"
    assert int(opts["--server.port"]) == exposed_port() == 8501


def test_dockerfile_healthcheck_hits_stcore_health_on_the_exposed_port():
    (hc,) = instr("HEALTHCHECK")
    urls = re.findall(r"https?://[^'\"\s]+", hc)
    assert urls, hc
    for url in urls:
        m = re.fullmatch(r"http://(localhost|127\.0\.0\.1):(\d+)/_stcore/health", url)
        assert m, f"the health check calls {url}"
        assert int(m.group(2)) == exposed_port()
    assert "curl" not in hc and "wget" not in hc  # the slim image has neither


class _Stub(http.server.BaseHTTPRequestHandler):
    answer = (200, b"ok")

    def do_GET(self):
        code, body = self.answer
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("answer, healthy", [((200, b"ok"), True),
                                             ((503, b"unavailable"), False),
                                             ((200, b"not ok"), False)])
def test_dockerfile_healthcheck_command_works(answer, healthy):
    """The exec-form CMD of the HEALTHCHECK, run here against a stub in place of Streamlit."""
    (hc,) = instr("HEALTHCHECK")
    argv = json.loads(hc[hc.index("CMD") + 3:].strip())
    assert argv[:2] == ["python", "-c"]
    handler = type("H", (_Stub,), {"answer": answer})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        code = re.sub(r"http://localhost:\d+", f"http://127.0.0.1:{srv.server_port}", argv[2])
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
        assert (r.returncode == 0) == healthy, r.stderr.decode()[-500:]
    finally:
        srv.shutdown()
        srv.server_close()


def test_dockerfile_copies_only_paths_that_exist_and_are_not_ignored():
    copies = instr("COPY") + instr("ADD")
    assert copies
    for args in copies:
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        assert not any(w.startswith("--from") for w in shlex.split(args))
        *sources, _dest = words
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: no such path in the repository"
            if src not in (".", "./"):
                assert not docker_ignored(src.strip("./")), f"COPY {src}, but .dockerignore drops it"


def test_dockerfile_takes_the_pinned_torch_versions_from_requirements():
    """The RUN that installs torch from the CPU index picks exactly the torch and torchvision
    pins of requirements.txt (its grep pattern, applied here with Python's re)."""
    run = next(a for a in instr("RUN") if "TORCH_INDEX" in a)
    pattern = re.search(r"grep -E '([^']+)' requirements\.txt", run).group(1)
    reqs = (ROOT / "requirements.txt").read_text().splitlines()
    picked = [line for line in reqs if re.search(pattern, line)]
    assert sorted(p.split("==")[0] for p in picked) == ["torch", "torchvision"], picked
    assert "pip install -r requirements.txt" in run


def test_dockerignore_keeps_the_app_and_its_assets_and_drops_the_rest():
    pats = dockerignore_patterns()
    for path in (".venv/bin/python", "runs/app-train/x/model.pt", "test-artifacts/a.png",
                 ".git/HEAD", "overfeat/__pycache__/model.cpython-311.pyc", "app.pyc",
                 ".streamlit/secrets.toml"):
        assert docker_ignored(path, pats), f"{path} would go into the image"
    try:
        tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                                 check=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        tracked = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()]
    needed = [p for p in tracked if p in ("app.py", "requirements.txt", ".streamlit/config.toml")
              or p.split("/")[0] in ("app_pages", "overfeat", "assets")]
    assert "assets/demo.pt" in needed and "overfeat/data/scenes.py" in needed
    dropped = [p for p in needed if docker_ignored(p, pats)]
    assert not dropped, f".dockerignore drops files the app needs: {dropped[:10]}"


# --- compose and nginx ------------------------------------------------------------------------
def app_services() -> dict[str, str]:
    return {n: body for n, body in compose_services(COMPOSE.read_text()).items() if n != "nginx"}


def test_compose_has_named_app_replicas_built_from_the_repo_and_an_nginx():
    services = compose_services(COMPOSE.read_text())
    apps = app_services()
    assert "nginx" in services
    assert len(apps) >= 2, f"replicas: {sorted(apps)}"
    for name, body in apps.items():
        ctx = re.search(r"^\s+context:\s*(\S+)", body, re.M)
        assert ctx, f"{name} has no build context"
        dockerfile = re.search(r"^\s+dockerfile:\s*(\S+)", body, re.M)
        context = (COMPOSE.parent / ctx.group(1)).resolve()
        assert context == ROOT
        assert (context / (dockerfile.group(1) if dockerfile else "Dockerfile")).is_file()
        assert re.search(r'^\s+-\s*"?%d"?\s*$' % exposed_port(), body, re.M), \
            f"{name} does not expose {exposed_port()}"
        assert "deploy:" not in body and "replicas:" not in body  # one name per replica


def test_every_upstream_server_is_an_app_service_and_the_other_way_round():
    servers = upstream_servers()
    apps = app_services()
    assert len(servers) == len(set(servers)), f"duplicate upstream servers: {servers}"
    assert {h for h, _ in servers} == set(apps), (servers, sorted(apps))
    assert {p for _, p in servers} == {exposed_port()}


def test_nginx_waits_for_every_replica_and_mounts_this_config():
    nginx = compose_services(COMPOSE.read_text())["nginx"]
    deps = nginx_block_yaml(nginx, "depends_on")
    assert set(re.findall(r"^      ([A-Za-z0-9_.-]+):", deps, re.M)) == set(app_services())
    assert deps.count("condition: service_healthy") == len(app_services())
    vol = re.search(r"-\s*\./nginx\.conf:/etc/nginx/nginx\.conf(:ro)?\s*$", nginx, re.M)
    assert vol, "nginx does not mount deploy/nginx.conf as its nginx.conf"
    listen = re.search(r"^\s*listen\s+(\d+)\s*;", nginx_text(), re.M)
    assert listen and int(listen.group(1)) == 8080
    port = re.search(r'^\s+-\s*"?[^"\s]*:(\d+)"?\s*$', nginx_block_yaml(nginx, "ports"), re.M)
    assert port and int(port.group(1)) == 8080, "the published port is not nginx's listen port"


def nginx_block_yaml(service_body: str, key: str) -> str:
    """The lines under `    key:` of one service (4-space keys, deeper lines below them)."""
    lines, out, inside = service_body.splitlines(), [], False
    for line in lines:
        if re.match(rf"^    {key}:\s*$", line):
            inside = True
            continue
        if inside:
            if re.match(r"^    \S", line):
                break
            out.append(line)
    assert out, f"no {key}: in the service"
    return "\n".join(out)


def test_upstream_is_sticky():
    body = nginx_block(nginx_text(), r"upstream\s+streamlit")
    sticky = re.search(r"^\s*(ip_hash|hash\s+(\$\S+)(\s+consistent)?|sticky\b.*)\s*;", body, re.M)
    assert sticky, "the upstream balances round robin: a session's upload could reach a " \
                   "replica that does not hold its websocket"
    if sticky.group(2):  # hash on a variable: it must come from a per-browser cookie
        var = sticky.group(2)[1:]
        maps = re.findall(r"map\s+\$(\S+)\s+\$(\S+)\s*\{", nginx_text())
        assert (var.startswith("cookie_") or any(dst == var and src.startswith("cookie_")
                                                 for src, dst in maps)), var


def test_websocket_headers_and_timeouts():
    text = nginx_text()
    loc = nginx_block(text, r"location\s+/")
    assert re.search(r"^\s*proxy_pass\s+http://streamlit\s*;", loc, re.M)
    assert re.search(r"^\s*proxy_http_version\s+1\.1\s*;", loc, re.M)
    assert re.search(r"^\s*proxy_set_header\s+Upgrade\s+\$http_upgrade\s*;", loc, re.M)
    conn = re.search(r"^\s*proxy_set_header\s+Connection\s+(\S+)\s*;", loc, re.M)
    assert conn, "no Connection header for the websocket upgrade"
    if conn.group(1).startswith("$"):
        m = nginx_block(text, r"map\s+\$http_upgrade\s+\$" + re.escape(conn.group(1)[1:]))
        assert re.search(r"^\s*default\s+upgrade\s*;", m, re.M), m
    else:
        assert conn.group(1).strip('"').lower() == "upgrade"
    # Streamlit accepts a websocket whose Origin is the Host, port included ($host drops it).
    assert re.search(r"^\s*proxy_set_header\s+Host\s+\$http_host\s*;", loc, re.M)
    for name in ("proxy_read_timeout", "proxy_send_timeout"):
        m = re.search(rf"^\s*{name}\s+(\S+)\s*;", loc, re.M)
        assert m and seconds(m.group(1)) >= 3600, f"{name} is short or unset (nginx: 60 s)"


def test_body_size_lets_streamlits_largest_upload_through():
    m = re.search(r"^\s*client_max_body_size\s+(\S+)\s*;", nginx_text(), re.M)
    assert m, "no client_max_body_size: nginx refuses uploads over 1 MB"
    limit = size_bytes(m.group(1))
    assert limit == 0 or limit >= streamlit_max_upload_mb() * 1024 * 1024, \
        (m.group(1), streamlit_max_upload_mb())


def test_compose_parses_with_pyyaml_when_it_is_installed():
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (the line parser above "
                                              "is what checks the compose file here)")
    doc = yaml.safe_load(COMPOSE.read_text())
    assert set(doc["services"]) == set(compose_services(COMPOSE.read_text()))
    for name in app_services():
        assert doc["services"][name]["build"]["context"] == ".."


def test_docker_compose_config_when_docker_compose_is_installed():
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True,
                                    timeout=30).returncode != 0:
        pytest.skip("`docker compose` (the Compose v2 plugin) is not installed here")
    r = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "--services"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) == set(compose_services(COMPOSE.read_text()))


# --- nginx for real, in front of stub replicas ------------------------------------------------
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                       if os.access(p, os.X_OK)), None)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="no nginx binary here (apt-get install "
                                 "nginx-light provides one); the config is checked by parsing only")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_config(tmp: Path, ports: dict[str, int], listen: int) -> Path:
    """deploy/nginx.conf with each appN:8501 -> 127.0.0.1:<port>, listening on loopback, and
    nginx's working files under tmp (so neither root nor /var is needed)."""
    text = NGINX_CONF.read_text()
    for host, port in ports.items():
        text, n = re.subn(rf"\bserver\s+{re.escape(host)}:\d+\s*;", f"server 127.0.0.1:{port};",
                          text)
        assert n == 1, host
    text, n = re.subn(r"\blisten\s+8080\s*;", f"listen 127.0.0.1:{listen};", text)
    assert n == 1
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / d).mkdir()
    temp = "".join(f"    {d}_temp_path {tmp / d};\n"
                   for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = text.replace("access_log /dev/stdout;", f"access_log {tmp / 'access.log'};")
    text = text.replace("error_log /dev/stderr warn;", f"error_log {tmp / 'error.log'} warn;")
    text = re.sub(r"^http\s*\{\n", "http {\n" + temp, text, count=1, flags=re.M)
    path = tmp / "nginx.conf"
    path.write_text(text)
    return path


def nginx_cmd(conf: Path, tmp: Path, *extra: str, daemon: bool = True) -> list[str]:
    """nginx on conf with its pid and startup log in tmp (nginx keeps only the last -g)."""
    globals_ = f"pid {tmp / 'nginx.pid'};" + ("" if daemon else " daemon off;")
    return [NGINX, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf),
            "-g", globals_, *extra]


@needs_nginx
def test_nginx_accepts_the_config(tmp_path):
    ports = {h: free_port() for h, _ in upstream_servers()}
    conf = local_config(tmp_path, ports, free_port())
    r = subprocess.run(nginx_cmd(conf, tmp_path, "-t"), capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert "syntax is ok" in r.stderr and "test is successful" in r.stderr, r.stderr


class Replica(http.server.BaseHTTPRequestHandler):
    """A stand-in for one app replica: says who it is and what headers it got; answers a
    websocket upgrade with 101 and then echoes lines prefixed with its name."""

    protocol_version = "HTTP/1.1"
    name = "?"

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nX-Replica: " + self.name.encode()
                             + b"\r\n\r\n")
            self.wfile.flush()
            line = self.rfile.readline()
            self.wfile.write(self.name.encode() + b":" + line)
            self.wfile.flush()
            self.close_connection = True
            return
        self.reply(200, {"replica": self.name, "headers": dict(self.headers)})

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", 0))
        self.rfile.read(n)
        self.reply(200, {"replica": self.name, "received": n})

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxy():
    """nginx from deploy/nginx.conf in front of one stub per upstream server; yields its URL."""
    tmp = Path(tempfile.mkdtemp(prefix="test_deploy-"))
    os.chmod(tmp, 0o755)  # nginx's workers (another user when run as root) use the temp dirs
    servers, ports = [], {}
    for host, _ in upstream_servers():
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                              type(host, (Replica,), {"name": host}))
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        ports[host] = srv.server_port
    listen = free_port()
    conf = local_config(tmp, ports, listen)
    proc = subprocess.Popen(nginx_cmd(conf, tmp, daemon=False), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{listen}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", listen), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.poll() is not None else ""
                    err = (tmp / "error.log").read_text() if (tmp / "error.log").exists() else ""
                    pytest.fail(f"nginx did not start: {out} {err}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for srv in servers:
            srv.shutdown()
            srv.server_close()
        shutil.rmtree(tmp, ignore_errors=True)


def get(url: str, cookie: str | None = None, headers: dict | None = None):
    req = urllib.request.Request(url, headers={**({"Cookie": cookie} if cookie else {}),
                                              **(headers or {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read()), r.headers.get_all("Set-Cookie") or []


@needs_nginx
def test_a_browser_stays_on_one_replica_and_browsers_spread(proxy):
    first_seen = {}
    for _ in range(30):  # 30 new browsers (no cookie yet)
        body, set_cookie = get(proxy + "/")
        assert len(set_cookie) == 1, set_cookie
        cookie = set_cookie[0].split(";")[0]
        assert cookie.startswith("overfeat_replica=") and len(cookie) > len("overfeat_replica=")
        assert "HttpOnly" in set_cookie[0] and "Path=/" in set_cookie[0]
        first_seen[cookie] = body["replica"]
    assert len(first_seen) == 30, "two browsers got the same cookie"
    # Each browser's later requests, with its cookie, reach the replica of its first request.
    for cookie, replica in first_seen.items():
        for path in ("/_stcore/health", "/static/js/main.js", "/_stcore/host-config"):
            body, set_cookie = get(proxy + path, cookie=cookie)
            assert body["replica"] == replica, (cookie, path)
            assert set_cookie == [], "the cookie is set again although the browser sent it"
    used = set(first_seen.values())
    assert len(used) >= 2, f"30 browsers all landed on {used}: the replicas do not share the load"


@needs_nginx
def test_the_websocket_reaches_the_replica_of_the_browsers_other_requests(proxy):
    _, set_cookie = get(proxy + "/")
    cookie = set_cookie[0].split(";")[0]
    http_replica = get(proxy + "/_stcore/health", cookie=cookie)[0]["replica"]
    port = int(proxy.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET /_stcore/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nCookie: {cookie}\r\n"
                  f"Origin: http://127.0.0.1:{port}\r\n\r\n".encode())
        f = s.makefile("rb")
        status = f.readline()
        assert b" 101 " in status, status
        headers = {}
        for line in iter(f.readline, b"\r\n"):
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        assert headers["x-replica"] == http_replica
        s.sendall(b"ping\n")
        assert f.readline() == f"{http_replica}:ping\n".encode()  # the tunnel carries data


@needs_nginx
def test_the_replica_gets_the_upgrade_and_host_headers(proxy):
    port = proxy.rsplit(":", 1)[1]
    body, _ = get(proxy + "/", headers={"Upgrade": "h2c"})  # any Upgrade header is passed on
    h = {k.lower(): v for k, v in body["headers"].items()}
    assert h["upgrade"] == "h2c" and h["connection"].lower() == "upgrade"
    assert h["host"] == f"127.0.0.1:{port}"  # with the port, as the browser's Origin has it
    assert h["x-forwarded-for"] == "127.0.0.1"
    body, _ = get(proxy + "/")
    assert {k.lower(): v for k, v in body["headers"].items()}["connection"].lower() == "close"


@needs_nginx
def test_uploads_up_to_streamlits_limit_pass_and_larger_ones_are_refused(proxy):
    """A 3 MB PUT goes through (nginx's default limit is 1 MB); a request announcing more than
    Streamlit's maxUploadSize gets 413 from nginx before any body is sent."""
    data = os.urandom(3 * 1024 * 1024)
    req = urllib.request.Request(proxy + "/_stcore/upload_file/s/f", data=data, method="PUT")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert json.loads(r.read())["received"] == len(data)
    too_big = streamlit_max_upload_mb() * 1024 * 1024 + 2 * 1024 * 1024
    port = int(proxy.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"PUT /_stcore/upload_file/s/f HTTP/1.1\r\nHost: x\r\n"
                  f"Content-Length: {too_big}\r\n\r\n".encode())
        assert b" 413 " in s.makefile("rb").readline()
