"""``blockpilot serve`` as a real process for the reliability tests: start, measure, kill.

Also a tiny block plugin (installed through the ``blockpilot.blocks`` entry-point group by a
``.dist-info`` on ``PYTHONPATH``) whose block writes a workspace file, notes the write in
a side-effect log outside the service, and then sleeps.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

SCRIPT = Path(sys.executable).with_name("blockpilot")
SLOW_WRITE_BLOCK_ID = "8d0f3b52-5c1e-4f6a-9b7d-2e4a6c8f0b13"

_PLUGIN = '''
"""Test-only block: write a workspace file, note it outside the service, sleep."""
import asyncio
import os
from typing import Any

from blockpilot.blocks.base import Block, BlockCategory, BlockOutput
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField


class SlowWriteBlock(Block):
    id = "{block_id}"
    description = "Writes a workspace file, records the write, then sleeps (reliability tests)."
    categories = frozenset({{BlockCategory.BASIC}})

    class Input(BlockSchemaInput):
        tag: str = SchemaField(description="Unique tag of this run")
        seconds: float = SchemaField(default=1.0, description="How long to sleep after writing")

    class Output(BlockSchemaOutput):
        done: str = SchemaField(description="The tag, once the sleep is over")

    async def run(self, input_data: Input, *, execution_context: Any, **kwargs: Any) -> BlockOutput:
        await execution_context.files.write(f"/crash/{{input_data.tag}}.txt", input_data.tag)
        fd = os.open(os.environ["BP_SIDE_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (input_data.tag + "\\n").encode())
        finally:
            os.close(fd)
        await asyncio.sleep(input_data.seconds)
        yield "done", input_data.tag
'''


def install_plugin(directory: Path) -> Path:
    """Write the plugin module and its dist-info into *directory*; returns it (for PYTHONPATH)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bp_rel_blocks.py").write_text(
        textwrap.dedent(_PLUGIN.format(block_id=SLOW_WRITE_BLOCK_ID))
    )
    info = directory / "bp_rel_blocks-0.0.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bp-rel-blocks\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text("[blockpilot.blocks]\nrel = bp_rel_blocks\n")
    (info / "RECORD").write_text("")
    return directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(home: Path, key: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLOCKPILOT_")}
    env.update({"BLOCKPILOT_HOME": str(home), "BLOCKPILOT_ENCRYPTION_KEYS": key, **extra})
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


class Serve:
    """One ``blockpilot serve`` (one worker per core unless *workers* says otherwise); its
    stderr goes to a file (a full pipe would block it)."""

    def __init__(self, env: dict[str, str], log: Path, *, workers: int | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = log
        worker_option = [] if workers is None else ["--workers", str(workers)]
        with log.open("ab") as handle:
            self.process = subprocess.Popen(
                [str(SCRIPT), "serve", "--port", str(self.port), *worker_option],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=handle,
            )

    def wait_ready(self, timeout: float = 90) -> None:  # a cold start on a busy machine
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"serve exited with {self.process.returncode}:\n{self.stderr()}"
                )
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"not ready within {timeout}s:\n{self.stderr()}")

    def rss_bytes(self) -> int:
        """Resident set size of the server process, from /proc (of the first worker only:
        start with ``workers=1`` to measure the whole server)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def peak_rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stderr(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")
