"""Page corpora on disk, in Transkribus' export layout: page images with their PAGE XML in a
`page/` folder beside them (`scan1.jpg` + `page/scan1.xml`), or beside the image itself."""
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def page_files(pages_dir):
    """-> [(image path, PAGE XML path)] of every image in `pages_dir` that has its XML, sorted."""
    pages_dir = Path(pages_dir)
    if not pages_dir.is_dir():
        raise FileNotFoundError(f"{pages_dir}: no such directory")
    out = []
    for image in sorted(p for p in pages_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        for xml in (pages_dir / "page" / f"{image.stem}.xml", image.with_suffix(".xml")):
            if xml.is_file():
                out.append((image, xml))
                break
    return out
