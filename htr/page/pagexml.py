"""PAGE XML read into and written from htr's layout model (htr.page.layout).

    page = read("page/p1.xml");  write(page, "out/p1.xml");  text = to_string(page, timestamp=None)

Reads PAGE 2010, 2013, 2017 and 2019 files alike: elements are matched by their local names, whatever
the namespace (Transkribus, eScriptorium and OCR-D exports vary), coordinates as @points or as 2010's
<Point x= y=> children. Read: Page@imageFilename/imageWidth/imageHeight; every TextRegion, nested ones
flattened (parent first), sorted by the ReadingOrder (nested groups flattened; regions it does not
list follow in document order); @type, or Transkribus' @custom "structure {type:...;}"; each region's
TextLines in document order with Coords, Baseline, TextEquiv (the one with index="1", else the first:
Unicode and @conf), Words and Glyphs the same way. A line without TextEquiv gets its words' texts
joined by spaces, a word without one its glyphs' texts. Coordinates with decimals are rounded.

Writes the 2019-07-15 schema, valid against its XSD: Metadata, ReadingOrder (an OrderedGroup with
every region), TextRegion > TextLine > Word > Glyph, each with Coords, Baseline (lines) and TextEquiv,
in the XSD's element order. What the schema cannot hold is made to fit:
  ids: characters an XML id cannot hold become "_", an id that cannot start one gets "_" in front,
       a missing one is made from its parent's ("r2", "r2_l1", "r2_l1_w3", ...), a repeated one gets
       "_2", "_3", ...;
  types outside TextTypeSimpleType go to @custom as "structure {type:...;}" (read back from there);
  negative coordinates are written as 0, a one-point polygon as that point twice, an item without
  coordinates gets the box around its parts' (a region around its lines), and a region with neither
  coordinates nor lines is left out;
  confidences are clamped to [0, 1].

A file that cannot be read raises htr.errors.UserError with one line naming the file and the line:
    page/p1.xml:12: TextLine l3: Coords points '10,x 20,30' are not 'x,y x,y ...'
The XML helpers here (XmlFile, UniqueIds, points) are alto.py's too.
"""
import math
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from xml.parsers import expat

from htr.errors import UserError
from htr.page.layout import Glyph, Page, Region, TextLine, Word, hull_box
from htr.utils.atomic import atomic_write_text

NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
TEXT_TYPES = {"paragraph", "heading", "caption", "header", "footer", "page-number", "drop-capital",
              "credit", "floating", "signature-mark", "catch-word", "marginalia", "footnote",
              "footnote-continued", "endnote", "TOC-entry", "list-label", "other"}  # TextTypeSimpleType
# a region type in @custom: Transkribus writes "structure {type:X;}", kraken "type {type:X;}"
CUSTOM_TYPE = re.compile(r"(?:structure|type)\s*\{[^}]*?type:([^;}]+)")


# ---- reading ----

def read(path):
    return from_string(Path(path).read_bytes(), source=str(path))


def from_string(xml_text, source="<string>"):
    """A Page from PAGE XML (str or bytes); `source` names it in error messages."""
    xml = XmlFile(xml_text, source)
    page = child(xml.root, "Page")
    if page is None:
        raise xml.error(xml.root, f"not a PAGE file: no Page element in <{xml.root.tag}>")
    result = Page(attribute(page, "imageFilename", xml), xml.size(page, "imageWidth"),
                  xml.size(page, "imageHeight"), [read_region(r, xml) for r in page.iter("TextRegion")])
    position = {}
    for region_id in reading_order(page, xml):
        position.setdefault(region_id, len(position))
    result.regions.sort(key=lambda r: position.get(r.id, len(position)))  # stable: unlisted keep their order
    return result


def reading_order(page, xml):
    """Region ids in the order of the page's ReadingOrder, nested groups flattened; [] without one."""
    order = child(page, "ReadingOrder")
    return [] if order is None else [i for group in order for i in group_ids(group, xml)]


def group_ids(group, xml):
    ids = [group.get("regionRef")] if group.get("regionRef") else []
    members = [m for m in group if m.tag.startswith(("RegionRef", "OrderedGroup", "UnorderedGroup"))]
    if group.tag.startswith("OrderedGroup"):
        members.sort(key=lambda m: xml.integer(m, "index"))
    for member in members:
        ids += [member.get("regionRef")] if member.tag.startswith("RegionRef") else group_ids(member, xml)
    return ids


def read_region(element, xml):
    lines = [read_line(line, xml) for line in children(element, "TextLine")]
    custom = CUSTOM_TYPE.search(element.get("custom", ""))
    kind = element.get("type") or (custom.group(1).strip() if custom else "paragraph")
    return Region(element.get("id", ""), read_points(element, "Coords", xml), lines, kind)


