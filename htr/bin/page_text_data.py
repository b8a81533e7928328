"""Write a data dir of whole pages for image-to-sequence training: one utterance per page image,
its text the page transcript (PAGE XML lines in reading order) with each line break written as
the token NEWLINE, U+2424 '␤'.

    python -m htr.bin.page_text_data ../seg1/pages/train data/train

The break is the token alone, no spaces around it ("line one␤line two"): a char model then
spends one output step per break, and turning '␤' back into '\\n' gives the transcript exactly
(htr.bin.page_text_score). utt2spk maps each page to itself (a synthetic page has many writers).
Kaldi's text format strips the ends of a transcript, so white space before the first or after the
last line is lost; none is visible on the page.
"""
import argparse
from pathlib import Path

from htr.data.datadir import write_data_dir
from htr.errors import UserError, run_tool
from htr.page.corpus import page_files

NEWLINE = "\u2424"


def to_tokens(transcript):
    """A page transcript (lines joined by newlines) -> a Kaldi text value."""
    return transcript.replace("\n", NEWLINE)


def to_transcript(text):
    """A Kaldi text value (a reference or a hypothesis) -> the page transcript."""
    return text.replace(NEWLINE, "\n")


def page_entries(pages_dir):
    """-> {page id: (image path, text value)} of every page with PAGE XML in `pages_dir`."""
    entries = {}
    for image, xml, page in page_files(pages_dir):
        page_id = "_".join(image.stem.split())  # a key is one word ("scan 1.jpg" -> scan_1)
        if page_id in entries:
            raise UserError(f"{image}: page id {page_id!r} also names {entries[page_id][0]}")
        transcript = page.text()
        if NEWLINE in transcript:  # it would read back as a line break
            raise UserError(f"{xml}: the transcript holds the line-break token {NEWLINE!r} itself")
        entries[page_id] = (image.resolve(), to_tokens(transcript))
    if not entries:
        raise UserError(f"{pages_dir}: no page images with PAGE XML (<image> + page/<stem>.xml)")
    return entries


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pages_dir", help="page images with their PAGE XML in page/ (Transkribus' export layout)")
    p.add_argument("data_dir", help="the data dir to write (text, utt2spk, spk2utt, img.scp)")
    args = p.parse_args(argv)
    entries = page_entries(args.pages_dir)
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    write_data_dir(args.data_dir, {u: text for u, (_, text) in entries.items()},
                   utt2spk={u: u for u in entries}, img_scp={u: str(image) for u, (image, _) in entries.items()})
    print(f"{args.data_dir}: {len(entries)} pages")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
