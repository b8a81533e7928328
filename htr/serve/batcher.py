"""Server-side dynamic batching: requests that arrive together are decoded together.

One worker thread owns the model. It takes the first waiting request, then gathers more until it
has `max_batch` or `max_wait_ms` have passed since the first, and decodes them in one call of the
batched search; each request waits on its own Future. While a batch decodes, new requests queue
up and form the next one, so under load the batches fill without any waiting.
"""
import logging
import queue
import threading
import time
from collections import Counter
from concurrent.futures import Future

log = logging.getLogger("htr.serve")


class Batcher:
    def __init__(self, decode, max_batch=16, max_wait_ms=5.0):
        """`decode`: list of inputs -> list of outputs, in order (called from one thread only)."""
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_ms >= 0, not {max_batch}, {max_wait_ms}")
        self.decode, self.max_batch, self.max_wait = decode, max_batch, max_wait_ms / 1000
        self.pending = queue.Queue()
        self.batch_sizes = Counter()  # batch size -> how many batches had it
        self.lock = threading.Lock()
        self.worker = threading.Thread(target=self.run, name="htr-batcher", daemon=True)
        self.worker.start()

    def submit(self, item):
        """-> a Future of decode([..., item, ...])'s output for `item`."""
        future = Future()
        self.pending.put((item, future))
        return future

    def close(self):
        self.pending.put(None)
        self.worker.join()

    def stats(self):
        with self.lock:
            sizes = dict(sorted(self.batch_sizes.items()))
        return {"batches": sum(sizes.values()), "requests": sum(k * v for k, v in sizes.items()),
                "batch_sizes": {str(k): v for k, v in sizes.items()}}

    def run(self):
        while (batch := self.gather()) is not None:
            started = time.perf_counter()
            try:
                outputs = self.decode([item for item, _ in batch])
            except Exception as e:  # noqa: BLE001 - every waiting request gets the error, the server goes on
                log.exception("decoding a batch of %d failed", len(batch))
                for _, future in batch:
                    future.set_exception(e)
            else:
                for (_, future), output in zip(batch, outputs):
                    future.set_result(output)
            with self.lock:
                self.batch_sizes[len(batch)] += 1
            log.info("batch of %d decoded in %.3f s", len(batch), time.perf_counter() - started)

    def gather(self):
        """The next batch: [(item, future)], or None once closed."""
        first = self.pending.get()
        if first is None:
            return None
        batch, deadline = [first], time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                nxt = self.pending.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if nxt is None:  # closing: decode what we have, then stop
                self.pending.put(None)
                break
            batch.append(nxt)
        return batch
