"""PAGE XML and ALTO: round trips, older versions, reading order, errors, and schema checks.

PAGE output is validated against the official 2019-07-15 XSD that ocrd_validators ships (installed
without its dependencies by tools/install.sh). No package on PyPI or npm ships ALTO 4's XSD, so ALTO
output is checked against the ALTO 4.2 content models transcribed below (ALTO_4_2).
"""
import importlib.util
import re
from pathlib import Path

import pytest

from conftest import require
from htr.errors import UserError
from htr.page import alto, pagexml
from htr.page.layout import Glyph, Page, Region, TextLine, Word, bbox, box_polygon

etree = pytest.importorskip("lxml.etree")

STAMP = "2024-05-01T12:00:00+00:00"
UNICODE = "Grüße — „x“"
PAGE_2019 = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
ALTO_4 = "http://www.loc.gov/standards/alto/ns-v4#"


def glyphs(word_id, text, x, y, width=10, conf=0.5):
    return [Glyph(f"{word_id}g{i}", box_polygon(x + i * width, y, x + (i + 1) * width, y + 30), ch, conf + i / 100)
            for i, ch in enumerate(text)]


def sample_page():
    """2 regions, 3 lines: words with glyphs, polygons that are not boxes, baselines, confs, one line
    without words, and text that needs escaping."""
    greeting = [Word("w1", [(100, 100), (150, 98), (151, 131), (100, 130)], "Grüße", 0.8, glyphs("w1", "Grüße", 100, 100)),
                Word("w2", box_polygon(160, 100, 170, 130), "—", 0.6, glyphs("w2", "—", 160, 100)),
                Word("w3", box_polygon(180, 100, 210, 130), "„x“", 0.7, glyphs("w3", "„x“", 180, 100))]
    sums = [Word("w4", box_polygon(100, 200, 130, 230), "a<b", 0.25, glyphs("w4", "a<b", 100, 200)),
            Word("w5", box_polygon(140, 200, 170, 230), "&c", 0.75)]
    return Page("images/page 1.png", 1200, 800, [
        Region("r1", [(90, 90), (400, 85), (405, 150), (90, 150)], type="heading", lines=[
            TextLine("r1l1", [(95, 95), (300, 93), (300, 135), (95, 136)], [(95, 128), (300, 127)],
                     UNICODE, 0.7, greeting)]),
        Region("r2", box_polygon(90, 190, 700, 400), lines=[
            TextLine("r2l1", box_polygon(95, 195, 600, 235), [(95, 228), (300, 229), (600, 226)], "a<b &c", 0.5, sums),
            TextLine("r2l2", [(95, 245), (600, 240), (600, 290), (95, 290)], [(95, 280), (600, 279)],
                     "ohne Wörter, nur Zeile", 0.375)]),
    ])


def awkward_page():
    """What PAGE and ALTO cannot hold as it is: ids that are no XML ids or repeat, a region type PAGE
    does not know, negative and one-point coordinates, regions without coords (one without lines:
    nothing to write), a conf above 1."""
    line = TextLine("1 line", [(-5, 10), (50, 10), (50, 40), (-5, 40)], [(0, 35)], "x y", 1.5,
                    [Word("dup", box_polygon(0, 10, 20, 40), "x"), Word("dup", [(30, 10)], "y", 0.5)])
    return Page("a.png", 100, 100, [Region("", [], [line], type="stamp"), Region("r1", box_polygon(0, 50, 80, 90)),
                                    Region("r1", box_polygon(0, 90, 80, 99), type=""), Region("nothing", [])])


def page_xsd():
    spec = importlib.util.find_spec("ocrd_validators")  # not imported: its imports need a web framework
    require(spec is not None, "ocrd_validators (PAGE's XSD) is not installed: "
                              "pip install --no-deps ocrd_validators==2.67.1")
    return etree.XMLSchema(etree.parse(str(Path(spec.submodule_search_locations[0]) / "page.xsd")))


def assert_valid_page(path):
    schema = page_xsd()
    assert schema.validate(etree.parse(str(path))), schema.error_log
    assert etree.parse(str(path)).getroot().tag == f"{{{PAGE_2019}}}PcGts"


# ---- PAGE ----

