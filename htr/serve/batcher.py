"""Server-side dynamic batching: requests that arrive together are decoded together.

One worker thread owns the model. It takes the first waiting request, then gathers more until it
has `max_batch` or `max_wait_ms` have passed since the first, and decodes them in one call of the
batched search; each request waits on its own Future. It waits only while `more_coming(n)` says
that requests beyond the `n` it holds may come (the server: more connections are open than
requests gathered): a lone client's request is decoded at once, and the clients that a finished
batch has just answered join the next batch together.
"""
import logging
import queue
import threading
import time
from collections import Counter
from concurrent.futures import Future

log = logging.getLogger("htr.serve")
POLL_S = 0.002  # how often a filling batch looks again whether more requests are on their way


class Batcher:
    def __init__(self, decode, max_batch=16, max_wait_ms=50.0, more_coming=lambda n: True):
        """`decode`: list of inputs -> list of outputs, in order (called from one thread only)."""
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_ms >= 0, not {max_batch}, {max_wait_ms}")
        self.decode, self.max_batch, self.max_wait = decode, max_batch, max_wait_ms / 1000
        self.more_coming = more_coming
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

    def close(self, timeout=60):
        """Stop after the batch in hand (waiting at most `timeout` s for it)."""
        self.pending.put(None)
        self.worker.join(timeout)

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
                if len(outputs) != len(batch):
                    raise RuntimeError(f"decoding {len(batch)} inputs gave {len(outputs)} outputs")
            except Exception as e:  # noqa: BLE001 - each request gets its own answer; the server goes on
                if len(batch) == 1:
                    log.exception("decoding a request failed")
                    outputs = [e]
                else:  # one bad input must not fail the others: decode each alone
                    log.warning("a batch of %d failed (%s): decoding its requests one by one", len(batch), e)
                    outputs = [self.decode_alone(item) for item, _ in batch]
            with self.lock:  # counted before anyone is answered, so /stats and the log never lag
                self.batch_sizes[len(batch)] += 1
            log.info("batch of %d decoded in %.3f s", len(batch), time.perf_counter() - started)
            for (_, future), output in zip(batch, outputs):
                if isinstance(output, Exception):
                    future.set_exception(output)
                else:
                    future.set_result(output)

    def decode_alone(self, item):
        try:
            return self.decode([item])[0]
        except Exception as e:  # noqa: BLE001
            log.exception("decoding one request failed")
            return e

    def gather(self):
        """The next batch: [(item, future)], or None once closed."""
        first = self.pending.get()
        if first is None:
            return None
        batch, deadline = [first], time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            left = deadline - time.monotonic()
            try:  # past the deadline, still take what is already waiting
                nxt = self.pending.get(timeout=min(left, POLL_S)) if left > 0 else self.pending.get_nowait()
            except queue.Empty:
                if left > 0 and self.more_coming(len(batch)):
                    continue
                break
            if nxt is None:  # closing: decode what we have, then stop
                self.pending.put(None)
                break
            batch.append(nxt)
        return batch