def read_line(element, xml):
    words = [read_word(word, xml) for word in children(element, "Word")]
    text, conf = read_text_equiv(element, xml)
    baseline = read_points(element, "Baseline", xml) if child(element, "Baseline") is not None else None
    return TextLine(element.get("id", ""), read_points(element, "Coords", xml), baseline,
                    " ".join(w.text for w in words) if text is None else text, conf, words)


def read_word(element, xml):
    glyphs = [Glyph(g.get("id", ""), read_points(g, "Coords", xml), *read_text_equiv(g, xml, ""))
              for g in children(element, "Glyph")]
    text, conf = read_text_equiv(element, xml)
    return Word(element.get("id", ""), read_points(element, "Coords", xml),
                "".join(g.text for g in glyphs) if text is None else text, conf, glyphs)


def read_text_equiv(element, xml, default=None):
    """(Unicode text, conf) of the TextEquiv with index="1", else of the first; (default, None) without one."""
    equivs = children(element, "TextEquiv")
    if not equivs:
        return default, None
    equiv = next((e for e in equivs if e.get("index", "").strip() == "1"), equivs[0])
    unicode = child(equiv, "Unicode")
    return ("" if unicode is None else unicode.text or ""), xml.conf(equiv, "conf")


def read_points(element, tag, xml):
    """The polygon of `element`'s Coords (or Baseline): @points, or PAGE 2010's Point children."""
    coords = child(element, tag)
    if coords is None:
        raise xml.error(element, f"{describe(element)}: no {tag}")
    if "points" in coords.attrib:
        return xml.points(coords, "points", f"{describe(element)}: {tag} points")
    points = [(xml.integer(p, "x"), xml.integer(p, "y")) for p in children(coords, "Point")]
    if not points:
        raise xml.error(coords, f"{describe(element)}: {tag} has neither points nor Point children")
    return points


def describe(element):
    """'TextLine l3' (an element's tag and PAGE id or ALTO ID), for messages."""
    name = element.get("id") or element.get("ID")
    return f"{element.tag} {name}" if name else element.tag


def attribute(element, name, xml):
    if name not in element.attrib:
        raise xml.error(element, f"{describe(element)}: no {name} attribute")
    return element.get(name)


def child(element, tag):
    return next((c for c in element if c.tag == tag), None)


def children(element, tag):
    return [c for c in element if c.tag == tag]


class XmlFile:
    """A parsed XML file: `root` with namespaces dropped from tag and attribute names (so any PAGE or
    ALTO version reads alike), and each element's line, for errors that name file and line."""

    def __init__(self, data, source):
        self.source, self.lines = source, {}
        builder = ET.TreeBuilder()
        parser = expat.ParserCreate(namespace_separator="}")  # ET's own parser does not tell lines

        def start(tag, attrs):
            element = builder.start(local_name(tag), {local_name(k): v for k, v in attrs.items()})
            self.lines[element] = parser.CurrentLineNumber

        parser.StartElementHandler = start
        parser.EndElementHandler = lambda tag: builder.end(local_name(tag))
        parser.CharacterDataHandler = builder.data
        parser.buffer_text = True
        try:
            parser.Parse(data, True)
        except expat.ExpatError as e:
            raise UserError(f"{source}:{e.lineno}: not well-formed XML ({expat.ErrorString(e.code)})") from None
        self.root = builder.close()

    def error(self, element, why):
        return UserError(f"{self.source}:{self.lines.get(element, '?')}: {why}")

    def number(self, element, name, required=True):
        """A finite float attribute; None when missing and not required."""
        text = element.get(name)
        if text is None and not required:
            return None
        value = parse_number(attribute(element, name, self))
        if value is None:
            raise self.error(element, f"{describe(element)}: {name} {text!r} is not a number")
        return value

    def integer(self, element, name):
        return round(self.number(element, name))

    def size(self, element, name):
        """An image width or height: a positive whole number of pixels."""
        value = self.number(element, name)
        if value < 1 or value > 1e6 or value != round(value):
            raise self.error(element, f"{describe(element)}: {name} {element.get(name)!r} is not an image size in pixels")
        return int(value)

    def conf(self, element, name):
        """A confidence attribute in [0, 1], or None when missing."""
        value = self.number(element, name, required=False)
        if value is not None and not 0 <= value <= 1:
            raise self.error(element, f"{describe(element)}: {name} {element.get(name)!r} is not in [0, 1]")
        return value

    def points(self, element, name, what):
        """'x,y x,y ...' (or 'x y x y ...') as [(x, y), ...], rounded to pixels."""
        text = element.get(name, "")
        numbers = [parse_number(n) for n in re.split(r"[\s,]+", text.strip())]
        if len(numbers) % 2 or None in numbers:
            raise self.error(element, f"{what} {text!r} are not 'x,y x,y ...'")
        return [(round(x), round(y)) for x, y in zip(numbers[::2], numbers[1::2])]


def local_name(name):
    return name.rsplit("}", 1)[-1]


