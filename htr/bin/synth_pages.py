"""Write synthetic handwritten pages with exact ground truth, in Transkribus' export layout:
<out_dir>/<page>.png and <out_dir>/page/<page>.xml (PAGE XML: regions, line polygons, baselines,
text, reading order), which every page tool reads (htr seg_train, htr page_data_prep).

    python -m htr.bin.synth_pages pages/train --num 400 --seed 1 --fonts_dir local/fonts \
        --font_list local/fonts/train.list --text local/text/moby_dick.txt.gz --text_part train --nj 2

Writers and text parts follow the line corpus (htr/page/synth.py), so test pages hold test hands
and test paragraphs only. Deterministic for a seed, whatever --nj.
"""
import argparse
import random
from multiprocessing import Pool
from pathlib import Path

from htr.corpora.handwriting import Writer, font_files, read_name_list
from htr.corpora.line_text import PARTS, part_of, read_paragraphs
from htr.errors import UserError, run_tool
from htr.page import pagexml
from htr.page.synth import compose_page
from htr.utils.atomic import atomic_path
from htr.utils.progress import Progress

_state = {}


def _init(fonts, paragraphs):
    _state["writers"] = [Writer(n, f) for n, f in fonts.items()]
    _state["paragraphs"] = paragraphs


def _render(job):
    """(index, seed, out_dir) -> lines on the page; one rng per page, so any nj gives the same pages."""
    index, seed, out_dir, prefix = job
    page_id = f"{prefix}{index:05d}"
    image, page = compose_page(_state["writers"], _state["paragraphs"], random.Random(f"page-{seed}-{index}"), page_id)
    with atomic_path(Path(out_dir) / page.image_filename, suffix=".png") as tmp:
        image.save(tmp)
    pagexml.write(page, Path(out_dir) / "page" / f"{page_id}.xml", timestamp="2026-01-01T00:00:00")
    return len(page.lines())


def main(argv=None):
    p = argparse.ArgumentParser(prog="htr synth_pages", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir")
    p.add_argument("--num", type=int, default=10, help="pages")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fonts_dir", required=True, help="<dir>/<font name>/<file>.woff2|ttf: one writer per font")
    p.add_argument("--font_list", default=None, help="file naming the fonts (writers) to use; default all")
    p.add_argument("--text", required=True, help="text (.txt or .txt.gz, a paragraph per line)")
    p.add_argument("--text_part", default="train", choices=PARTS)
    p.add_argument("--prefix", default=None, help="page id prefix (default: <out_dir name>_)")
    p.add_argument("--nj", type=int, default=1)
    args = p.parse_args(argv)
    fonts = font_files(args.fonts_dir, read_name_list(args.font_list) if args.font_list else None)
    paragraphs = [t for i, t in enumerate(read_paragraphs(args.text)) if part_of(i) == args.text_part]
    if not fonts or not paragraphs:
        raise UserError(f"{args.fonts_dir if not fonts else args.text}: no {'fonts' if not fonts else 'paragraphs'}")
    out = Path(args.out_dir)
    (out / "page").mkdir(parents=True, exist_ok=True)
    prefix = args.prefix if args.prefix is not None else f"{out.name}_"
    jobs = [(i, args.seed, str(out), prefix) for i in range(args.num)]
    lines = 0
    with Progress(len(jobs), desc=f"composing {out}", unit="page") as progress:
        if args.nj > 1:
            with Pool(args.nj, _init, (fonts, paragraphs)) as pool:
                for n in pool.imap_unordered(_render, jobs):
                    lines += n
                    progress.update()
        else:
            _init(fonts, paragraphs)
            for n in map(_render, jobs):
                lines += n
                progress.update()
    print(f"wrote {args.num} pages ({lines} lines) to {out}")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
