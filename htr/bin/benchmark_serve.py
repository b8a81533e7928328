"""Load benchmark of `htr serve`: concurrent clients on loopback, with batching on and off, beside
the offline batched decoding of the same lines, in one run.

    python -m htr.bin.benchmark_serve --model exp/ocr_train/model.zip --data data/test \\
        --clients 16 --requests 400 --time_limit 120 --max_batch 16

For each of batching on (--max_batch) and off (--max_batch 1) it starts `htr serve` on an
ephemeral 127.0.0.1 port, warms it up, and lets --clients threads POST the data dir's images
(img.scp, in turn) until --requests are answered or --time_limit seconds have passed. It reports
requests/s, p50/p95 latency and the server's mean batch size, and the offline figure (`htr
recognize --json`'s batched search with character positions, in this process, batches of
--max_batch in the data's order and sorted by length, images read beforehand). Search options given here
go to every row. Traffic goes to loopback only; the loop is bounded in count and time.
"""
import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

from htr.bin.benchmark_ensemble import decode_all
from htr.data.datadir import read_kv
from htr.decode import search_options
from htr.decode.recognizer import Recognizer
from htr.errors import UserError, run_tool

START_TIMEOUT_S = 300


def get_parser():
    p = argparse.ArgumentParser(prog="htr benchmark_serve", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="data dir with img.scp")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=400, help="requests per row, at most")
    p.add_argument("--time_limit", type=float, default=120, help="seconds per row, at most")
    p.add_argument("--max_batch", type=int, default=16)
    p.add_argument("--max_wait_ms", type=float, default=50.0)
    p.add_argument("--log_dir", default="exp/benchmark_serve", help="where each server's log is kept")
    search_options.add_arguments(p)
    return p


def search_args(args):
    """The search options given on the command line, as `htr serve` arguments."""
    out = []
    for name in search_options.names():
        value = getattr(args, name)
        if value is not None:
            out += [f"--{name}", str(value).lower() if isinstance(value, bool) else str(value)]
    return out


class ServerProcess:
    """`htr serve` on an ephemeral loopback port, its log in `log_file`."""

    def __init__(self, model, log_file, *args):
        self.log_file = Path(log_file)
        with open(self.log_file, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "htr.bin.serve", "--model", model, "--port", "0", *args],
                                         stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (found := re.search(r"on http://([\d.]+):(\d+)/", self.log_file.read_text())):
            if time.monotonic() > deadline:
                self.stop()
                raise UserError(f"htr serve did not start within {START_TIMEOUT_S} s ({self.log_file})")
            if self.proc.poll() is not None:
                raise UserError(f"htr serve did not start ({self.log_file}):\n{self.log_file.read_text()[-2000:]}")
            time.sleep(0.2)
        self.host, self.port = found.group(1), int(found.group(2))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def post(conn, name, data):
    conn.request("POST", f"/recognize?name={quote(name)}", body=data, headers={"Content-Type": "application/octet-stream"})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise UserError(f"{name}: HTTP {response.status}: {body[:200]!r}")


def load(server, uploads, clients, requests, time_limit):
    """-> (wall seconds, latencies, errors) of `clients` threads sharing at most `requests`; a failed
    request is counted and its connection opened anew."""
    latencies, errors, lock, counter = [], [], threading.Lock(), iter(range(requests))
    deadline = time.monotonic() + time_limit

    def client():
        conn = http.client.HTTPConnection(server.host, server.port, timeout=300)
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            name, data = uploads[i % len(uploads)]
            started = time.perf_counter()
            try:
                post(conn, name, data)
            except (OSError, http.client.HTTPException, UserError) as e:
                errors.append(f"{name}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(server.host, server.port, timeout=300)
                continue
            with lock:
                latencies.append(time.perf_counter() - started)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies, errors


def stats(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    conn.request("GET", "/stats")
    return json.loads(conn.getresponse().read())


def serve_row(args, uploads, max_batch):
    log_file = Path(args.log_dir) / f"serve_max_batch{max_batch}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(args.model, log_file, "--max_batch", str(max_batch), "--max_wait_ms", str(args.max_wait_ms),
                           *search_args(args))
    try:
        load(server, uploads, min(args.clients, len(uploads)), min(len(uploads), 2 * args.clients), args.time_limit)
        before = stats(server)
        wall, latencies, errors = load(server, uploads, args.clients, args.requests, args.time_limit)
        after = stats(server)
    finally:
        server.stop()
    if errors:
        print(f"# max_batch {max_batch}: {len(errors)} requests failed, e.g. {errors[0]} (log: {log_file})",
              file=sys.stderr)
    if not latencies:
        raise UserError(f"no request was answered (log: {log_file})")
    batches = after["batches"] - before["batches"]
    cuts = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    return {"requests": len(latencies), "failed": len(errors), "per_s": len(latencies) / wall, "p50": statistics.median(latencies), "p95": cuts[18],
            "batch": (after["requests"] - before["requests"]) / max(batches, 1)}


def main(argv=None):
    args = get_parser().parse_args(argv)
    images = read_kv(f"{args.data}/img.scp")
    uploads = [(Path(path).name, Path(path).read_bytes()) for path in images.values()]
    print(f"# {len(uploads)} images from {args.data}, {args.clients} clients, up to {args.requests} requests "
          f"or {args.time_limit:g} s a row", file=sys.stderr)
    rows = {f"server, batching on (max_batch {args.max_batch})": serve_row(args, uploads, args.max_batch),
            "server, batching off (max_batch 1)": serve_row(args, uploads, 1)}
    settings = {n: getattr(args, n) for n in search_options.names()}
    rec = Recognizer.from_pretrained(args.model, **settings)
    offline = {by_length: decode_all(rec, images, args.max_batch, "offline", positions=True, by_length=by_length)[1]
               for by_length in (True, False)}
    print("| decoding | requests | failed | lines/s | p50 latency (s) | p95 latency (s) | mean batch |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for by_length, what in ((True, "sorted by length, as ocr_inference"), (False, "in data order, as recognize")):
        print(f"| offline, batches of {args.max_batch} {what} | {len(images)} | | {offline[by_length]:.1f} | | | "
              f"{args.max_batch} |")
    for name, r in rows.items():
        print(f"| {name} | {r['requests']} | {r['failed']} | {r['per_s']:.1f} | {r['p50']:.3f} | {r['p95']:.3f} | "
              f"{r['batch']:.1f} |")
    on, off = rows.values()
    print(f"\nbatching on / off: {on['per_s'] / off['per_s']:.2f}x requests/s; "
          f"batching on / offline in data order: {on['per_s'] / offline[False]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
