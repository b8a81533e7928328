"""Reading order for segmented lines: lines grouped into text blocks, blocks ordered by XY-cut.

A line joins the block above it when it overlaps the block horizontally, stays within its width
(give or take two line heights) and starts less than two of its heights below the block's last
line. Blocks are then cut recursively at gaps no block crosses: first between rows, where that
parts no column (a heading above the columns: top before bottom), else between columns (left
before right), else between rows anyway. So a heading is read first, then the columns left to
right with a marginal note in its place beside them, and two columns whose paragraph breaks
happen to line up are still read column by column (htr.page.synth composes pages in this order).
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
            by1 = bbox(block[-1].coords)[3]
            ux0, _, ux1, _ = bbox([p for member in block for p in member.coords])
            within = x0 >= ux0 - 2 * height and x1 <= ux1 + 2 * height  # a spanning heading is no column line
            if overlap(x0, x1, ux0, ux1) > 0.3 * min(x1 - x0, ux1 - ux0) and y0 - by1 < 2 * height and within:
                if best is None or by1 > bbox(best[-1].coords)[3]:
                    best = block
        if best is None:
            out.append([line])
        else:
            best.append(line)
    return out


def cuts(items, box, axis):
    """Every split of items at a gap along axis (0: x, 1: y) that no item crosses -> [(before, after)]."""
    ordered = sorted(items, key=lambda i: box(i)[axis])
    out, reach = [], box(ordered[0])[axis + 2]
    for k in range(1, len(ordered)):
        if box(ordered[k])[axis] > reach:
            out.append((ordered[:k], ordered[k:]))
        reach = max(reach, box(ordered[k])[axis + 2])
    return out


def splits_a_column(above, below, box):
    """True when a row cut would part two paragraphs of one column: blocks of two lines or more,
    of much the same width and place (a one-line block above a column is a heading)."""
    for a in above:
        for b in below:
            if len(a) < 2 or len(b) < 2:
                continue
            (ax0, _, ax1, _), (bx0, _, bx1, _) = box(a), box(b)
            if overlap(ax0, ax1, bx0, bx1) > 0.5 * max(ax1 - ax0, bx1 - bx0):
                return True
    return False


def xy_cut(items, box):
    """Order blocks (lists of lines; box(block) -> (x0, y0, x1, y1)) by recursive XY-cut: a row cut
    that parts no column first (a heading above the columns), else a column cut, else any row cut."""
    if len(items) < 2:
        return list(items)
    rows = cuts(items, box, 1)
    choice = next((c for c in rows if not splits_a_column(*c, box)), None) or next(iter(cuts(items, box, 0)), None) \
        or next(iter(rows), None)
    if choice is None:
        return sorted(items, key=lambda i: (box(i)[1], box(i)[0]))
    return xy_cut(choice[0], box) + xy_cut(choice[1], box)


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
