"""A dependency-free progress bar: one redrawn line on a terminal, a log line every few seconds elsewhere.

Its lines read `desc: done/total pct% [elapsed, rate unit/s, eta remaining]`; parse() reads them back, so
the job launcher (htr/jobs.py) can show a live status from a job's log file."""
import re
import sys
import time

LINE = re.compile(r"^(?:(?P<desc>.*?): )?(?P<count>\d+)(?:/(?P<total>\d+) +\d+%)? "
                  r"\[[\d:]+, (?P<rate>[\d.]+) (?P<unit>\S+)/s(?:, eta [\d:]+)?\]$")


def duration(seconds):
    """1:02:03, 2:03 or 0:03."""
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def line(desc, count, total, elapsed, rate, unit):
    done = f"{count}/{total} {100 * count / total:.0f}%" if total else f"{count}"
    eta = f", eta {duration((total - count) / rate)}" if total and rate > 0 else ""
    speed = f"{rate:.2f}" if rate < 10 else f"{rate:.1f}"  # slow jobs' rates still add up in a sum
    return f"{desc + ': ' if desc else ''}{done} [{duration(elapsed)}, {speed} {unit}/s{eta}]"


def parse(text):
    """{desc, count, total, rate, unit} of a progress line, else None."""
    m = LINE.match(text.strip())
    if not m:
        return None
    return dict(desc=m["desc"] or "", count=int(m["count"]), total=int(m["total"] or 0), rate=float(m["rate"]),
                unit=m["unit"])


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
        self._draw(self.start)  # the total at once: a launcher summing parallel jobs' lines needs it

    def update(self, n=1):
        self.count += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._draw(now)

    def _draw(self, now, final=False):
        elapsed = max(now - self.start, 1e-9)
        text = line(self.desc, self.count, self.total, elapsed, self.count / elapsed, self.unit)
        if self.tty:
            self.stream.write("\r" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self):
        self._draw(time.monotonic(), final=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
