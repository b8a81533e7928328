"""Train the line segmenter (htr/page/segmenter.py) on pages with PAGE XML ground truth.

    python -m htr.bin.seg_train --train_dir pages/train --valid_dir pages/valid --output_dir exp/seg \
        --max_steps 3000 --batch_size 4

Each page is read once at the segmenter's input width; training draws random square crops (with
brightness and contrast jitter). Every --valid_every steps the full validation pages are segmented
and line detection precision/recall (IoU >= 0.5) is logged; the best F1 is kept as
<output_dir>/segmenter.pt (the file `htr segment --seg_model` and `recognize --page` load).
<output_dir>/config.yaml holds the options of the run, train.log its log.
"""
import argparse
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from htr.data.image_features import load_image
from htr.errors import UserError, run_tool
from htr.page.corpus import page_files
from htr.page.metrics import detection_counts
from htr.page.reader import check_size
from htr.page.segmenter import Segmenter, loss_of, page_input, targets
from htr.utils.atomic import atomic_write_text
from htr.utils.progress import Progress


def get_parser():
    p = argparse.ArgumentParser(prog="htr seg_train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_dir", required=True, help="page images + page/*.xml (Transkribus export layout)")
    p.add_argument("--valid_dir", required=True)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--input_width", type=int, default=768, help="pages are scaled to this width")
    p.add_argument("--max_steps", type=int, default=3000)
    p.add_argument("--batch_size", type=int, default=4)
    p.add_argument("--crop", type=int, default=384, help="training crop side, input pixels (even)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--valid_every", type=int, default=500)
    p.add_argument("--num_valid", type=int, default=20, help="validation pages segmented each time")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--init", default=None, help="start from this segmenter model")
    p.add_argument("--num_threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return p


def load_pages(pages_dir, input_width, limit=None, keep_images=False):
    """-> [(page, image or None, ink tensor (1, H, W), baseline target (h, w), distances (2, h, w))];
    the full-size image is kept only where it is needed (validation segments whole pages)."""
    files = page_files(pages_dir)[:limit]
    if not files:
        raise UserError(f"{pages_dir}: no page images with PAGE XML (expected <image> and page/<stem>.xml)")
    out = []
    with Progress(len(files), desc=f"reading {pages_dir}", unit="page") as progress:
        for image_path, _, page in files:
            image = load_image(image_path)
            check_size(page, image, image_path)
            ink, _ = page_input(image, input_width)
            out_size = ((ink.shape[2] + 1) // 2, (ink.shape[1] + 1) // 2)
            base, dist = targets(page.lines(), out_size, image.width / out_size[0])
            out.append((page, image if keep_images else None, ink, torch.from_numpy(base), torch.from_numpy(dist)))
            progress.update()
    return out


def random_crop(sample, side, rng):
    """A side x side input crop (padded when the page is smaller) and its target crops."""
    _, _, ink, base, dist = sample
    _, h, w = ink.shape
    y0 = 2 * rng.randint(0, max(0, h - side) // 2)
    x0 = 2 * rng.randint(0, max(0, w - side) // 2)
    x = torch.zeros(1, side, side)
    b = torch.zeros(side // 2, side // 2)
    d = torch.zeros(2, side // 2, side // 2)
    crop = ink[:, y0:y0 + side, x0:x0 + side]
    x[:, :crop.shape[1], :crop.shape[2]] = crop
    tb = base[y0 // 2:(y0 + side) // 2, x0 // 2:(x0 + side) // 2]
    b[:tb.shape[0], :tb.shape[1]] = tb
    td = dist[:, y0 // 2:(y0 + side) // 2, x0 // 2:(x0 + side) // 2]
    d[:, :td.shape[1], :td.shape[2]] = td
    contrast, offset = rng.uniform(0.6, 1.3), rng.uniform(-0.1, 0.1)  # ink darkness, paper tone
    return (x * contrast + offset).clamp(0, 1), b, d


def warmup_cosine(total, warmup_fraction=0.05):
    """lr factor per step: linear warm-up over the first 5% of the steps, then a cosine to 0."""
    warmup = max(1, int(total * warmup_fraction))

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return factor


def evaluate(model, pages):
    model.net.eval()
    matched = hyp = ref = 0
    for page, image, *_ in pages:
        m, h, r = detection_counts(model.segment(image), page.lines())
        matched, hyp, ref = matched + m, hyp + h, ref + r
    model.net.train()
    precision, recall = matched / max(1, hyp), matched / max(1, ref)
    return precision, recall, 2 * precision * recall / max(1e-9, precision + recall)


def main(argv=None):
    args = get_parser().parse_args(argv)
    if args.crop % 2:
        raise UserError(f"--crop {args.crop}: must be even (the maps are at half resolution)")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=[logging.FileHandler(out / "train.log"), logging.StreamHandler()])
    atomic_write_text(out / "config.yaml", yaml.safe_dump(vars(args), sort_keys=False))
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    model = Segmenter.load(args.init) if args.init else Segmenter.new({"input_width": args.input_width})
    train = load_pages(args.train_dir, model.config["input_width"])
    valid = load_pages(args.valid_dir, model.config["input_width"], args.num_valid, keep_images=True)
    logging.info("%d training pages, %d validation pages; %d parameters", len(train), len(valid),
                 sum(p.numel() for p in model.net.parameters()))
    optimizer = torch.optim.AdamW(model.net.parameters(), lr=args.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(args.max_steps))
    model.net.train()
    best, start, losses = -1.0, time.time(), []
    with Progress(args.max_steps, desc="training the segmenter", unit="step") as progress:
        for step in range(1, args.max_steps + 1):
            x, b, d = map(torch.stack, zip(*(random_crop(rng.choice(train), args.crop, rng)
                                             for _ in range(args.batch_size))))
            loss, parts = loss_of(model.net(x), b, d)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            progress.update()
            if step % args.valid_every == 0 or step == args.max_steps:
                p, r, f1 = evaluate(model, valid)
                logging.info("step %d: loss %.4f (bce %.4f, l1 %.4f); valid P %.4f R %.4f F1 %.4f; %.0f s",
                             step, np.mean(losses), parts["bce"], parts["l1"], p, r, f1, time.time() - start)
                losses = []
                if f1 > best:
                    best = f1
                    model.save(out / "segmenter.pt")
    logging.info("best valid F1 %.4f: %s", best, out / "segmenter.pt")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