def test_page_round_trip_is_exact_and_valid(tmp_path):
    page = sample_page()
    path = tmp_path / "page" / "p1.xml"
    pagexml.write(page, path, timestamp=STAMP)
    assert_valid_page(path)
    assert pagexml.read(path) == page
    assert pagexml.to_string(pagexml.read(path), timestamp=STAMP) == path.read_text(encoding="utf-8")
    text = path.read_bytes().decode("utf-8")
    assert f"<Unicode>{UNICODE}</Unicode>" in text and "a&lt;b &amp;c" in text  # UTF-8 as is, markup escaped
    assert text.count(STAMP) == 2 and "<Creator>htr</Creator>" in text


def test_page_writes_what_its_schema_cannot_hold_validly(tmp_path):
    path = tmp_path / "awkward.xml"
    pagexml.write(awkward_page(), path, creator="tester")
    assert_valid_page(path)
    back = pagexml.read(path)
    assert [r.id for r in back.regions] == ["r1", "r1_2", "r1_3"]  # the first, unnamed, takes its place's name
    assert [r.type for r in back.regions] == ["stamp", "paragraph", "paragraph"]  # via @custom; "" is PAGE's default
    assert back.regions[0].coords == box_polygon(0, 10, 50, 40)  # the box around its line
    line = back.regions[0].lines[0]
    assert line.id == "_1_line" and [w.id for w in line.words] == ["dup", "dup_2"]
    assert line.coords[0] == (0, 10) and line.baseline == [(0, 35), (0, 35)] and line.conf == 1.0
    assert line.words[1].coords == [(30, 10), (30, 10)]


def test_page_2010_point_children_and_text_equiv_choice(tmp_path):
    path = tmp_path / "old.xml"
    path.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2010-03-19">
  <Metadata><Creator>old</Creator><Created>2010-01-01T00:00:00</Created><LastChange>2010-01-01T00:00:00</LastChange></Metadata>
  <Page imageFilename="old.tif" imageWidth="2000" imageHeight="3000">
    <TextRegion id="r0" type="paragraph">
      <Coords><Point x="10" y="20"/><Point x="900" y="20"/><Point x="900" y="400"/><Point x="10" y="400"/></Coords>
      <TextLine id="l0">
        <Coords><Point x="12" y="22"/><Point x="880.6" y="22"/><Point x="880" y="80"/><Point x="12" y="80"/></Coords>
        <Word id="w0">
          <Coords><Point x="12" y="22"/><Point x="100" y="22"/><Point x="100" y="80"/><Point x="12" y="80"/></Coords>
          <TextEquiv><Unicode>Alte</Unicode></TextEquiv>
        </Word>
        <Word id="w1">
          <Coords><Point x="110" y="22"/><Point x="200" y="22"/><Point x="200" y="80"/><Point x="110" y="80"/></Coords>
          <TextEquiv><Unicode>Zeile</Unicode></TextEquiv>
        </Word>
      </TextLine>
      <TextLine id="l1">
        <Coords><Point x="12" y="90"/><Point x="880" y="90"/><Point x="880" y="150"/></Coords>
        <TextEquiv index="2" conf="0.2"><Unicode>second choice</Unicode></TextEquiv>
        <TextEquiv index="1" conf="0.9"><Unicode>first choice</Unicode></TextEquiv>
      </TextLine>
    </TextRegion>
  </Page>
</PcGts>
""", encoding="utf-8")
    page = pagexml.read(path)
    assert (page.image_filename, page.width, page.height) == ("old.tif", 2000, 3000)
    [region] = page.regions
    assert region.coords == [(10, 20), (900, 20), (900, 400), (10, 400)]
    first, second = region.lines
    assert first.coords[1] == (881, 22) and first.baseline is None
    assert (first.text, first.conf) == ("Alte Zeile", None)  # no TextEquiv: its words'
    assert [w.text for w in first.words] == ["Alte", "Zeile"]
    assert (second.text, second.conf) == ("first choice", 0.9)


def test_region_types_in_custom_as_transkribus_and_kraken_write_them():
    xml = """<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"><Page imageFilename="a.png"
    imageWidth="10" imageHeight="10"><TextRegion id="t" custom="readingOrder {index:0;} structure {type:marginalia;}">
    <Coords points="0,0 9,0 9,9"/></TextRegion><TextRegion id="k" custom="type {type:text;}"><Coords points="0,0 9,0 9,9"/>
    </TextRegion></Page></PcGts>"""
    assert [r.type for r in pagexml.from_string(xml).regions] == ["marginalia", "text"]


def region_xml(name, nested=""):
    return (f'<TextRegion id="{name}"><Coords points="0,0 10,0 10,10"/>{nested}<TextLine id="{name}l">'
            f'<Coords points="0,0 10,0 10,10"/><TextEquiv><Unicode>{name}</Unicode></TextEquiv></TextLine></TextRegion>')


def test_page_reading_order_is_followed(tmp_path):
    path = tmp_path / "order.xml"
    path.write_text(f"""<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15">
