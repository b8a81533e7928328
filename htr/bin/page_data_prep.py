"""A data dir of line images from PAGE XML pages (a Transkribus export, READ 2016, Bentham,
NorHand, ...): every TextLine with text is cut from its page (htr.page.crop) and saved as a PNG.

    python3 -m htr.bin.page_data_prep <pages_dir> <data_dir> [--crop polygon|bbox] [--min_height N]

<pages_dir> holds page images (jpg, png, tif) with their PAGE XML in page/<image stem>.xml, as
Transkribus exports them, or beside them; folders below it are searched too. The image is the one
the XML names (imageFilename), else the one of the XML's stem.

Writes <data_dir>/{text,utt2spk,spk2utt,img.scp,utt2page} and images/<utt>.png. The speaker is the
writer where the PAGE file names one (@custom "writer {id:X;}" on a TextLine, its TextRegion or the
Page, or a "writer" UserAttribute or MetadataItem in its Metadata), else the page; utterance ids
are <speaker>-<page>-<line> (<page>-<line> without a writer), as Kaldi wants the speaker a prefix.
Every line not kept is reported on stderr and listed in <data_dir>/skipped as `<file> <line id>
<reason>` (no text, degenerate polygon, image missing, too small; an XML file that cannot be read
is one entry, line id `-`).
"""
import argparse
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image

from htr.data.datadir import write_data_dir, write_kv
from htr.errors import UserError, run_tool
from htr.page import pagexml
from htr.page.corpus import find_image, find_page_files, image_folder
from htr.page.crop import MODES, DegenerateLine, crop_line
from htr.utils.atomic import atomic_path, atomic_write_text, clean_temp_files
from htr.utils.progress import Progress

REASONS = ("no text", "degenerate polygon", "image missing", "unreadable XML", "too small")


def safe_id(text):
    """A Kaldi id part: ASCII letters, digits, '.' and '_' only ('-' joins the parts)."""
    return re.sub(r"[^A-Za-z0-9._]", "_", text) or "_"


def page_id(xml_file, pages_dir):
    """The page's folder below pages_dir and its stem, joined by '_' (two documents may both
    have a page 0001)."""
    folder = image_folder(xml_file).relative_to(pages_dir)
    return safe_id("_".join((*folder.parts, xml_file.stem)))


def local_name(element):
    return element.tag.rsplit("}", 1)[-1]


def custom_writer(element):
    """X of a Transkribus-style @custom 'writer {id:X;}', or None."""
    m = re.search(r"writer\s*\{[^}]*?\bid\s*:\s*([^;}]+)", element.get("custom", ""))
    return m.group(1).strip() if m else None


def metadata_writer(root):
    """The writer a page's Metadata names (UserAttribute or MetadataItem "writer"), or None."""
    for metadata in (e for e in root.iter() if local_name(e) == "Metadata"):
        for element in metadata.iter():
            if local_name(element) in ("UserAttribute", "MetadataItem") and element.get("name", "").lower() == "writer":
                return element.get("value") or None
    return None


def line_writers(root):
    """{line id: writer or None}: a line's own writer, else its region's, its page's, the Metadata's."""
    found = {}

    def visit(element, inherited):
        writer = custom_writer(element) or inherited
        if local_name(element) == "TextLine":
            found[element.get("id")] = writer
        for child in element:
            visit(child, writer)
    visit(root, metadata_writer(root))
    return found


