"""The trainer's parts on their own: batch types, learning-rate schedules, options, launch helpers,
atomic files and checkpoint averaging."""
import math

import pytest
import torch

from htr.train.batch_sampler import epoch_order, make_batches, shard
from htr.train.checkpoint import average_state_dicts
from htr.utils.atomic import atomic_save
from htr.train.distributed import first_host
from htr.train.optim import NoamLR, WarmupCosineLR, WarmupLR
from htr.train.options import parse_args

LENGTHS = {f"u{i:02d}": n for i, n in enumerate([120, 900, 50, 1700, 300, 800, 75, 2500, 640, 410, 95, 1300])}


def flat(batches):
    return sorted(k for b in batches for k in b)


@pytest.mark.parametrize("batch_type", ["unsorted", "folded", "length", "numel"])
def test_every_utterance_in_exactly_one_batch(batch_type):
    batches = make_batches(batch_type, LENGTHS, batch_size=4, batch_bins=3000, fold_length=800, feat_dim=2)
    assert flat(batches) == sorted(LENGTHS)


def test_folded_batches_shrink_with_length():
    batches = make_batches("folded", LENGTHS, batch_size=4, fold_length=800)
    # sorted ascending; ESPnet's rule: 4 / (1 + first // 800) at each batch's first line
    assert [len(b) for b in batches] == [4, 4, 2, 1, 1]
    assert batches[0] == ["u02", "u06", "u10", "u00"]
    # a second shape file (tokens) folds too: the line with 400 tokens halves its batch
    shapes = {k: (n, 400 if k == "u02" else 10) for k, n in LENGTHS.items()}
    assert [len(b) for b in make_batches("folded", shapes, batch_size=4, fold_length=[800, 150])][:2] == [1, 4]


def test_length_and_numel_respect_the_bins():
    for batch_type, cost in (("length", lambda b: sum(LENGTHS[k] for k in b)),
                             ("numel", lambda b: len(b) * max(LENGTHS[k] for k in b) * 2)):
        batches = make_batches(batch_type, LENGTHS, batch_bins=3000, feat_dim=2)
        assert all(cost(b) <= 3000 or len(b) == 1 for b in batches), batch_type


def test_epoch_order_is_a_seeded_shuffle_and_shards_cover_the_batch():
    batches = make_batches("unsorted", LENGTHS, batch_size=2)
    assert epoch_order(batches, 1, 3) == epoch_order(batches, 1, 3)
    assert epoch_order(batches, 1, 3) != epoch_order(batches, 1, 4)
    assert sorted(map(tuple, epoch_order(batches, 1, 3))) == sorted(map(tuple, batches))
    batch = list("abcde")
    assert shard(batch, 0, 2) + shard(batch, 1, 2) == ["a", "c", "e", "b", "d"]


def lrs(scheduler_cls, steps, **conf):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = scheduler_cls(opt, **conf)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_schedules_follow_espnet_formulas():
    warm = lrs(WarmupLR, 30, warmup_steps=10)
    for step, lr in enumerate(warm, 1):
        assert lr == pytest.approx(10 ** 0.5 * min(step ** -0.5, step * 10 ** -1.5))
    assert max(warm) == pytest.approx(1.0) and warm.index(max(warm)) == 9
    noam = lrs(NoamLR, 5, model_size=256, warmup_steps=4)
    assert noam[3] == pytest.approx(256 ** -0.5 * 4 ** -0.5)
    cosine = lrs(WarmupCosineLR, 21, total_steps=20, warmup_steps=4, min_lr=0.1)
    assert cosine[3] == pytest.approx(1.0) and cosine[0] == pytest.approx(0.25)
    assert cosine[19] == pytest.approx(0.1) and cosine[11] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 2)))


