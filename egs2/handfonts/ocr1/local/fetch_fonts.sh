#!/usr/bin/env bash
# Fetch handwriting fonts (writers) from the npm packages @fontsource/<name>. A maintainer's tool
# that documents how local/fonts/ was filled; the recipe never runs it (the fonts are vendored).
#
#   local/fetch_fonts.sh candidates           # Google Fonts "handwriting" ids (from the npm
#                                             # package google-font-metadata) not yet in fonts/
#   local/fetch_fonts.sh [-d DIR] NAME...     # fetch each into DIR/<name>/ (default: local/fonts)
#
# For each NAME it runs `npm pack @fontsource/NAME` and keeps, unchanged, the Latin 400-weight
# normal-style woff2 (or the lowest weight there is if 400 is missing) and the LICENSE file. A
# font is refused (reason on stderr, nothing written) if its licence is not OFL-1.1 or
# Apache-2.0, if the woff2 is over 300 KB, or if Pillow cannot render it or it lacks a glyph of
# the check set below (htr.corpora.handwriting.Writer.covers). Each kept font's README table row
# ("| name | @fontsource/name@version | licence |") goes to stdout. Whether the glyphs are
# legible handwriting is judged by eye afterwards (render a sample line of each).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
python=${PYTHON:-$root/tools/venv/bin/python}
dest=$here/fonts
max_bytes=$((300 * 1024))
check_chars='abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'"'"'"-()&'

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "${1:-}" = candidates ]; then
  (cd "$work" && npm pack --silent google-font-metadata >/dev/null && tar xzf ./*.tgz)
  "$python" - "$work/package/data/google-fonts-v1.json" "$dest" <<'EOF'
import json, sys
from pathlib import Path
fonts, have = json.load(open(sys.argv[1])), {p.name for p in Path(sys.argv[2]).iterdir()}
for fid, meta in sorted(fonts.items()):
    if (meta.get("category") == "handwriting" and "latin" in meta["subsets"]
            and "normal" in meta["styles"] and fid not in have):
        print(fid)
EOF
  exit 0
fi

if [ "${1:-}" = -d ]; then dest=$2; shift 2; fi
[ $# -gt 0 ] || { sed -n '2,16p' "$0"; exit 1; }

for name in "$@"; do
  pkg=$work/$name
  mkdir -p "$pkg"
  if ! (cd "$pkg" && npm pack --silent "@fontsource/$name" >/dev/null 2>&1 && tar xzf ./*.tgz); then
    echo "$name: rejected: npm pack @fontsource/$name failed (not published?)" >&2; rm -rf "$pkg"; continue
  fi
  version=$("$python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
    "$pkg/package/package.json")
  woff2=
  for weight in 400 100 200 300 500 600 700 800 900; do  # 400, else the lowest there is
    f=$pkg/package/files/$name-latin-$weight-normal.woff2
    if [ -f "$f" ]; then woff2=$f; break; fi
  done
  lic_file=$pkg/package/LICENSE
  if [ -z "$woff2" ]; then
    echo "$name: rejected: no latin normal-style woff2 in the package" >&2; rm -rf "$pkg"; continue
  fi
  if [ ! -f "$lic_file" ]; then
    echo "$name: rejected: the package ships no LICENSE file" >&2; rm -rf "$pkg"; continue
  fi
  if grep -qi 'SIL OPEN FONT LICENSE' "$lic_file"; then licence=OFL-1.1
  elif grep -qi 'Apache License' "$lic_file"; then licence=Apache-2.0
  else echo "$name: rejected: licence is neither OFL-1.1 nor Apache-2.0" >&2; rm -rf "$pkg"; continue
  fi
  size=$(stat -c %s "$woff2")
  if [ "$size" -gt "$max_bytes" ]; then
    echo "$name: rejected: $(basename "$woff2") is $size bytes (over 300 KB)" >&2; rm -rf "$pkg"; continue
  fi
  if ! why=$(cd "$root" && "$python" - "$name" "$woff2" "$check_chars" 2>&1 <<'EOF'
import sys
from htr.corpora.handwriting import Writer
name, path, chars = sys.argv[1:]
writer = Writer(name, path)
missing = "".join(sorted(c for c in set(chars) if not writer.has_glyph(c)))
if missing:
    sys.exit(f"no glyph for {missing!r}")
EOF
  ); then
    echo "$name: rejected: ${why##*$'\n'}" >&2; rm -rf "$pkg"; continue
  fi
  mkdir -p "$dest/$name"
  cp "$woff2" "$lic_file" "$dest/$name/"
  echo "| $name | @fontsource/$name@$version | $licence |"
  rm -rf "$pkg"
done
