"""Two app replicas behind nginx with the shipped config: the load test reaches them through the proxy, and every
session stays on the replica that opened it (sticky by cookie), while the sessions are spread over both."""

from __future__ import annotations

import shutil

import pytest

from explorer.tools.loadtest import run_loadtest
from explorer.tools.replicas import CONFIG, nginx_binary, site_config, standalone_config


def test_the_shipped_config_gets_the_replicas_ports_and_the_proxy_port(tmp_path):
    site = site_config([8601, 8602, 8603], 9090)
    assert "server 127.0.0.1:8603;" in site and "8501" not in site and "listen 127.0.0.1:9090;" in site
    text = CONFIG.read_text()
    # The parts a Streamlit app needs behind a proxy: websockets upgraded, a long-lived stream, sticky sessions.
    for needed in ("proxy_set_header Upgrade $http_upgrade", "proxy_read_timeout 86400s", "location /_stcore/stream",
                   "hash $latent_explorer_route consistent", "X-Upstream $upstream_addr"):
        assert needed in text
    assert f"pid {tmp_path / 'nginx.pid'};" in standalone_config(site, tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed (Debian: apt-get install nginx)")
def test_two_replicas_behind_nginx_keep_each_session_on_one_replica(tiny_bundle, tmp_path):
    root = tmp_path / "checkpoints"
    shutil.copytree(tiny_bundle, root / "toyfaces" / "dcgan")
    # Each session's cookie is a random request id, hashed onto a replica (consistent hashing splits about 60/40):
    # with 6 sessions all of them landed on one replica in about one run in 20 (seen once); with 16, about 1 in 3,500.
    figures = run_loadtest(sessions=16, seconds=6, think=0.2, checkpoints=str(root), replicas=2)
    assert figures["errors"] == 0, figures["error_examples"]
    assert figures["servers"] == 2 and figures["interactions"] >= 6
    assert figures["every_session_on_one_replica"] is True, figures
    assert figures["replicas_seen"] == 2, figures  # the cookie spreads sessions over both replicas
    assert figures["model_loads"] == figures["distinct_models"] == 2  # one load per replica