def test_options_yaml_defaults_cli_overrides_and_dict_merge(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("optim_conf: {lr: 0.002, weight_decay: 1.0e-6}\nbatch_size: 64\n"
                      "best_model_criterion: [valid, acc, max]\nversion: '202511'\n")
    args = parse_args(["--config", str(config), "--optim_conf", "lr=0.01", "--max_epoch", "3"])
    assert args.optim_conf == {"lr": 0.01, "weight_decay": 1.0e-6}
    assert args.batch_size == 64 and args.max_epoch == 3
    assert args.best_model_criterion == [["valid", "acc", "max"]]
    args = parse_args(["--config", str(config), "--best_model_criterion", "valid", "loss", "min"])
    assert args.best_model_criterion == [["valid", "loss", "min"]]
    config.write_text("batch_sise: 3\n")
    with pytest.raises(SystemExit, match="train.yaml: unknown option.*batch_sise"):
        parse_args(["--config", str(config)])


def test_slurm_node_list_first_host():
    assert first_host("gpu[07-09,12],cpu1") == "gpu07"
    assert first_host("node5") == "node5"
    assert first_host("a-b[001-004]") == "a-b001"


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "model.pth"
    atomic_save({"w": torch.ones(2)}, target)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_save({"w": Unpicklable()}, target)
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]


def test_average_floats_and_sum_integer_buffers(tmp_path):
    for i, value in enumerate((1.0, 2.0, 6.0)):
        torch.save({"w": torch.full((2,), value), "n": torch.tensor(i + 1)}, tmp_path / f"{i}.pth")
    avg = average_state_dicts([tmp_path / f"{i}.pth" for i in range(3)])
    assert torch.equal(avg["w"], torch.full((2,), 3.0)) and int(avg["n"]) == 6 and avg["n"].dtype == torch.int64


def test_num_iters_per_epoch_cuts_epochs_from_consecutive_shuffled_passes():
    from htr.train.batch_sampler import epoch_batches, epoch_order
    batches = [[f"u{i}"] for i in range(5)]
    stream = sum((epoch_order(batches, 3, p) for p in range(1, 7)), [])  # 6 shuffled passes of 5
    epochs = [epoch_batches(batches, 3, e, num_iters_per_epoch=3) for e in (1, 2, 3, 4, 5)]
    assert sum(epochs, []) == stream[:15]  # 5 epochs of 3 batches = the first 3 passes, in order
    assert epoch_batches(batches, 3, 2, num_iters_per_epoch=12) == stream[12:24]  # longer than a pass
    assert epoch_batches(batches, 3, 2) == epoch_order(batches, 3, 2)


def test_a_mid_epoch_resume_notices_a_changed_batch_order():
    from htr.train.trainer import batch_digest
    assert batch_digest([["a", "b"], ["c"]]) == batch_digest([["a", "b"], ["c"]])
    assert batch_digest([["a", "b"], ["c"]]) != batch_digest([["a"], ["b", "c"]])


def test_a_damaged_checkpoint_is_never_kept_as_the_previous_one(tmp_path):
    from htr.train.checkpoint import load_checkpoint, read_manifest, save_checkpoint
    for step in (1, 2):
        save_checkpoint({"step": step}, tmp_path)
    data = (tmp_path / "checkpoint.pth").read_bytes()
    (tmp_path / "checkpoint.pth").write_bytes(data[:len(data) // 2])  # step 2 half-copied
    assert load_checkpoint(tmp_path, "cpu")[0] == {"step": 1}  # falls back
    save_checkpoint({"step": 3}, tmp_path)
    assert torch.load(tmp_path / "checkpoint.prev.pth", weights_only=False) == {"step": 1}  # not the damaged one
    assert set(read_manifest(tmp_path)) == {"checkpoint.pth", "checkpoint.prev.pth"}
    (tmp_path / "checkpoint.pth").unlink()  # a kill between the renames of the next save
    assert load_checkpoint(tmp_path, "cpu")[0] == {"step": 1}


def test_a_bug_in_a_worker_is_not_taken_for_a_lost_worker():
    from htr.train.loader import worker_failed
    assert worker_failed(RuntimeError("DataLoader worker (pid(s) 123) exited unexpectedly"))
    assert worker_failed(RuntimeError("DataLoader timed out after 5 seconds"))
    assert not worker_failed(RuntimeError("Caught KeyError in DataLoader worker process 0.\nOriginal Traceback"))
