"""The benchmarks' loopback OpenAI-compatible server, in a child process so
that its CPU is not the client's.

POST /v1/chat/completions answers after ``latency`` seconds with text each
step's parser reads (a revision in the REVISED PREFERENCE format, "A" for a
judge asked for A or B, a short answer otherwise); GET /stats gives the
answers served and the server's own CPU seconds.

    python benchmarks/_loopback.py [--latency S]    # prints PORT n, serves until stdin closes
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import urllib.request


def answer(prompt: str) -> str:
    if "REVISED PREFERENCE" in prompt:
        return "REVISED PREFERENCE: A shorter answer that keeps to the question. DONE"
    if "A or B" in prompt:
        return "A"
    return "An answer of a few words, for the benchmark."


def serve(latency: float) -> None:
    from aiohttp import web

    served = 0

    async def chat(request: web.Request) -> web.Response:
        nonlocal served
        body = await request.json()
        if latency:
            await asyncio.sleep(latency)
        messages = body.get("messages", [])
        text = answer(str(messages[-1].get("content", "")) if messages else "")
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        served += 1
        return web.json_response({
            "id": f"chatcmpl-bench-{served}", "object": "chat.completion", "created": 0, "model": body.get("model", "bench"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text.split()), "total_tokens": prompt_tokens + len(text.split())},
        })

    async def stats(request: web.Request) -> web.Response:
        use = resource.getrusage(resource.RUSAGE_SELF)
        return web.json_response({"served": served, "cpu_s": use.ru_utime + use.ru_stime})

    async def main() -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", chat)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=4096).start()
        print(f"PORT {runner.addresses[0][1]}", flush=True)
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        threading.Thread(target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))),
                         daemon=True).start()
        await stop
        await runner.cleanup()

    asyncio.run(main())


class LoopbackServer:
    """Starts the server as a child process; ``stop`` closes its stdin, then kills it if it lingers."""

    def __init__(self, latency: float = 0.0):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--latency", str(latency)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the loopback server did not start (said {line!r})")
        self.port = int(line.split()[1])
        self.api_base = f"http://127.0.0.1:{self.port}/v1"
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for loopback, whatever the environment says

    def stats(self) -> dict[str, float]:
        with self._opener.open(f"http://127.0.0.1:{self.port}/stats", timeout=30) as resp:
            return json.load(resp)

    def served(self) -> int:
        return int(self.stats()["served"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each answer waits")
    serve(parser.parse_args().latency)
