"""Several app replicas behind nginx on one machine, for testing the set-up a large course uses.

    python -m explorer.tools.replicas --replicas 2 --port 8080 [--checkpoints DIR]

Starts N ordinary `streamlit run explorer/app.py` servers on free 127.0.0.1 ports and nginx in front of them on
--port, with the shipped config (explorer/tools/serving/nginx-latent-explorer.conf: sticky sessions by cookie,
websockets proxied) and the replicas' ports in its upstream. Prints the proxy's address and waits; Ctrl-C stops
nginx and every replica. `python -m explorer.tools.loadtest --replicas 2` uses the same code to load-test it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from explorer.tools.app_server import HOST, Server, ServerError, free_port, stop_process, wait_until_healthy

CONFIG = Path(__file__).resolve().parent / "serving" / "nginx-latent-explorer.conf"


def nginx_binary() -> str | None:
    """nginx on PATH or in Debian's place (/usr/sbin is not on every user's PATH)."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if Path(p).is_file()), None)


def site_config(ports: list[int], listen: int, text: str | None = None) -> str:
    """The shipped site config with the upstream's servers replaced by these replicas and nginx on `listen`."""
    text = CONFIG.read_text() if text is None else text
    servers = "".join(f"    server {HOST}:{port};\n" for port in ports)
    text, count = re.subn(r"(^upstream latent_explorer \{\n(?:\s*(?:hash|ip_hash)[^\n]*\n))(?:\s*server [^\n]*\n)+",
                          lambda m: m.group(1) + servers, text, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"{CONFIG}: no `upstream latent_explorer` block with server lines")
    text, count = re.subn(r"^(\s*)listen \d+;", rf"\g<1>listen {HOST}:{listen};", text, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"{CONFIG}: no `listen` line")
    return text


def standalone_config(site: str, prefix: Path) -> str:
    """A whole nginx.conf around the site config that an ordinary user can run: files under `prefix`."""
    temp = {name: prefix / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for folder in temp.values():
        folder.mkdir(parents=True, exist_ok=True)
    return f"""worker_processes 1;
pid {prefix / 'nginx.pid'};
error_log {prefix / 'error.log'} warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix / 'access.log'};
    client_body_temp_path {temp['client_body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
{site}
}}
"""


@dataclass
class Proxy:
    """nginx in front of the replicas."""

    port: int
    process: subprocess.Popen
    prefix: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)
        shutil.rmtree(self.prefix, ignore_errors=True)


def start_proxy(ports: list[int], listen: int | None = None, timeout: float = 60) -> Proxy:
    binary = nginx_binary()
    if binary is None:
        raise ServerError("nginx is not installed (Debian: apt-get install nginx)")
    listen = listen or free_port()
    prefix = Path(tempfile.mkdtemp(prefix="latent-explorer-nginx-"))
    conf = prefix / "nginx.conf"
    conf.write_text(standalone_config(site_config(ports, listen), prefix))
    process = subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    proxy = Proxy(listen, process, prefix)

    def exited() -> str:
        log = (prefix / "error.log").read_text(errors="replace") if (prefix / "error.log").exists() else ""
        proxy.stop()
        return f"nginx exited with code {process.returncode}: {log[-1500:]}"

    if wait_until_healthy(proxy.url, process, timeout, exited):
        return proxy
    proxy.stop()
    raise ServerError(f"nginx did not answer within {timeout:.0f} s")


@contextmanager
def replicas_behind_proxy(n: int, listen: int | None = None, checkpoints: str | None = None,
                          threads: int | None = None):
    """(proxy, servers): n replicas and nginx in front, all stopped on exit."""
    servers: list[Server] = []
    proxy = None
    try:
        for _ in range(n):
            servers.append(Server.start(checkpoints, threads=threads))
        proxy = start_proxy([s.port for s in servers], listen)
        yield proxy, servers
    finally:
        if proxy is not None:
            proxy.stop()
        for server in servers:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.tools.replicas", description=__doc__.split("\n\n")[0])
    parser.add_argument("--replicas", type=int, default=2, help="app servers behind the proxy (default 2)")
    parser.add_argument("--port", type=int, default=8080, help="the proxy's port on 127.0.0.1 (default 8080)")
    parser.add_argument("--checkpoints", help="bundle folder for every replica (default: the app's checkpoints/)")
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with replicas_behind_proxy(args.replicas, args.port, args.checkpoints) as (proxy, servers):
            print(f"{len(servers)} replicas ({', '.join(s.url for s in servers)}) behind nginx at {proxy.url}; "
                  "Ctrl-C stops them all", flush=True)
            while all(s.process.poll() is None for s in servers) and proxy.process.poll() is None:
                time.sleep(1)
            print("a replica or nginx exited; stopping the rest", file=sys.stderr)
            return 1
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
