"""Page corpora on disk, in Transkribus' export layout: page images with their PAGE XML in a
`page/` folder beside them (`scan1.jpg` + `page/scan1.xml`), or beside the image itself, in any
subfolder (one per document)."""
from pathlib import Path, PureWindowsPath

from htr.errors import UserError
from htr.page import pagexml

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
NOT_PAGE = {"mets.xml", "metadata.xml", "doc.xml"}  # Transkribus' document files beside the pages


def find_page_files(pages_dir):
    """Every PAGE XML file under pages_dir, sorted; ALTO folders and METS files are not pages."""
    pages_dir = Path(pages_dir)
    if not pages_dir.is_dir():
        raise FileNotFoundError(f"{pages_dir}: no such directory")
    return sorted(p for p in pages_dir.rglob("*.xml") if p.name.lower() not in NOT_PAGE
                  and "alto" not in (d.lower() for d in p.parent.relative_to(pages_dir).parts))


def image_folder(xml_file):
    """Where a page's image is: beside page/ for Transkribus' layout, else beside the XML."""
    return xml_file.parent.parent if xml_file.parent.name.lower() == "page" else xml_file.parent


def find_image(xml_file, page):
    """The image a PAGE file describes (its imageFilename, else its stem), or None."""
    folder = image_folder(xml_file)
    named = [folder / page.image_filename, folder / PureWindowsPath(page.image_filename).name] \
        if page.image_filename else []
    by_stem = [folder / (xml_file.stem + s) for suffix in IMAGE_SUFFIXES for s in (suffix, suffix.upper())]
    return next((p for p in named + by_stem if p.is_file()), None)


def page_files(pages_dir):
    """-> [(image path, PAGE XML path, Page)] of every page whose image is there, sorted; for tools
    that need whole pages (training, scoring), where a page without its image is an error. The
    Page is the one read to find the image: callers need not read the file again."""
    out = []
    for xml in find_page_files(pages_dir):
        page = pagexml.read(xml)
        image = find_image(xml, page)
        if image is None:
            raise UserError(f"{xml}: its image is missing (imageFilename or {xml.stem}.png|jpg|tif beside page/)")
        out.append((image, xml, page))
    return out
