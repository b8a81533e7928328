"""`htr <tool> [args]`: one entry point for every htr.bin tool (`htr recognize img.png --model m.zip`)."""
import importlib
import pkgutil
import sys

import htr.bin
from htr.errors import run_tool


def tools():
    return sorted(m.name for m in pkgutil.iter_modules(htr.bin.__path__) if not m.name.startswith("_"))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: htr <tool> [args]\n\ntools: " + ", ".join(tools()))
        return
    name = argv[0].replace("-", "_")
    if name not in tools():
        print(f"htr: unknown tool {argv[0]!r}; tools: {', '.join(tools())}", file=sys.stderr)
        return 2
    sys.argv = [f"htr {argv[0]}", *argv[1:]]
    tool = importlib.import_module(f"htr.bin.{name}")
    return run_tool(tool.main, argv[1:], prog=f"htr {argv[0]}")  # the tool's own exit status


if __name__ == "__main__":
    raise SystemExit(main())
