"""Mini-batches of utterance keys, ESPnet's batch types.

- unsorted: file order, `batch_size` each.
- folded:   sorted by length; batch_size / (1 + max_i(length_i // fold_length_i)) per batch,
            taken at the batch's first (shortest) line as ESPnet does, so long lines come in
            smaller batches. length_i runs over the shape files (frames, tokens).
- length:   sorted by length; as many lines as fit in `batch_bins` summed frames.
- numel:    sorted by length; as many lines as fit in `batch_bins` padded elements (frames × dim).

The batch list is fixed; its order is shuffled each epoch with seed + epoch, so a resumed run
sees the same batches as an uninterrupted one.
"""
import random


def make_batches(batch_type, lengths, batch_size=20, batch_bins=1000000, fold_length=(800,), feat_dim=1,
                 min_batch_size=1):
    """lengths: {utt: frames or (frames, tokens, ...)} in file order -> list of key lists."""
    shapes = {k: tuple(v) if isinstance(v, (tuple, list)) else (v,) for k, v in lengths.items()}
    lengths = {k: v[0] for k, v in shapes.items()}
    keys = list(lengths)
    if not keys:
        return []
    if batch_type == "unsorted":
        return [keys[i:i + batch_size] for i in range(0, len(keys), batch_size)]
    keys = sorted(keys, key=lambda k: lengths[k])  # stable: ties keep file order
    if batch_type == "folded":
        return folded(keys, shapes, batch_size, fold_length, min_batch_size)
    if batch_type in ("length", "numel"):
        return binned(keys, lengths, batch_bins, feat_dim if batch_type == "numel" else None, min_batch_size)
    raise ValueError(f"unknown batch_type {batch_type!r}")


def folded(keys, shapes, batch_size, fold_length, min_batch_size):
    folds = [fold_length] if isinstance(fold_length, int) else list(fold_length)
    batches, start = [], 0
    while start < len(keys):
        first = shapes[keys[start]]
        factor = max(n // fold for n, fold in zip(first, folds))
        size = max(min_batch_size, int(batch_size / (1 + factor)))
        batches.append(keys[start:start + size])
        start += size
    return merge_small_tail(batches, min_batch_size)


def binned(keys, lengths, batch_bins, feat_dim, min_batch_size):
    """Greedy packing; `numel` counts padding (size × longest × dim), `length` the summed frames."""
    batches, current, total = [], [], 0
    for key in keys:
        if feat_dim is None:
            cost = total + lengths[key]
        else:
            cost = (len(current) + 1) * lengths[key] * feat_dim  # sorted ascending: key is the longest
        if current and cost > batch_bins and len(current) >= min_batch_size:
            batches.append(current)
            current, total = [], 0
            cost = lengths[key] if feat_dim is None else lengths[key] * feat_dim
        current.append(key)
        total = cost if feat_dim is None else 0
    if current:
        batches.append(current)
    return merge_small_tail(batches, min_batch_size)


def padding_ratio(batches, lengths):
    """Share of a batch's frames that are padding, over all batches (0 = none)."""
    frames = {k: v[0] if isinstance(v, (tuple, list)) else v for k, v in lengths.items()}
    padded = sum(len(b) * max(frames[k] for k in b) for b in batches if b)
    return 1 - sum(frames[k] for b in batches for k in b) / padded if padded else 0.0


def merge_small_tail(batches, min_batch_size):
    if len(batches) > 1 and len(batches[-1]) < min_batch_size:
        batches[-2] = batches[-2] + batches.pop()
    return batches


def epoch_order(batches, seed, epoch):
    """The batches of one epoch in a shuffled order determined by (seed, epoch)."""
    order = list(batches)
    random.Random(seed * 1000003 + epoch).shuffle(order)
    return order


def epoch_batches(batches, seed, epoch, num_iters_per_epoch=None):
    """The batches of trainer epoch `epoch`. With num_iters_per_epoch N (ESPnet's option, for corpora
    too large for whole epochs), epochs are consecutive runs of N batches cut from the endless
    sequence of shuffled passes over the data: epoch 1 = batches 0..N-1 of pass 1, and so on."""
    if not num_iters_per_epoch:
        return epoch_order(batches, seed, epoch)
    passed, offset = divmod((epoch - 1) * num_iters_per_epoch, len(batches))
    out = []
    while len(out) < num_iters_per_epoch:
        passed += 1
        out += epoch_order(batches, seed, passed)[offset:offset + num_iters_per_epoch - len(out)]
        offset = 0
    return out


def shard(batch, rank, world_size):
    """This rank's share of a global batch (ranks interleave so lengths stay balanced)."""
    return batch[rank::world_size]