<Page imageFilename="x.png" imageWidth="10" imageHeight="10">
<ReadingOrder><OrderedGroup id="g0">
  <RegionRefIndexed index="1" regionRef="r1"/>
  <UnorderedGroupIndexed id="g1" index="2"><RegionRef regionRef="r0"/></UnorderedGroupIndexed>
  <RegionRefIndexed index="0" regionRef="r2"/>
</OrderedGroup></ReadingOrder>
{region_xml("r0")}
{region_xml("r1", nested=region_xml("r1n"))}
{region_xml("r2")}
{region_xml("r3")}
</Page></PcGts>""", encoding="utf-8")
    page = pagexml.read(path)
    # the reverse of the document's order; nested r1n and unlisted r3 follow, in document order
    assert [r.id for r in page.regions] == ["r2", "r1", "r0", "r1n", "r3"]
    assert page.text() == "r2\nr1\nr0\nr1n\nr3"
    assert pagexml.read(tmp_path / "order.xml") == pagexml.from_string(pagexml.to_string(page))


# ---- ALTO ----

def test_alto_round_trip_is_exact_and_structurally_valid(tmp_path):
    path = tmp_path / "alto" / "p1.xml"
    alto.write(sample_page(), path, timestamp=STAMP)
    assert_alto_4_2(path)
    first = alto.read(path)
    again = tmp_path / "again.xml"
    alto.write(first, again, timestamp=STAMP)
    assert alto.read(again) == first
    assert again.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


def test_page_to_alto_to_page_keeps_geometry_text_and_conf(tmp_path):
    page = sample_page()
    alto.write(page, tmp_path / "p1.alto.xml")
    pagexml.write(alto.read(tmp_path / "p1.alto.xml"), tmp_path / "p1.page.xml")
    back = pagexml.read(tmp_path / "p1.page.xml")
    assert (back.image_filename, back.width, back.height) == (page.image_filename, page.width, page.height)
    assert [r.type for r in back.regions] == ["paragraph", "paragraph"]  # ALTO has no region types
    assert [len(r.lines) for r in back.regions] == [len(r.lines) for r in page.regions]
    for region, got in zip(page.regions, back.regions):
        assert (got.id, got.coords) == (region.id, region.coords)
        for line, got_line in zip(region.lines, got.lines):
            assert (got_line.id, got_line.coords, got_line.baseline) == (line.id, line.coords, line.baseline)
            assert got_line.text == line.text
            if line.words:
                assert got_line.words == line.words  # ids, polygons, texts, confs, glyphs
                assert got_line.conf == pytest.approx(sum(w.conf for w in line.words) / len(line.words))
            else:  # ALTO needs a String in every line: one spanning it, with the line's text and conf
                [word] = got_line.words
                assert (word.coords, word.text, word.conf) == (box_polygon(*bbox(line.coords)), line.text, line.conf)
                assert got_line.conf == line.conf


def test_alto_writes_what_its_schema_cannot_hold_validly(tmp_path):
    path = tmp_path / "awkward.xml"
    alto.write(awkward_page(), path)
    assert_alto_4_2(path)
    back = alto.read(path)
    assert [r.id for r in back.regions] == ["r1", "r1_2", "r1_3"]
    line = back.regions[0].lines[0]
    assert line.id == "_1_line" and [w.id for w in line.words] == ["dup", "dup_2"]
    word = Word("w", box_polygon(0, 0, 40, 40), "ﬁx̂", glyphs=[Glyph("g1", box_polygon(0, 0, 20, 40), "ﬁ"),
                                                          Glyph("g2", box_polygon(20, 0, 40, 40), "x̂")])
    glyphless = Page("g.png", 50, 50, [Region("r", word.coords, [TextLine("l", word.coords, words=[word])])])
    alto.write(glyphless, path)
    assert_alto_4_2(path)  # "x̂" is two characters, ALTO's Glyph CONTENT one: the word keeps no glyphs
    assert alto.read(path).regions[0].lines[0].words[0].glyphs == []


def test_alto_v2_numeric_baseline_hyphen_and_mean_conf(tmp_path):
    path = tmp_path / "v2.xml"
    path.write_text("""<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v2#">
  <Description>
    <MeasurementUnit>pixel</MeasurementUnit>
    <sourceImageInformation><fileName> scans/0001.tif </fileName></sourceImageInformation>
  </Description>
  <Layout>
    <Page ID="P1" PHYSICAL_IMG_NR="1" WIDTH="2480.0" HEIGHT="3508">
      <PrintSpace HPOS="0" VPOS="0" WIDTH="2480" HEIGHT="3508">
        <ComposedBlock ID="C1" HPOS="100" VPOS="200" WIDTH="600" HEIGHT="100">
          <TextBlock ID="B1" HPOS="100" VPOS="200" WIDTH="600" HEIGHT="100">
            <TextLine ID="L1" HPOS="100" VPOS="200" WIDTH="300" HEIGHT="40" BASELINE="232.4">
              <String ID="S1" CONTENT="Guten" HPOS="100" VPOS="202" WIDTH="120" HEIGHT="36" WC="0.5"/>
              <SP WIDTH="10" HPOS="220" VPOS="202"/>
              <String ID="S2" CONTENT="Mor" HPOS="230" VPOS="202" WIDTH="150.6" HEIGHT="36" WC="1"/>
              <HYP CONTENT="-" HPOS="381" VPOS="202" WIDTH="19"/>
            </TextLine>
            <TextLine ID="L2" HPOS="100" VPOS="250" WIDTH="300" HEIGHT="40">
              <String ID="S3" CONTENT="gen" HPOS="100" VPOS="250" WIDTH="80" HEIGHT="40"/>
            </TextLine>
          </TextBlock>
        </ComposedBlock>
      </PrintSpace>
    </Page>
  </Layout>