class Prep:
    """The data dir being made: kept lines and skipped ones, reported as they happen."""

    def __init__(self, pages_dir, data_dir, crop, min_height):
        self.pages_dir, self.data_dir, self.crop, self.min_height = Path(pages_dir), Path(data_dir), crop, min_height
        self.text, self.utt2spk, self.img_scp, self.utt2page = {}, {}, {}, {}
        self.skipped, self.pages = [], 0

    def skip(self, xml_file, line_id, reason, detail=""):
        name = xml_file.relative_to(self.pages_dir).as_posix()
        entry = f"{name} {line_id} {reason}" + (f": {detail}" if detail else "")
        print(f"page_data_prep: skipped {entry}", file=sys.stderr)
        self.skipped.append((reason, entry))

    def add_page(self, xml_file):
        try:
            page = pagexml.read(xml_file)
            writers = line_writers(ET.parse(xml_file).getroot())
        except (UserError, ValueError, SyntaxError, OSError) as e:  # ET's ParseError is a SyntaxError
            self.skip(xml_file, "-", "unreadable XML", str(e).splitlines()[0] if str(e) else type(e).__name__)
            return
        self.pages += 1
        pid = page_id(xml_file, self.pages_dir)
        lines = [line for line in page.lines() if self.has_text(xml_file, line)]
        if not lines:
            return
        image_file = find_image(xml_file, page)
        image = open_image(image_file) if image_file else None
        for line in lines:
            if image is None:
                self.skip(xml_file, line.id, "image missing", f"{image_file} unreadable" if image_file else
                          f"no {page.image_filename or xml_file.stem + '.*'} in {image_folder(xml_file)}")
            else:
                self.add_line(xml_file, pid, line, image, writers.get(line.id))

    def has_text(self, xml_file, line):
        if not line.text.strip():
            self.skip(xml_file, line.id, "no text")
            return False
        return True

    def add_line(self, xml_file, pid, line, image, writer):
        try:
            crop = crop_line(image, line, mode=self.crop)
        except DegenerateLine as e:
            self.skip(xml_file, line.id, "degenerate polygon", str(e))
            return
        if crop.height < self.min_height:
            self.skip(xml_file, line.id, "too small", f"{crop.height} px high, --min_height {self.min_height}")
            return
        speaker = safe_id(writer) if writer else pid
        utt = unique(f"{safe_id(writer)}-{pid}-{safe_id(line.id)}" if writer else f"{pid}-{safe_id(line.id)}",
                     self.text)
        path = (self.data_dir / "images" / f"{utt}.png").resolve()
        with atomic_path(path, suffix=".png") as tmp:  # a killed run leaves no half image
            crop.save(tmp)
        self.text[utt] = " ".join(line.text.split())  # one Kaldi line: no newline or tab inside
        self.utt2spk[utt], self.img_scp[utt], self.utt2page[utt] = speaker, str(path), pid

    def write(self):
        write_data_dir(self.data_dir, self.text, utt2spk=self.utt2spk, img_scp=self.img_scp)
        write_kv(self.data_dir / "utt2page", self.utt2page)
        atomic_write_text(self.data_dir / "skipped", "".join(entry + "\n" for _, entry in self.skipped))

    def summary(self):
        counts = ", ".join(f"{r}: {sum(reason == r for reason, _ in self.skipped)}" for r in REASONS)
        return f"kept {len(self.text)} lines of {self.pages} pages; skipped {len(self.skipped)} ({counts})"


def open_image(path):
    """The page image, loaded, or None for a file Pillow cannot read."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except (OSError, SyntaxError, ValueError):  # truncated, not an image, bad header
        return None


def unique(utt, taken):
    """`utt`, or `utt_2`, `utt_3`... when two ids became one by safe_id."""
    n, candidate = 1, utt
    while candidate in taken:
        n += 1
        candidate = f"{utt}_{n}"
    return candidate


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pages_dir", help="page images with their PAGE XML (in page/ or beside them)")
    p.add_argument("data_dir", help="the data dir to write")
    p.add_argument("--crop", choices=MODES, default="polygon",
                   help="polygon: masked to the line and deskewed along its baseline; bbox: its box as it is")
    p.add_argument("--min_height", type=int, default=8, help="skip line images lower than this (px)")
    args = p.parse_args(argv)
    if not Path(args.pages_dir).is_dir():
        raise UserError(f"{args.pages_dir}: not a directory")
    xml_files = find_page_files(args.pages_dir)
    if not xml_files:
        raise UserError(f"{args.pages_dir}: no PAGE XML files (expected page/<image stem>.xml beside the images)")
    prep = Prep(args.pages_dir, args.data_dir, args.crop, args.min_height)
    (prep.data_dir / "images").mkdir(parents=True, exist_ok=True)
    clean_temp_files(prep.data_dir / "images")
    with Progress(len(xml_files), desc=f"cropping lines of {args.pages_dir}", unit="page") as progress:
        for xml_file in xml_files:
            prep.add_page(xml_file)
            progress.update()
    prep.write()
    print(prep.summary())
    if not prep.text:
        raise UserError(f"no line kept from {args.pages_dir}: see {prep.data_dir / 'skipped'}")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
