"""JupyterLab opens the chapters' MyST sources as notebooks (jupytext's contents manager):
a real Jupyter server on localhost serves book/01_theory.md as a notebook through its REST
contents API, and a kernel it starts runs the chapter's first cells."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from studylib.book import runner

pytest.importorskip("jupyterlab")
tornado_websocket = pytest.importorskip("tornado.websocket")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "STUDYLIB_PROFILE": "smoke", "STUDYLIB_HOME": str(tmp_path / "home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={runner.ROOT}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(proc.stderr.read().decode()) from None
                time.sleep(0.5)
        yield base, token
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


async def _run_cells(ws_url: str, cells: list[str]) -> list[dict]:
    """execute_request each cell over the kernel's websocket; the replies' contents."""
    conn = await tornado_websocket.websocket_connect(ws_url)
    session, replies = uuid.uuid4().hex, []
    for code in cells:
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "username": "test", "session": session, "msg_type": "execute_request",
                  "version": "5.3", "date": ""}  # fmt: skip
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}  # fmt: skip
        await conn.write_message(json.dumps({"header": header, "parent_header": {}, "metadata": {},
                                             "content": content, "channel": "shell", "buffers": []}))  # fmt: skip
        while True:
            msg = json.loads(await asyncio.wait_for(conn.read_message(), 120))
            if msg["msg_type"] == "execute_reply" and msg["parent_header"].get("msg_id") == msg_id:
                replies.append(msg["content"])
                break
    conn.close()
    return replies


def test_jupyterlab_opens_a_chapter_md_as_a_notebook_and_runs_its_first_cells(server):
    base, token = server
    model = _get(f"{base}/api/contents/book/01_theory.md?type=notebook&content=1&token={token}")
    assert model["type"] == "notebook" and model["format"] == "json"
    cells = model["content"]["cells"]
    code = [c["source"] for c in cells if c["cell_type"] == "code"]
    assert cells[0]["cell_type"] == "markdown" and "parameters" in cells[1]["metadata"].get("tags", [])
    kernel = _post(f"{base}/api/kernels?token={token}", {"name": "python3"})
    ws = f"{base.replace('http', 'ws')}/api/kernels/{kernel['id']}/channels?token={token}"
    replies = asyncio.run(_run_cells(ws, code[:2]))
    assert [r["status"] for r in replies] == ["ok", "ok"], replies
