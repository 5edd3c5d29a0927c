"""`reflex export` hosting: the static front end served by nginx, the back end run on its own."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.ui import MESSAGES_URL, sign_up, wait_until_interactive
from tests.conftest import unique_email
from tests.support.server import (
    PROJECT_ROOT,
    VENV_BIN,
    AppServer,
    free_port,
    migrate,
    reflex_environment,
)

NGINX_CONF = """
daemon off;
user root;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log {folder}/nginx-access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            # Prerendered pages, then the SPA fallback for /messages/<id>.
            try_files $uri $uri/index.html $uri.html /__spa-fallback.html;
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def exported_site(tmp_path_factory) -> Iterator[tuple[str, AppServer]]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (.ci/run and `make test` install it)")
    folder = tmp_path_factory.mktemp("exported")
    front_port = free_port()
    front_url = f"http://localhost:{front_port}"
    database_url = f"sqlite:///{folder / 'chat_app.db'}"
    migrate(database_url)
    backend = AppServer(
        database_url=database_url,
        work_dir=folder,
        env={"REFLEX_DEPLOY_URL": front_url},
        backend_only=True,
    )
    subprocess.run(
        [str(VENV_BIN / "reflex"), "export", "--frontend-only", "--no-zip"],
        cwd=PROJECT_ROOT,
        env=reflex_environment(
            REFLEX_WEB_WORKDIR=str(folder / "web"),
            REFLEX_API_URL=backend.url,
            REFLEX_DEPLOY_URL=front_url,
        ),
        check=True,
        capture_output=True,
        timeout=600,
    )
    conf = folder / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(folder=folder, port=front_port, root=folder / "web" / "build" / "client")
    )
    static = subprocess.Popen([nginx, "-c", str(conf), "-p", str(folder)], start_new_session=True)
    backend.start()
    try:
        for _ in range(100):
            try:
                if httpx.get(front_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield front_url, backend
    finally:
        backend.stop()
        static.terminate()
        static.wait(timeout=10)


def test_the_demo_on_the_exported_front_end(exported_site, new_context):
    front_url, backend = exported_site
    assert (
        "server: nginx"
        in "\n".join(f"{k}: {v}" for k, v in httpx.get(front_url).headers.items()).lower()
    )
    one_email, two_email = unique_email("static1"), unique_email("static2")
    pages = []
    for name, email in (("Static One", one_email), ("Static Two", two_email)):
        page = new_context(base_url=front_url).new_page()
        sign_up(page, name=name, email=email, password="password123")
        page.wait_for_url(MESSAGES_URL)
        expect(page.locator("#signed-in-name")).to_have_text(name)
        pages.append(page)
    one, two = pages
    wait_until_interactive(one, "#new-conversation")
    one.locator("#new-conversation").click()
    one.locator("#new-conversation-emails").fill(two_email)
    one.locator("#start-conversation").click()
    one.wait_for_url(re.compile(r"/messages/\d+"))
    expect(two.locator(".conversation-title")).to_have_text("Static One")
    two.locator(".conversation-row").click()
    wait_until_interactive(two, "#composer")
    wait_until_interactive(one, "#composer")
    one.locator("#composer").fill("hello from nginx")
    one.locator("#composer").press("Enter")
    expect(two.locator("#message-list .message-body")).to_have_text(["hello from nginx"])
    two.locator("#composer").fill("and back")
    two.locator("#composer").press("Enter")
    expect(one.locator("#message-list .message-body")).to_have_text(
        ["hello from nginx", "and back"]
    )
    two.reload()  # served by nginx's SPA fallback for /messages/<id>
    expect(two.locator("#message-list .message-body")).to_have_text(
        ["hello from nginx", "and back"]
    )