</alto>
""", encoding="utf-8")
    page = alto.read(path)
    assert (page.image_filename, page.width, page.height) == ("scans/0001.tif", 2480, 3508)
    [region] = page.regions
    assert (region.id, region.coords) == ("B1", box_polygon(100, 200, 700, 300))
    first, second = region.lines
    assert first.baseline == [(100, 232), (400, 232)]  # one number: a horizontal line across the line
    assert (first.text, first.conf) == ("Guten Mor-", 0.75)
    assert first.words[1].coords == box_polygon(230, 202, 381, 238)
    assert (second.text, second.conf, second.baseline) == ("gen", None, None)


# ---- errors ----

PAGE_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15">
  <Page imageFilename="p1.png" imageWidth="100" imageHeight="100">
    <TextRegion id="r1">
      <Coords points="0,0 10,0 10,10"/>
      <TextLine id="l3">
        {line}
      </TextLine>
    </TextRegion>
  </Page>
</PcGts>
"""
ALTO_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v4#">
  <Description><MeasurementUnit>{unit}</MeasurementUnit></Description>
  <Layout><Page ID="p" PHYSICAL_IMG_NR="1" WIDTH="100" HEIGHT="100"><PrintSpace>
    <TextBlock ID="b1" HPOS="0" VPOS="0" WIDTH="10" HEIGHT="10">
      {line}
    </TextBlock>
  </PrintSpace></Page></Layout>