def parse_number(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# ---- writing ----

def write(page, path, creator="htr", timestamp=None):
    atomic_write_text(path, to_string(page, creator, timestamp))


def to_string(page, creator="htr", timestamp=None):
    """PAGE 2019-07-15 XML of `page`; `timestamp` (ISO 8601) is Metadata's Created and LastChange,
    None for now."""
    ids = UniqueIds()
    root = ET.Element("PcGts", {"xmlns": NS, "xmlns:xsi": XSI,  # tags unqualified, in the default namespace
                                "xsi:schemaLocation": f"{NS} {NS}/pagecontent.xsd"})
    metadata, stamp = ET.SubElement(root, "Metadata"), timestamp or now()
    for tag, text in (("Creator", creator), ("Created", stamp), ("LastChange", stamp)):
        ET.SubElement(metadata, tag).text = text
    page_element = ET.SubElement(root, "Page", imageFilename=page.image_filename,
                                 imageWidth=str(int(page.width)), imageHeight=str(int(page.height)))
    regions = placed_regions(page)
    region_ids = [ids(region.id, f"r{i}") for i, region in enumerate(regions, 1)]
    if regions:
        group = ET.SubElement(ET.SubElement(page_element, "ReadingOrder"), "OrderedGroup", id=ids("reading_order"))
        for index, region_id in enumerate(region_ids):
            ET.SubElement(group, "RegionRefIndexed", index=str(index), regionRef=region_id)
    for region, region_id in zip(regions, region_ids):
        write_region(page_element, region, region_id, ids)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def placed_regions(page):
    """The regions there is something to write for: a region with neither coords nor lines has none."""
    return [region for region in page.regions if region.coords or region.lines]


def write_region(parent, region, region_id, ids):
    element = ET.SubElement(parent, "TextRegion", id=region_id)
    if region.type in TEXT_TYPES:
        element.set("type", region.type)
    elif region.type:
        element.set("custom", f"structure {{type:{region.type};}}")
    write_points(element, "Coords", outline(region, region.lines))
    for i, line in enumerate(region.lines, 1):
        write_text_element(element, "TextLine", line, ids(line.id, f"{region_id}_l{i}"), ids)


PARTS = {"TextLine": ("Word", "words", "w"), "Word": ("Glyph", "glyphs", "g"), "Glyph": (None, None, None)}


def write_text_element(parent, tag, item, item_id, ids):
    """A TextLine, Word or Glyph: Coords, Baseline (lines), its words or glyphs, TextEquiv (the XSD's order)."""
    part_tag, parts_name, letter = PARTS[tag]
    parts = getattr(item, parts_name) if parts_name else []
    element = ET.SubElement(parent, tag, id=item_id)
    write_points(element, "Coords", outline(item, parts))
    if getattr(item, "baseline", None):
        write_points(element, "Baseline", item.baseline)
    for i, part in enumerate(parts, 1):
        write_text_element(element, part_tag, part, ids(part.id, f"{item_id}_{letter}{i}"), ids)
    equiv = ET.SubElement(element, "TextEquiv")
    if item.conf is not None:
        equiv.set("conf", format_conf(item.conf))
    ET.SubElement(equiv, "Unicode").text = item.text


def write_points(parent, tag, points):
    ET.SubElement(parent, tag, points=format_points(points))


def format_points(points):
    """'x,y x,y ...' in pixels >= 0, at least two points (PAGE's PointsType)."""
    points = [(max(0, round(x)), max(0, round(y))) for x, y in points]
    return " ".join(f"{x},{y}" for x, y in (points * 2 if len(points) == 1 else points))


def outline(item, parts):
    """An item's polygon, or when it has none the box around its parts' (a region around its lines)."""
    if item.coords:
        return item.coords
    polygons = [p.coords for p in parts if p.coords]
    if not polygons:
        raise ValueError(f"{type(item).__name__} {item.id!r} has no coords, nor any part with coords")
    return hull_box(polygons)


def format_conf(conf):
    return repr(min(1.0, max(0.0, float(conf))))  # shortest text that reads back as the same float


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# XML 1.0's name characters, less ":" (an id is an NCName)
NAME_START = ("A-Z_a-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u02FF\u0370-\u037D\u037F-\u1FFF\u200C-\u200D"
              "\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFFFD\U00010000-\U000EFFFF")
NOT_NAME_CHAR = re.compile(f"[^-.0-9\u00B7\u0300-\u036F\u203F-\u2040{NAME_START}]")
NAME_START_CHAR = re.compile(f"[{NAME_START}]")


class UniqueIds:
    """ids(wanted, fallback): `wanted` made a valid XML id (NCName), or `fallback` when it is empty,
    with "_2", "_3", ... appended when the document already has it."""

    def __init__(self):
        self.used = set()

    def __call__(self, wanted, fallback=None):
        name = NOT_NAME_CHAR.sub("_", wanted or "") or fallback or "id"
        if not NAME_START_CHAR.match(name):
            name = "_" + name
        unique, n = name, 1
        while unique in self.used:
            n += 1
            unique = f"{name}_{n}"
        self.used.add(unique)
        return unique
