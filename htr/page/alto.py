"""ALTO read into and written from htr's layout model (htr.page.layout).

    page = read("alto/p1.xml");  write(page, "out/p1.xml");  text = to_string(page, timestamp=None)

Reads ALTO v2, v3 and v4 alike (elements matched by local name, whatever the namespace), in pixels
only (another MeasurementUnit is a UserError). Read: the image's fileName, Page WIDTH/HEIGHT, every
TextBlock in file order (within margins and ComposedBlocks too) as a region; TextLines; Strings as
words and their Glyphs. Polygons come from Shape/Polygon@POINTS, else from the HPOS/VPOS/WIDTH/HEIGHT
box. BASELINE is ALTO 4.2's points "x1,y1 x2,y2", or older ALTO's single number: the y of a horizontal
baseline across the line. A line's text is its Strings' CONTENT joined by single spaces, plus the
HYP's content at its end; its conf the mean WC of its Strings (None without WC); words' conf is WC,
glyphs' GC.

Writes ALTO 4.2: Description (MeasurementUnit pixel, the image's fileName, a Processing step naming
the software), Layout/Page/PrintSpace, and per region a TextBlock, per line a TextLine with BASELINE,
per word a String (CONTENT, WC) with its Glyphs (CONTENT, GC) and an SP between Strings; each with
its box, and a Shape/Polygon when its polygon is not that box. The reading order is the block order.
What ALTO cannot hold: region types (PAGE's @type); a line's own conf beside its words' (read back as
their mean); a line without words (ALTO needs a String: it gets one spanning the line, with the line's
text and conf); glyphs that are not one character each (ALTO's Glyph CONTENT is one: that word's
glyphs are left out). Ids are made valid and unique, items without coordinates get their parts' box,
and regions with neither are left out, as pagexml.py does.
"""
import xml.etree.ElementTree as ET
from pathlib import Path

from htr.page.layout import Glyph, Page, Region, TextLine, Word, bbox, box_polygon
from htr.page.pagexml import (XSI, UniqueIds, XmlFile, attribute, child, children, describe, format_conf,
                              now, outline, parse_number, placed_regions)
from htr.utils.atomic import atomic_write_text

NS = "http://www.loc.gov/standards/alto/ns-v4#"
SCHEMA = "http://www.loc.gov/standards/alto/v4/alto-4-2.xsd"


# ---- reading ----

def read(path):
    return from_string(Path(path).read_bytes(), source=str(path))


def from_string(xml_text, source="<string>"):
    """A Page from ALTO XML (str or bytes); `source` names it in error messages."""
    xml = XmlFile(xml_text, source)
    check_unit(xml)
    layout = child(xml.root, "Layout")
    pages = [] if layout is None else children(layout, "Page")
    if not pages:
        raise xml.error(xml.root, f"not an ALTO file: no Layout/Page element in <{xml.root.tag}>")
    if len(pages) > 1:
        raise xml.error(pages[1], f"{len(pages)} Page elements: htr reads one page per ALTO file")
    file_name = find(xml.root, "Description", "sourceImageInformation", "fileName")
    return Page("" if file_name is None else (file_name.text or "").strip(),
                xml.size(pages[0], "WIDTH"), xml.size(pages[0], "HEIGHT"),
                [read_block(block, xml) for block in pages[0].iter("TextBlock")])


def check_unit(xml):
    unit = find(xml.root, "Description", "MeasurementUnit")
    name = "" if unit is None else (unit.text or "").strip()
    if name not in ("", "pixel"):
        raise xml.error(unit, f"MeasurementUnit {name!r} is not supported: htr reads ALTO in pixels only")


def read_block(element, xml):
    lines = [read_line(line, xml) for line in children(element, "TextLine")]
    return Region(element.get("ID", ""), read_shape(element, xml), lines)


def read_line(element, xml):
    coords = read_shape(element, xml)
    words = [read_string(s, xml) for s in children(element, "String")]
    hyphen = child(element, "HYP")
    text = " ".join(w.text for w in words) + ("" if hyphen is None else hyphen.get("CONTENT", ""))
    confs = [w.conf for w in words if w.conf is not None]
    return TextLine(element.get("ID", ""), coords, read_baseline(element, coords, xml), text,
                    sum(confs) / len(confs) if confs else None, words)


def read_baseline(element, coords, xml):
    text = element.get("BASELINE", "").strip()
    if not text:
        return None
    y = parse_number(text)
    if y is not None:  # before ALTO 4.2: one number, the baseline's y
        x0, _, x1, _ = bbox(coords)
        return [(x0, round(y)), (x1, round(y))]
    return xml.points(element, "BASELINE", f"{describe(element)}: BASELINE points")


def read_string(element, xml):
    glyphs = [Glyph(g.get("ID", ""), read_shape(g, xml), attribute(g, "CONTENT", xml), xml.conf(g, "GC"))
              for g in children(element, "Glyph")]
    return Word(element.get("ID", ""), read_shape(element, xml), attribute(element, "CONTENT", xml),
                xml.conf(element, "WC"), glyphs)


