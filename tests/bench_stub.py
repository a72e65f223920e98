"""A small OpenAI-compatible server for testing the benchmark clients and `planner check`:
it streams ``max_tokens`` tokens per request at step times chosen on the command line
(``--ttft-ms``: the wait before the first token, ``--itl-ms``: between tokens), every
request on its own thread, so a run measures those step times back (no batching, no
queueing). Standard library only; it listens on loopback and stops after ``--lifetime-s``.

    python tests/bench_stub.py --port 8199 --ttft-ms 150 --itl-ms 20 --lifetime-s 120

Endpoints: ``/v1/completions`` and ``/v1/chat/completions`` (streamed as server-sent
events when ``stream`` is true, with the usage in the last chunk when
``stream_options.include_usage`` is), ``/v1/models``, ``/health``, ``/metrics``
(an empty Prometheus page). Each generated token is the byte ``x`` and a prompt counts one
token a byte: a client counting tokens with the byte tokenizer of tests/data/bench/tokenizer
counts what was sent.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_TOKENS = 4096
"""The most tokens one request may ask for (a bounded run)."""


def make_handler(ttft_s: float, itl_s: float, model: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _json(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.startswith("/v1/models"):
                self._json(200, {"object": "list", "data": [{"id": model, "object": "model", "owned_by": "stub"}]})
            elif self.path.startswith("/health") or self.path == "/":
                self._json(200, {"status": "ok"})
            elif self.path.startswith("/metrics"):
                data = b"# stub\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                req = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._json(400, {"error": "not JSON"})
                return
            chat = self.path.startswith("/v1/chat/completions")
            if not (chat or self.path.startswith("/v1/completions")):
                self._json(404, {"error": "not found"})
                return
            n = req.get("max_completion_tokens") or req.get("max_tokens") or 16
            n = max(1, min(int(n), MAX_TOKENS))
            prompt = req.get("prompt") if not chat else " ".join(
                str(m.get("content", "")) for m in req.get("messages", []))
            prompt_tokens = len(str(prompt or "").encode())
            rid = f"cmpl-{threading.get_ident()}-{time.monotonic_ns()}"
            obj = "chat.completion.chunk" if chat else "text_completion"
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n, "total_tokens": prompt_tokens + n}
            if not req.get("stream"):
                time.sleep(ttft_s + itl_s * (n - 1))
                text = "x" * n
                choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
                          if chat else {"index": 0, "text": text, "finish_reason": "length"})
                self._json(200, {"id": rid, "object": "chat.completion" if chat else "text_completion",
                                 "created": int(time.time()), "model": model, "choices": [choice], "usage": usage})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            start = time.monotonic()
            for i in range(n):
                due = start + ttft_s + itl_s * i
                time.sleep(max(0.0, due - time.monotonic()))
                text = "x"
                choice = ({"index": 0, "delta": {"content": text} if i else {"role": "assistant", "content": text},
                           "finish_reason": "length" if i == n - 1 else None}
                          if chat else {"index": 0, "text": text, "finish_reason": "length" if i == n - 1 else None})
                self._chunk({"id": rid, "object": obj, "created": int(time.time()), "model": model,
                             "choices": [choice]})
            if (req.get("stream_options") or {}).get("include_usage"):
                self._chunk({"id": rid, "object": obj, "created": int(time.time()), "model": model, "choices": [],
                             "usage": usage})
            self._write(b"data: [DONE]\n\n")
            self._write(b"")

        def _chunk(self, body: dict) -> None:
            self._write(b"data: " + json.dumps(body).encode() + b"\n\n")

        def _write(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


def serve(port: int, ttft_ms: float, itl_ms: float, model: str, lifetime_s: float) -> ThreadingHTTPServer:
    """Start the stub on 127.0.0.1:``port`` in a daemon thread; it shuts down after ``lifetime_s``."""
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(ttft_ms / 1e3, itl_ms / 1e3, model))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    timer = threading.Timer(lifetime_s, server.shutdown)
    timer.daemon = True
    timer.start()
    return server


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=8199)
    ap.add_argument("--ttft-ms", type=float, required=True)
    ap.add_argument("--itl-ms", type=float, required=True)
    ap.add_argument("--model", default="stub-model")
    ap.add_argument("--lifetime-s", type=float, default=300.0, help="stop after this many seconds (a bounded run)")
    a = ap.parse_args()
    server = serve(a.port, a.ttft_ms, a.itl_ms, a.model, a.lifetime_s)
    print(f"stub on http://127.0.0.1:{a.port}: TTFT {a.ttft_ms} ms, ITL {a.itl_ms} ms, {a.lifetime_s:g} s", flush=True)
    end = time.monotonic() + a.lifetime_s
    while time.monotonic() < end:
        time.sleep(0.5)
    server.shutdown()


if __name__ == "__main__":
    main()
