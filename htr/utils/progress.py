"""A dependency-free progress bar: one redrawn line on a terminal, a log line every few seconds elsewhere."""
import sys
import time


class Progress:
    def __init__(self, total, desc="", unit="it", stream=None, interval=None):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval if interval is not None else (0.2 if self.tty else 10.0)
        self.count = 0
        self.start = self.last = time.monotonic()

    def update(self, n=1):
        self.count += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._draw(now)

    def _draw(self, now, final=False):
        elapsed = max(now - self.start, 1e-9)
        rate = self.count / elapsed
        total = f"/{self.total}" if self.total else ""
        pct = f" {100 * self.count / self.total:3.0f}%" if self.total else ""
        line = f"{self.desc}{pct} {self.count}{total} [{elapsed:.1f}s, {rate:.1f} {self.unit}/s]"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        self._draw(time.monotonic(), final=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
