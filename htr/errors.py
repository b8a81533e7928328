"""The errors a user can fix, and how tools report them.

A `UserError` carries a complete one-line message (naming the file, the line or the key); tools
print it alone, without a traceback, and exit non-zero. Anything else is a bug and keeps its
traceback.
"""
import difflib
import os
import sys


class UserError(Exception):
    """Bad input, a bad option or a missing file: the message says which and where."""


class ConfigError(UserError, ValueError):
    """A config key or value htr does not accept."""


class FileLineError(UserError, ValueError):
    """A line of an input file that cannot be read: `path:lineno: why`."""

    def __init__(self, path, lineno, why):
        super().__init__(f"{path}:{lineno}: {why}")
        self.path, self.lineno, self.why = path, lineno, why


def nearest(key, valid):
    """' (did you mean X?)' for the closest valid key, or ''."""
    match = difflib.get_close_matches(str(key), [str(v) for v in valid], n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_keys(conf, valid, what, source=None):
    """Refuse any key of the mapping `conf` that is not in `valid`: a typo must never train or
    decode with a default silently. `what` names the mapping (e.g. "encoder_conf"), `source` the
    file it came from."""
    unknown = sorted(set(conf or {}) - set(valid), key=str)
    if unknown:
        where = f"{source}: " if source else ""
        key = unknown[0]
        raise ConfigError(f"{where}unknown key {what}.{key}{nearest(key, valid)}; valid keys: "
                          f"{', '.join(sorted(map(str, valid)))}")


# OS errors whose message already names the file: reported like UserError.
FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def run_tool(main, argv=None, prog=None):
    """Run a tool's main(argv) and return its exit status: its own return value (0 for None), 1
    with a one-line message for a UserError or a missing file, 130 on Ctrl-C, 141 (a shell's
    SIGPIPE status) when the reader of its output has gone."""
    prog = prog or sys.argv[0].rsplit("/", 1)[-1]
    try:
        status = main(argv)
    except (UserError, *FILE_ERRORS) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `htr recognize ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    return 0 if status is None else int(status)
