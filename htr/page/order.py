"""Reading order for segmented lines: lines grouped into text blocks, blocks ordered by XY-cut.

A line joins the block above it when they overlap horizontally and the vertical gap is under two
of its heights; blocks are then cut recursively, first at a horizontal gap no block crosses (top
before bottom), else at a vertical gap (left before right): a heading first, then the columns left
to right with their marginal notes beside them (htr.page.synth composes pages in this order).
"""
from htr.page.layout import Region, bbox, hull_box


def overlap(a0, a1, b0, b1):
    return min(a1, b1) - max(a0, b0)


def blocks(lines):
    """Lines -> [[line, ...]] blocks, each top to bottom."""
    out = []
    for line in sorted(lines, key=lambda l: bbox(l.coords)[1]):
        x0, y0, x1, y1 = bbox(line.coords)
        height = y1 - y0
        best = None
        for block in out:
            bx0, by0, bx1, by1 = bbox(block[-1].coords)
            width = min(x1 - x0, bx1 - bx0)
            if overlap(x0, x1, bx0, bx1) > 0.3 * width and y0 - by1 < 2 * height:
                if best is None or by1 > bbox(best[-1].coords)[3]:
                    best = block
        if best is None:
            out.append([line])
        else:
            best.append(line)
    return out


def xy_cut(items, box):
    """Order items (with box(item) -> (x0, y0, x1, y1)) by recursive XY-cut."""
    if len(items) < 2:
        return list(items)
    for axis in (1, 0):  # 1: cut along y (rows) first, 0: along x (columns)
        ordered = sorted(items, key=lambda i: box(i)[axis])
        reach = box(ordered[0])[axis + 2]
        for k in range(1, len(ordered)):
            if box(ordered[k])[axis] > reach:
                return xy_cut(ordered[:k], box) + xy_cut(ordered[k:], box)
            reach = max(reach, box(ordered[k])[axis + 2])
    return sorted(items, key=lambda i: (box(i)[1], box(i)[0]))


def regions_in_order(lines, prefix="r"):
    """Lines -> [Region] in reading order, each region's lines top to bottom, ids renumbered."""
    def block_box(block):
        return bbox([p for line in block for p in line.coords])

    regions = []
    for r, block in enumerate(xy_cut(blocks(lines), block_box), 1):
        for k, line in enumerate(block, 1):
            line.id = f"{prefix}{r}_l{k}"
        regions.append(Region(f"{prefix}{r}", hull_box([l.coords for l in block]), block))
    return regions