def read_shape(element, xml):
    """An element's Shape/Polygon, else its HPOS/VPOS/WIDTH/HEIGHT box."""
    polygon = find(element, "Shape", "Polygon")
    if polygon is not None:
        return xml.points(polygon, "POINTS", f"{describe(element)}: Polygon POINTS")
    x, y, width, height = (xml.number(element, name) for name in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
    return box_polygon(round(x), round(y), round(x + width), round(y + height))


def find(element, *path):
    """The first child of that name, its first child of the next name, ...; None where one is missing."""
    for tag in path:
        element = child(element, tag)
        if element is None:
            return None
    return element


# ---- writing ----

def write(page, path, creator="htr", timestamp=None):
    atomic_write_text(path, to_string(page, creator, timestamp))


def to_string(page, creator="htr", timestamp=None):
    """ALTO 4.2 XML of `page`; `creator` is the Processing step's softwareName, `timestamp` (ISO 8601)
    its processingDateTime, None for now."""
    ids = UniqueIds()
    root = ET.Element("alto", {"xmlns": NS, "xmlns:xsi": XSI,  # tags unqualified, in the default namespace
                               "xsi:schemaLocation": f"{NS} {SCHEMA}", "SCHEMAVERSION": "4.2"})
    description = ET.SubElement(root, "Description")
    ET.SubElement(description, "MeasurementUnit").text = "pixel"
    ET.SubElement(ET.SubElement(description, "sourceImageInformation"), "fileName").text = page.image_filename
    processing = ET.SubElement(description, "Processing", ID=ids("processing"))
    ET.SubElement(processing, "processingDateTime").text = timestamp or now()
    ET.SubElement(ET.SubElement(processing, "processingSoftware"), "softwareName").text = creator
    size = {"WIDTH": str(int(page.width)), "HEIGHT": str(int(page.height))}
    page_element = ET.SubElement(ET.SubElement(root, "Layout"), "Page", ID=ids("page"), PHYSICAL_IMG_NR="1", **size)
    print_space = ET.SubElement(page_element, "PrintSpace", HPOS="0", VPOS="0", **size)
    for i, region in enumerate(placed_regions(page), 1):
        write_block(print_space, region, ids(region.id, f"r{i}"), ids)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_block(parent, region, block_id, ids):
    coords = outline(region, region.lines)
    block = ET.SubElement(parent, "TextBlock", ID=block_id, **box(coords))
    write_shape(block, coords)
    for i, line in enumerate(region.lines, 1):
        write_line(block, line, ids(line.id, f"{block_id}_l{i}"), ids)


def write_line(parent, line, line_id, ids):
    coords = outline(line, line.words)
    element = ET.SubElement(parent, "TextLine", ID=line_id, **box(coords))
    if line.baseline:
        element.set("BASELINE", points_text(line.baseline))
    write_shape(element, coords)
    words = line.words or [Word("", box_polygon(*bbox(coords)), line.text, line.conf)]  # ALTO needs a String
    for i, word in enumerate(words, 1):
        if i > 1:
            write_space(element, words[i - 2], word)
        write_string(element, word, ids(word.id, f"{line_id}_w{i}"), ids)


def write_string(parent, word, word_id, ids):
    element = write_text_box(parent, "String", word, word_id, "WC", outline(word, word.glyphs))
    if all(len(glyph.text) == 1 for glyph in word.glyphs):  # ALTO's Glyph CONTENT is one character
        for i, glyph in enumerate(word.glyphs, 1):
            write_text_box(element, "Glyph", glyph, ids(glyph.id, f"{word_id}_g{i}"), "GC", outline(glyph, []))


def write_text_box(parent, tag, item, item_id, conf_name, coords):
    """A String or Glyph: ID, CONTENT, its conf as WC or GC, its box and Shape."""
    conf = {} if item.conf is None else {conf_name: format_conf(item.conf)}
    element = ET.SubElement(parent, tag, ID=item_id, CONTENT=item.text, **conf, **box(coords))
    write_shape(element, coords)
    return element


def write_space(parent, left, right):
    x0, y0, x1, _ = bbox(outline(left, left.glyphs))
    gap = bbox(outline(right, right.glyphs))[0] - x1
    ET.SubElement(parent, "SP", WIDTH=str(max(0, gap)), HPOS=str(x1), VPOS=str(y0))


def write_shape(element, polygon):
    """A Shape/Polygon, unless the polygon is the element's box (HPOS... say it already)."""
    if [tuple(p) for p in polygon] != box_polygon(*bbox(polygon)):
        ET.SubElement(ET.SubElement(element, "Shape"), "Polygon", POINTS=points_text(polygon))


def box(polygon):
    x0, y0, x1, y1 = bbox(polygon)
    return {"HPOS": str(round(x0)), "VPOS": str(round(y0)), "WIDTH": str(round(x1 - x0)), "HEIGHT": str(round(y1 - y0))}


def points_text(points):
    return " ".join(f"{round(x)},{round(y)}" for x, y in points)