</alto>
"""
GOOD_LINE = ('<TextLine ID="l1" HPOS="0" VPOS="0" WIDTH="10" HEIGHT="10">'
             '<String CONTENT="a" HPOS="0" VPOS="0" WIDTH="5" HEIGHT="9"/></TextLine>')
ERRORS = [  # (reader, file text, the line the error is on, the message after "path:line: ")
    (pagexml, PAGE_TEMPLATE.format(line='<Coords points="10,x 20,30"/>'), 7,
     "TextLine l3: Coords points '10,x 20,30' are not 'x,y x,y ...'"),
    (pagexml, PAGE_TEMPLATE.format(line='<Coords points="1,1 2,2"/><Baseline points="1,1 2"/>'), 7,
     "TextLine l3: Baseline points '1,1 2' are not 'x,y x,y ...'"),
    (pagexml, PAGE_TEMPLATE.format(line='<Coords points="1,1 2,2"/><TextEquiv conf="high"><Unicode>a</Unicode></TextEquiv>'),
     7, "TextEquiv: conf 'high' is not a number"),
    (pagexml, PAGE_TEMPLATE.format(line='<Coords points="1,1 2,2"/><TextEquiv conf="85"/>'), 7,
     "TextEquiv: conf '85' is not in [0, 1]"),
    (pagexml, PAGE_TEMPLATE.format(line='<Baseline points="1,1 2,2"/>'), 6, "TextLine l3: no Coords"),
    (pagexml, PAGE_TEMPLATE.format(line="<Coords points='1,1 2,2'>"), 8, "not well-formed XML (mismatched tag)"),
    (pagexml, PAGE_TEMPLATE.replace(' imageWidth="100"', ' imageWidth="wide"').format(line=""), 3,
     "Page: imageWidth 'wide' is not a number"),
    (pagexml, '<?xml version="1.0"?>\n<PcGts>\n  <Metadata/>\n</PcGts>\n', 2,
     "not a PAGE file: no Page element in <PcGts>"),
    (pagexml, "", 1, "not well-formed XML (no element found)"),
    (pagexml, ALTO_TEMPLATE.format(unit="pixel", line=GOOD_LINE), 2, "not a PAGE file: no Page element in <alto>"),
    (alto, ALTO_TEMPLATE.format(unit="mm10", line=GOOD_LINE), 3,
     "MeasurementUnit 'mm10' is not supported: htr reads ALTO in pixels only"),
    (alto, ALTO_TEMPLATE.format(unit="pixel", line=GOOD_LINE.replace('HPOS="0" VPOS', 'HPOS="x" VPOS', 1)), 6,
     "TextLine l1: HPOS 'x' is not a number"),
    (alto, ALTO_TEMPLATE.format(unit="pixel", line='<TextLine ID="l1"><Shape><Polygon POINTS="1,2,3"/></Shape></TextLine>'),
     6, "TextLine l1: Polygon POINTS '1,2,3' are not 'x,y x,y ...'"),
    (alto, ALTO_TEMPLATE.format(unit="pixel", line=GOOD_LINE.replace('<String ', '<String WC="1.5" ')), 6,
     "String: WC '1.5' is not in [0, 1]"),
    (alto, ALTO_TEMPLATE.format(unit="pixel", line=GOOD_LINE.replace("</TextLine>", "")), 7,
     "not well-formed XML (mismatched tag)"),
    (alto, PAGE_TEMPLATE.format(line=""), 2, "not an ALTO file: no Layout/Page element in <PcGts>"),
]


@pytest.mark.parametrize("reader,text,line,message", ERRORS,
                         ids=[f"{r.__name__.split('.')[-1]}-{m[:40]}" for r, _, _, m in ERRORS])
def test_unreadable_files_give_one_line_naming_file_and_line(tmp_path, reader, text, line, message):
    path = tmp_path / "page" / "p1.xml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as error:
        reader.read(path)
    assert str(error.value) == f"{path}:{line}: {message}"
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match=r"^<string>:\d+: "):
        reader.from_string(text)


# ---- ALTO 4.2's content models, as its XSD defines them ----

BOX = {"HPOS", "VPOS", "WIDTH", "HEIGHT"}
REFS = {"STYLEREFS", "TAGREFS", "PROCESSINGREFS"}
XSI_LOCATION = "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation"
ALTO_4_2 = {  # element: (its children's names in the XSD's sequence, as a regex; required attributes; allowed ones)
    "alto": (r"(Description )?(Styles )?(Tags )?Layout ", set(), {"SCHEMAVERSION", XSI_LOCATION}),
    "Description": (r"MeasurementUnit (sourceImageInformation )?(OCRProcessing )*(Processing )*", set(), set()),
    "MeasurementUnit": (None, set(), set()),
    "sourceImageInformation": (r"(fileName )?(fileIdentifier )*(documentIdentifier )*", set(), set()),
    "fileName": (None, set(), set()),
    "Processing": (r"(processingCategory )?(processingDateTime )?(processingAgency )?(processingStepDescription )*"
                   r"(processingStepSettings )?(processingSoftware )?", {"ID"}, {"ID"}),
    "processingDateTime": (None, set(), set()),
    "processingSoftware": (r"(softwareCreator )?(softwareName )?(softwareVersion )?(applicationDescription )?", set(), set()),
    "softwareName": (None, set(), set()),
    "Layout": (r"(Page )+", set(), {"STYLEREFS"}),
    "Page": (r"(TopMargin )?(LeftMargin )?(RightMargin )?(BottomMargin )?(PrintSpace )?", {"ID", "PHYSICAL_IMG_NR"},
             {"ID", "PAGECLASS", "STYLEREFS", "PROCESSINGREFS", "HEIGHT", "WIDTH", "PHYSICAL_IMG_NR", "PRINTED_IMG_NR",
              "QUALITY", "QUALITY_DETAIL", "POSITION", "PROCESSING", "ACCURACY", "PC"}),
    "PrintSpace": (r"(Shape )?((TextBlock|Illustration|GraphicalElement|ComposedBlock) )*", set(),
                   {"ID", "STYLEREFS", "PROCESSINGREFS"} | BOX),
    "TextBlock": (r"(Shape )?(TextLine )*", {"ID"}, {"ID", "ROTATION", "IDNEXT", "CS", "language", "LANG"} | REFS | BOX),
    "TextLine": (r"(Shape )?(String (SP )?)+(HYP )?", set(), {"ID", "BASELINE", "LANG", "CS"} | REFS | BOX),
    "String": (r"(Shape )?(ALTERNATIVE )*(Glyph )*", {"CONTENT"},
               {"ID", "CONTENT", "STYLE", "SUBS_TYPE", "SUBS_CONTENT", "WC", "CC", "CS", "LANG"} | REFS | BOX),
    "Glyph": (r"(Shape )?(Variant )*", {"CONTENT"}, {"ID", "CONTENT", "GC"} | BOX),
    "SP": ("", set(), {"ID"} | BOX),
    "Shape": (r"(Polygon|Ellipse|Circle) ", set(), set()),
    "Polygon": ("", {"POINTS"}, {"POINTS"}),
}
FLOATS = BOX | {"PHYSICAL_IMG_NR"}
POINTS = re.compile(r"-?\d+,-?\d+( -?\d+,-?\d+)*")
NCNAME = re.compile(r"[A-Za-z_][\w.-]*")


def assert_alto_4_2(path):
    """Namespace, element names, children in the XSD's order, required and allowed attributes, and the
    values the XSD types: floats, WC/GC in [0, 1], one-character Glyph CONTENT, unique NCName IDs."""
    root, ids = etree.parse(str(path)).getroot(), []
    assert root.tag == f"{{{ALTO_4}}}alto"
    for element in root.iter():
        assert element.tag.startswith(f"{{{ALTO_4}}}"), element.tag
        name = etree.QName(element).localname
        assert name in ALTO_4_2, f"{name} is not an element htr should write"
        children_pattern, required, allowed = ALTO_4_2[name]
        names = "".join(etree.QName(c).localname + " " for c in element)
        if children_pattern is None:
            assert not names and (element.text or "").strip(), f"{name} must have text only"
        else:
            assert re.fullmatch(children_pattern, names), f"{name}'s children {names!r}"
            assert not (element.text or "").strip(), f"{name} has text"
        assert required <= set(element.attrib) <= allowed, f"{name}: {sorted(element.attrib)}"
        for attribute in FLOATS & set(element.attrib):
            float(element.get(attribute))
        for attribute in {"WC", "GC"} & set(element.attrib):
            assert 0 <= float(element.get(attribute)) <= 1
        for attribute in {"POINTS", "BASELINE"} & set(element.attrib):
            assert POINTS.fullmatch(element.get(attribute)), element.get(attribute)
        if name == "Glyph":
            assert len(element.get("CONTENT")) == 1
        if name == "MeasurementUnit":
            assert element.text in ("pixel", "mm10", "inch1200")
        if "ID" in element.attrib:
            assert NCNAME.fullmatch(element.get("ID")), element.get("ID")
            ids.append(element.get("ID"))
    assert len(ids) == len(set(ids)), "IDs repeat"
