"""Write a data dir of synthetic line images: img.scp, text, utt2spk, spk2utt, and the PNGs
(and word_segments, the renderer's word spans, with --fonts_dir).

Handwriting fonts as writers (each font is a speaker; utterance ids start with its name), text
cut from a book's paragraphs of one part:

    python -m htr.bin.synth_lines data/train --num 3000 --seed 1 --fonts_dir local/fonts \
        --font_list local/fonts/train.list --text local/text/moby_dick.txt.gz --text_part train --nj 2

Several text sources mix by weight (htr.corpora.line_text.source_lines), and `--style` draws
each line with the realistic renderer (htr.data.handwriting: pen, paper and scanner effects;
`train` for training data, `ood` for the held-out check):

    python -m htr.bin.synth_lines data/train --num 40000 --fonts_dir local/fonts \
        --font_list local/fonts/train.list --style train --min_chars 4 --max_chars 70 \
        --text local/text/moby_dick.txt.gz@0.6 \
        --text records=local/text/first_names.txt,local/text/us_states.txt@0.2 \
        --text words=local/text/moby_dick.txt.gz@0.2

Without --fonts_dir: Pillow's built-in font and a small word list (quick smoke data for tests).
"""
import argparse
import random
from multiprocessing import Pool
from pathlib import Path

from htr.data.datadir import write_data_dir
from htr.corpora.handwriting import Writer, font_files, read_name_list, render_handwritten_line, token_spans
from htr.corpora.line_text import PARTS, source_lines
from htr.data.handwriting import STYLES, render_realistic_line
from htr.corpora.synth import random_line, render_line
from htr.data.word_segments import write_word_segments
from htr.utils.progress import Progress
from htr.errors import UserError, run_tool

_writers = {}


def _render_job(job):
    """(index, seed, text, writer name, font file, png path, style, neighbour texts) -> (index,
    word spans or None); one rng per line, so any nj gives the same images."""
    index, seed, text, name, font_file, path, style, neighbours = job
    rng = random.Random(f"{seed}-{index}")
    spans = None
    if name is None:
        image = render_line(text, rng)
    else:
        if name not in _writers:
            _writers[name] = Writer(name, font_file)
        if style:  # the realistic renderer knows no word spans: its glyphs move after placing
            image = render_realistic_line(text, _writers[name], rng, style, neighbours)
        else:
            image, char_spans = render_handwritten_line(text, _writers[name], rng, with_char_spans=True)
            spans = token_spans(text, char_spans)
    image.save(path)
    return index, spans


def plan_font_lines(args):
    """-> [(utt, text, writer name, font file)] with writers taken in turn, each line given to the
    next writer whose font has all its characters."""
    names = read_name_list(args.font_list) if args.font_list else None
    fonts = font_files(args.fonts_dir, names)
    writers = [Writer(n, f) for n, f in fonts.items()]
    try:
        lines = source_lines(args.text, args.text_part, args.num, args.seed, args.min_chars, args.max_chars)
    except ValueError as e:  # a bad source spec or a text with no usable lines
        raise UserError(str(e)) from None
    plan, uncovered = [], 0
    for i, text in enumerate(lines):
        for k in range(len(writers)):
            writer = writers[(i + k) % len(writers)]
            if writer.covers(text):
                plan.append((f"{writer.name}-{i:06d}", text, writer.name, writer.font_file))
                break
        else:
            uncovered += 1
    if uncovered:
        print(f"skipped {uncovered} lines no font covers")
    return plan


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    p.add_argument("--num", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--prefix", default=None, help="utterance id prefix without fonts (default: the dir name)")
    p.add_argument("--fonts_dir", default=None, help="<dir>/<font name>/<file>.woff2|ttf: one writer per font")
    p.add_argument("--font_list", default=None, help="file naming the fonts (writers) to use; default all")
    p.add_argument("--text", action="append", default=None,
                   help="text source [KIND=]PATH[@WEIGHT], repeatable: a book (.txt or .txt.gz, a paragraph "
                        "per line) to cut lines from, records=NAMES[,PLACES] or words=BOOK")
    p.add_argument("--text_part", default="train", choices=PARTS, help="which paragraphs (1 in 20 valid, 1 test)")
    p.add_argument("--min_chars", type=int, default=20)
    p.add_argument("--max_chars", type=int, default=45)
    p.add_argument("--style", default=None, choices=sorted(STYLES),
                   help="realistic renderer settings (htr.data.handwriting); default: the plain font renderer")
    p.add_argument("--nj", type=int, default=1, help="parallel rendering processes")
    args = p.parse_args(argv)
    if args.style and not args.fonts_dir:
        p.error("--style needs --fonts_dir")
    data_dir = Path(args.data_dir)
    image_dir = data_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    if args.fonts_dir:
        if not args.text:
            p.error("--fonts_dir needs --text")
        plan = plan_font_lines(args)
    else:
        rng = random.Random(args.seed)
        prefix = args.prefix or data_dir.name
        plan = [(f"{prefix}-{i:05d}", random_line(rng), None, None) for i in range(args.num)]
    jobs = [(i, args.seed, text, name, font, str((image_dir / f"{utt}.png").resolve()), args.style,
             [plan[j % len(plan)][1] for j in (i - 1, i + 1) if j % len(plan) != i])  # lines above and below
            for i, (utt, text, name, font) in enumerate(plan)]
    segments = {}
    with Progress(len(jobs), desc=f"rendering {data_dir}", unit="line") as progress:
        pool = Pool(args.nj) if args.nj > 1 else None
        for index, spans in (pool.imap_unordered(_render_job, jobs, chunksize=16) if pool else map(_render_job, jobs)):
            progress.update()
            if spans:
                segments[plan[index][0]] = spans
        if pool:
            pool.close()
            pool.join()
    text = {utt: line for utt, line, _, _ in plan}
    utt2spk = {utt: (name or utt) for utt, _, name, _ in plan}
    img_scp = {utt: job[5] for (utt, _, _, _), job in zip(plan, jobs)}
    write_data_dir(data_dir, text, utt2spk=utt2spk, img_scp=img_scp)
    if segments:  # the renderer knows where each word is (htr/data/word_segments.py)
        write_word_segments(data_dir / "word_segments", segments)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
