import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from radn_cli.errors import UsageError
from radn_cli.models.radn import RADN, RADNConfig
from radn_cli.train.config import TrainConfig
from radn_cli.train.data import (
    CLEAN,
    PhotoBank,
    choose_cells,
    find_photos,
    make_batch,
    make_validation_set,
    split_photos,
    window_shape,
)
from radn_cli.train.labels import (
    BEST_CELL,
    CATEGORIES,
    CELLS,
    KADID_DMOS,
    preference_probability,
    table_from_csv,
)
from radn_cli.train.radn_recipe import batch_loss, cross_pairs
from radn_cli.train.trainer import WeightAverage, train
from radn_cli.weights import load_weights

KADID_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "labels" / "kadid10k.csv"


@pytest.mark.skipif(not KADID_CSV.is_file(), reason="../shared/data/labels/kadid10k.csv not present")
def test_embedded_table_matches_the_label_file():
    table = table_from_csv(KADID_CSV)
    assert sorted(table) == list(range(1, 26))
    for type_id, levels in table.items():
        for (mean, sd), (emb_mean, emb_sd) in zip(levels, KADID_DMOS[type_id]):
            assert mean == pytest.approx(emb_mean, abs=6e-5) and sd == pytest.approx(emb_sd, abs=6e-5)


def test_categories_cover_every_type_once():
    assert sorted(t for types in CATEGORIES.values() for t in types) == list(range(1, 26))
    assert len(CELLS) == 125


def test_preference_probability():
    m = torch.tensor([3.0]), torch.tensor([0.3]), torch.tensor([3.0]), torch.tensor([0.4])
    assert float(preference_probability(*m)) == pytest.approx(0.5)
    p = preference_probability(
        torch.tensor([4.0]), torch.tensor([0.3]), torch.tensor([3.0]), torch.tensor([0.4])
    )
    assert float(p) == pytest.approx(0.97725, abs=1e-4)  # Phi(1 / 0.5) = Phi(2)


def _settings(**kw) -> TrainConfig:
    """Settings for the data functions alone (no run reads ``photos`` or ``out``)."""
    return TrainConfig(photos="unused", out="unused", **kw)


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(6):
        base = rng.random((12, 16, 3))
        image = np.kron(base, np.ones((6, 6, 1)))  # blocky, 72x96, structured enough to distort
        Image.fromarray((image * 255).astype(np.uint8)).save(root / f"p{i}.png")
    (root / ".hidden.png").write_bytes(b"x")
    return root


def test_split_is_by_photo_and_deterministic(photo_dir):
    photos = find_photos(photo_dir)
    assert len(photos) == 6
    train_a, val_a = split_photos(photos, 0.34, seed=1)
    train_b, val_b = split_photos(photos, 0.34, seed=1)
    assert (train_a, val_a) == (train_b, val_b)
    assert len(val_a) == 2 and not set(train_a) & set(val_a)


def test_batches_share_patch_positions(photo_dir):
    bank = PhotoBank(find_photos(photo_dir), 64)
    g = torch.Generator().manual_seed(0)
    settings = _settings(photos_per_batch=2, per_photo=3, patches=5, crop=64)
    batch = make_batch(bank, g, settings, contrastive=True, device=torch.device("cpu"))
    assert batch.ref.shape == (2, 5, 3, 32, 32) and batch.dist.shape == (2, 3, 5, 3, 32, 32)
    assert batch.mean.shape == batch.sd.shape == (2, 3)
    for p in range(2):  # contrastive: all versions of a photo come from one category
        types = {int(t) for t in batch.cells[p, :, 0]}
        assert any(types <= set(c) for c in CATEGORIES.values())
    again = make_batch(
        bank, torch.Generator().manual_seed(0), settings, contrastive=True, device=torch.device("cpu")
    )
    assert torch.equal(batch.dist, again.dist)


def test_window_shape_is_kadid_4_by_3_oriented_like_the_photo():
    assert window_shape(321, 481, 512) == (321, 481)  # a BSDS photo is smaller than the window
    assert window_shape(1000, 1500, 512) == (384, 512)
    assert window_shape(1500, 1000, 512) == (512, 384)


def test_window_keeps_the_generator_stretch_from_acting_on_a_flat_crop(tmp_path):
    # A photo whose centre is flat and dim (0.30-0.40) but which spans 0..1 at its border, like a real
    # photo around a patch of sky. KADID stretched whole images (a no-op here); stretching the crop
    # alone turns its 0.1 range into 0..1, so every version of the centre differs from the reference.
    y, x = np.mgrid[0:384, 0:512]
    image = np.repeat((0.30 + 0.10 * x / 511.0)[..., None], 3, axis=2)
    image[:8], image[-8:] = 0.0, 1.0
    Image.fromarray((image * 255).round().astype(np.uint8)).save(tmp_path / "sky.png")
    bank = PhotoBank([tmp_path / "sky.png"], 128)

    def error(window):
        settings = _settings(val_photos=1, val_per_photo=12, val_crop=128, split_seed=3, window=window)
        val = make_validation_set(bank, settings, torch.device("cpu"))
        return (val.dist - val.ref[:, None]).abs().mean(dim=(2, 3, 4))[0], val.cells

    crop_alone, cells = error(0)
    windowed, same_cells = error(512)
    assert torch.equal(cells, same_cells)
    assert float(windowed.median()) < 0.25 * float(crop_alone.median())
    settings = _settings(photos_per_batch=1, per_photo=2, patches=3, crop=128, shift=1.0, window=512)
    batch = make_batch(
        bank, torch.Generator().manual_seed(0), settings, contrastive=False, device=torch.device("cpu")
    )
    assert batch.dist.shape == (1, 2, 3, 3, 32, 32)


def _batch(photo_dir, seed=0, **kw):
    bank = PhotoBank(find_photos(photo_dir), 64)
    settings = _settings(**{**dict(photos_per_batch=2, per_photo=3, patches=4, crop=64), **kw})
    return make_batch(
        bank, torch.Generator().manual_seed(seed), settings, contrastive=False, device=torch.device("cpu")
    )


def test_invariance_off_draws_the_same_batches_as_before(photo_dir):
    plain = _batch(photo_dir)
    off = _batch(photo_dir, clean=0.0, shift=0.0)
    assert torch.equal(plain.dist, off.dist) and torch.equal(plain.mean, off.mean)


def test_focus_types_are_drawn_more_often_and_weight_one_changes_nothing(photo_dir):
    focus = (16, 17, 18, 25)  # 20 of 125 cells (16%); at weight 3, 60 of 165 (36%) of the draws
    g = torch.Generator().manual_seed(0)
    draws = [c for _ in range(400) for c in choose_cells(6, False, g, focus, 3.0)]
    share = sum(t in focus for t, _ in draws) / len(draws)
    assert 0.30 < share < 0.42
    for _ in range(50):
        cells = choose_cells(6, False, g, focus, 50.0)
        assert len(set(cells)) == 6  # still distinct cells, so cross-type pairs remain
    uniform = torch.Generator().manual_seed(0)
    plain = [c for _ in range(400) for c in choose_cells(6, False, uniform)]
    assert sum(t in focus for t, _ in plain) / len(plain) < 0.22
    contrastive = choose_cells(6, True, torch.Generator().manual_seed(1), focus, 50.0)
    assert contrastive == choose_cells(6, True, torch.Generator().manual_seed(1))  # regression stage only
    assert torch.equal(_batch(photo_dir).dist, _batch(photo_dir, focus=focus, focus_weight=1.0).dist)


def test_clean_versions_are_undistorted_copies_with_the_best_target(tmp_path):
    # a photo whose red and green values are 2x and 2y: a copy's shift reads off its difference
    y, x = np.mgrid[0:80, 0:100]
    ramp = np.stack([2 * x, 2 * y, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    batch = _batch(tmp_path, clean=1.0, per_photo=6, patches=3)
    assert (batch.cells == torch.tensor(CLEAN)).all()
    assert torch.allclose(batch.mean, torch.full_like(batch.mean, BEST_CELL[0]))
    assert BEST_CELL[0] == max(m for cells in KADID_DMOS.values() for m, _ in cells)
    shifts = set()
    for p in range(2):
        for k in range(6):
            diff = ((batch.dist[p, k] - batch.ref[p]) * 255).round()  # (N, 3, 32, 32)
            per_channel = diff.amax(dim=(0, 2, 3))
            assert torch.equal(diff.amin(dim=(0, 2, 3)), per_channel)  # one shift for the whole copy
            assert per_channel.abs().max() <= 4 and per_channel[2] == 0  # at most 2 px
            shifts.add(tuple(per_channel.tolist()))
    assert len(shifts) > 1


def test_shifted_distorted_versions_keep_their_targets(photo_dir):
    plain = _batch(photo_dir, seed=3, per_photo=5)
    shifted = _batch(photo_dir, seed=3, per_photo=5, shift=1.0)
    assert not torch.equal(plain.dist, shifted.dist)
    assert (shifted.cells != torch.tensor(CLEAN)).any(dim=-1).all()
    for p in range(2):
        for k in range(5):
            t, level = (int(v) for v in shifted.cells[p, k])
            assert float(shifted.mean[p, k]) == pytest.approx(KADID_DMOS[t][level - 1][0])


@pytest.mark.heavy  # a training run
def test_worker_batches_depend_on_seed_and_step_only(photo_dir):
    from radn_cli.train.data import SyntheticStream, stream_loader

    small = dict(crop=64, photos_per_batch=2, per_photo=3, patches=2, seed=5)
    settings = _settings(**small, pretrain_steps=1, steps=3, clean=0.2, shift=0.2)  # 4 steps
    photos = find_photos(photo_dir)
    inline = list(SyntheticStream(photos, settings))
    two = list(stream_loader(SyntheticStream(photos, settings), 2, torch.device("cpu")))
    resumed = list(SyntheticStream(photos, settings, start=2))
    assert len(inline) == len(two) == 4 and len(resumed) == 2
    for a, b in zip(inline, two):
        assert torch.equal(a.dist, b.dist) and torch.equal(a.mean, b.mean) and torch.equal(a.cells, b.cells)
    for a, b in zip(inline[2:], resumed):
        assert torch.equal(a.dist, b.dist)
    assert not torch.equal(inline[0].dist, inline[1].dist)
    types = {int(t) for t in inline[0].cells[0, :, 0]}  # step 0 is contrastive: one category
    assert any(types <= set(c) for c in CATEGORIES.values())


@pytest.mark.heavy  # a training run
def test_training_with_data_workers_runs_and_resumes(photo_dir, tmp_path):
    settings = dict(pretrain_steps=0, steps=3, data_workers=2)
    train(_config(photo_dir, tmp_path / "a", **settings))
    straight = load_weights(tmp_path / "a" / "last.safetensors").model.state_dict()
    train(_config(photo_dir, tmp_path / "b", **settings), stop_at=2)
    train(_config(photo_dir, tmp_path / "b", **{**settings, "data_workers": 1}), resume=True)  # 2 -> 1 worker
    again = load_weights(tmp_path / "b" / "last.safetensors").model.state_dict()
    for name, tensor in straight.items():
        torch.testing.assert_close(again[name], tensor, rtol=0, atol=0)


def test_cross_pairs_span_photos_and_skip_equal_cells():
    cells = torch.tensor([[[1, 1], [2, 3]], [[1, 1], [0, 0]]])  # photo 0: two cells, photo 1: one repeats
    i, j = cross_pairs(cells)
    pairs = set(zip(i.tolist(), j.tolist()))
    assert pairs == {(0, 1), (0, 3), (1, 2), (1, 3), (2, 3)}  # (0, 2) share the cell (1, 1)


@pytest.mark.heavy  # a training run
def test_rank_loss_adds_the_cross_type_preference_term(photo_dir):
    torch.manual_seed(0)
    model = RADN(RADNConfig.wresnet()).eval()
    batch = _batch(photo_dir, patches=2)
    off = torch.autocast("cpu", enabled=False)
    torch.set_grad_enabled(False)
    mse = batch_loss(model, batch, False, off)
    both = batch_loss(model, batch, False, off, rank_weight=1.0)
    assert float(both) > float(mse) > 0
    double = batch_loss(model, batch, False, off, rank_weight=2.0)
    torch.set_grad_enabled(True)
    assert float(double - mse) == pytest.approx(2 * float(both - mse), rel=1e-4)


@pytest.mark.heavy  # a training run
def test_weight_average_follows_the_model():
    torch.manual_seed(0)
    model = RADN(RADNConfig.wresnet())
    average = WeightAverage(model, decay=0.75)
    start = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    average.update(model)
    for a, s in zip(average.model.parameters(), start):
        torch.testing.assert_close(a, s + 0.25)
    assert not any(p.requires_grad for p in average.model.parameters())


def _config(photo_dir, out, **kw):
    settings = dict(
        photos=str(photo_dir),
        out=str(out),
        arch="wresnet",
        deformable=False,
        attention=False,
        pretrain_steps=2,
        steps=2,
        photos_per_batch=1,
        per_photo=2,
        patches=2,
        crop=64,
        val_fraction=0.34,
        val_photos=2,
        val_per_photo=2,
        val_crop=64,
        val_every=2,
        checkpoint_every=1,
    )
    settings.update(kw)
    return TrainConfig(**settings)


@pytest.mark.heavy  # a training run
def test_training_runs_exports_and_resumes_identically(photo_dir, tmp_path):
    events = []
    best = train(_config(photo_dir, tmp_path / "a"), on_event=events.append)
    assert [e["stage"] for e in events if e["event"] == "step"] == ["contrastive"] * 2 + ["regression"] * 2
    info = load_weights(best).info
    assert info.metadata["score_direction"] == "higher_is_better"
    assert "KADID-10k" in info.metadata["score_scale"]
    assert json.loads(info.metadata["recipe"])["pretrain_steps"] == 2
    straight = load_weights(tmp_path / "a" / "last.safetensors").model.state_dict()

    # the same run interrupted after 3 of 4 steps, then resumed: bit-identical weights
    train(_config(photo_dir, tmp_path / "b"), stop_at=3)
    with pytest.raises(UsageError, match="other settings"):
        train(_config(photo_dir, tmp_path / "b", lr=1e-3), resume=True)
    resumed, progress = [], _Recorded()
    train(_config(photo_dir, tmp_path / "b"), resume=True, on_event=resumed.append, progress=progress)
    assert [e["step"] for e in resumed if e["event"] == "step"] == [4]
    assert progress.calls == [("start", "training", 1), ("advance",)]  # the steps left
    again = load_weights(tmp_path / "b" / "last.safetensors").model.state_dict()
    for name, tensor in straight.items():
        torch.testing.assert_close(again[name], tensor, rtol=0, atol=0)


class _Recorded:
    """A ``radn_cli.progress.Progress`` that records its calls."""

    def __init__(self):
        self.calls = []

    def start(self, label, total):
        self.calls.append(("start", label, total))

    def advance(self):
        self.calls.append(("advance",))

    def failed(self, message):
        self.calls.append(("failed", message))


def test_step_lines_every_ten_steps_when_piped_and_in_the_bar_on_a_terminal(monkeypatch, capsys):
    import io

    from rich.console import Console

    from radn_cli.cli import train as train_cli

    def step(n, **validation):
        event = {"event": "step", "step": n, "total": 30, "stage": "regression", "loss": 0.5}
        return {**event, "lr": 1e-4, "images_per_s": 8.0, **validation}

    for event in (step(9), step(10), step(11), step(12, val_srocc=0.75), step(30)):
        train_cli.show_training_event(event)
    assert capsys.readouterr().err.splitlines() == [
        "step 10/30 regression loss 0.5000 lr 1.00e-04 8.0 img/s",
        "step 12/30 regression loss 0.5000 lr 1.00e-04 8.0 img/s | held-out SROCC 0.7500",
        "step 30/30 regression loss 0.5000 lr 1.00e-04 8.0 img/s",
    ]
    monkeypatch.setattr(train_cli, "stderr", Console(file=io.StringIO(), force_terminal=True))
    for event in (step(10), step(12, val_srocc=0.75), step(30)):
        train_cli.show_training_event(event)
    assert capsys.readouterr().err.splitlines() == [
        "step 12/30 regression loss 0.5000 lr 1.00e-04 8.0 img/s | held-out SROCC 0.7500"
    ]


@pytest.mark.heavy  # a training run
def test_ema_and_invariance_runs_resume_identically(photo_dir, tmp_path):
    settings = dict(pretrain_steps=0, steps=4, per_photo=3, ema=0.5, clean=0.5, shift=0.5, rank_weight=1.0)
    settings.update(focus=(16, 25), focus_weight=4.0)
    train(_config(photo_dir, tmp_path / "a", **settings))
    straight = load_weights(tmp_path / "a" / "last.safetensors").model.state_dict()
    assert json.loads(load_weights(tmp_path / "a" / "last.safetensors").info.metadata["recipe"])["ema"] == 0.5
    train(_config(photo_dir, tmp_path / "b", **settings), stop_at=2)
    train(_config(photo_dir, tmp_path / "b", **settings), resume=True)
    again = load_weights(tmp_path / "b" / "last.safetensors").model.state_dict()
    for name, tensor in straight.items():  # the exported average, not the raw weights, and resumed exactly
        torch.testing.assert_close(again[name], tensor, rtol=0, atol=0)


def test_config_errors(photo_dir, tmp_path):
    with pytest.raises(UsageError):
        _config(photo_dir, tmp_path, steps=0, pretrain_steps=0)
    with pytest.raises(UsageError):
        _config(photo_dir, tmp_path, per_photo=1)
    for bad_setting in (
        {"ema": 1.0},
        {"clean": 1.5},
        {"shift": -0.1},
        {"rank_weight": -1.0},
        {"focus": [0, 16]},
        {"focus": [26]},
        {"focus_weight": 0.0},
        {"focus": "16"},
        {"focus": [True]},
    ):
        with pytest.raises(UsageError):
            _config(photo_dir, tmp_path, **bad_setting)
    assert _config(photo_dir, tmp_path, focus=[18, 16, 16]).focus == (16, 18)
    assert _config(photo_dir, tmp_path, focus=16).focus_weight == 2.0  # --focus alone does something
    with pytest.raises(UsageError, match="unknown --arch 'nope'"):
        train(_config(photo_dir, tmp_path, arch="nope"))
    bad = tmp_path / "settings.json"
    bad.write_text(json.dumps({"photos": "x", "out": "y", "learning_rate": 1}))
    with pytest.raises(UsageError, match="learning_rate"):
        TrainConfig.from_file(bad)


@pytest.mark.heavy  # a training run
def test_fine_tuning_on_a_rated_database(photo_dir, tmp_path):
    rows = ["ref,dist,mos"]
    for i in range(3):
        rows.append(f"p{i}.png,p{i + 3}.png,{1.5 + i}")
    (photo_dir / "labels.csv").write_text("\n".join(rows) + "\n")
    events = []
    best = train(
        _config(photo_dir, tmp_path / "db", pretrain_steps=0, db=str(photo_dir / "labels.csv")),
        on_event=events.append,
    )
    assert events[0]["rated_pairs"] == 3
    info = load_weights(best).info
    assert "labels.csv" in info.metadata["training_data"]
    assert info.trained_on("labels") == "labels.csv"  # radn eval warns on that database


def _write_tiny_settings(path, photo_dir, out, **steps):
    """A TOML settings file of a tiny wresnet run on ``photo_dir`` (``steps``: its step counts)."""
    counts = "".join(f"{name} = {value}\n" for name, value in steps.items())
    path.write_text(
        f'photos = "{photo_dir}"\nout = "{out}"\narch = "wresnet"\ndeformable = false\nattention = false\n'
        f"{counts}photos_per_batch = 1\nper_photo = 2\npatches = 2\ncrop = 64\n"
        "val_fraction = 0.34\nval_photos = 1\nval_per_photo = 2\nval_crop = 64\n"
    )


@pytest.mark.heavy  # a training run
def test_train_command(photo_dir, tmp_path):
    from typer.testing import CliRunner

    from radn_cli.cli import app

    out = tmp_path / "cli"
    settings = tmp_path / "settings.toml"
    _write_tiny_settings(settings, photo_dir, out, pretrain_steps=1, steps=1)
    flags = ["--seed", "3", "--ema", "0.9", "--clean", "0.2", "--shift", "0.3", "--rank-weight", "0.5"]
    flags += ["--focus", "18, 16", "--focus-weight", "2.5"]
    result = CliRunner().invoke(app, ["train", "--config", str(settings), *flags])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out / "best.safetensors")
    saved = json.loads((out / "config.json").read_text())
    assert (saved["seed"], saved["ema"], saved["clean"], saved["shift"], saved["rank_weight"]) == (
        3,
        0.9,
        0.2,
        0.3,
        0.5,
    )
    assert (saved["focus"], saved["focus_weight"]) == ([16, 18], 2.5)
    missing = CliRunner().invoke(app, ["train", "--steps", "1"])
    assert missing.exit_code == 2
    for bad_focus in ("16,x", "0,16"):
        bad = CliRunner().invoke(app, ["train", "--config", str(settings), "--focus", bad_focus])
        assert bad.exit_code == 2 and "--focus" in bad.output and "Traceback" not in bad.output


def test_initialisation_keeps_activations_order_one():
    from radn_cli.models.radn import RADN
    from radn_cli.train.radn_recipe import OFFSET_LR_FACTOR, RADNRecipe, init_weights

    model = RADN()
    init_weights(model)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        trunk = model.trunk(x)
        features, offsets = model.encode_reference(x)
    assert 0.05 < float(trunk.pow(2).mean().sqrt()) < 5
    assert float(offsets.abs().max()) == 0  # starts as a plain convolution
    groups = RADNRecipe.parameter_groups(model, 1e-4)
    assert groups[1]["lr"] == pytest.approx(1e-4 * OFFSET_LR_FACTOR)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


@pytest.mark.heavy  # a training run
def test_split_seed_keeps_the_held_out_set_while_the_batches_change(photo_dir, tmp_path, monkeypatch):
    import radn_cli.train.radn_recipe as recipe

    seen = []  # (validation set, seed of the training stream) of each run
    real_set, real_stream = recipe.make_validation_set, recipe.SyntheticStream

    def spy_set(*args, **kw):
        seen.append([real_set(*args, **kw)])
        return seen[-1][0]

    def spy_stream(photos, settings, **kw):
        seen[-1].append(settings.seed)
        return real_stream(photos, settings, **kw)

    monkeypatch.setattr(recipe, "make_validation_set", spy_set)
    monkeypatch.setattr(recipe, "SyntheticStream", spy_stream)
    settings = dict(pretrain_steps=0, steps=1)
    for name, kw in (("a", dict(seed=1)), ("b", dict(seed=5, split_seed=1)), ("c", dict(seed=5))):
        train(_config(photo_dir, tmp_path / name, **settings, **kw))
    (val_a, stream_a), (val_b, stream_b), (val_c, stream_c) = seen
    assert torch.equal(val_a.dist, val_b.dist) and torch.equal(val_a.ref, val_b.ref)  # one held-out set
    assert not torch.equal(val_a.dist, val_c.dist)  # without --split-seed, --seed picks it
    assert (stream_a, stream_b, stream_c) == (1, 5, 5)  # while the batches follow --seed


@pytest.mark.heavy  # a training run
def test_a_checkpoint_from_before_a_new_setting_resumes(photo_dir, tmp_path):
    settings = dict(pretrain_steps=0, steps=2)
    train(_config(photo_dir, tmp_path / "run", **settings), stop_at=1)
    checkpoint = tmp_path / "run" / "last.ckpt"
    saved = torch.load(checkpoint, weights_only=True)
    del saved["config"]["window"], saved["world"]  # as written before --window and torchrun existed
    torch.save(saved, checkpoint)
    events = []
    train(_config(photo_dir, tmp_path / "run", **settings), resume=True, on_event=events.append)
    assert [e["step"] for e in events if e["event"] == "step"] == [2]
    with pytest.raises(UsageError, match="other settings"):
        train(_config(photo_dir, tmp_path / "run", **settings, window=256), resume=True)


def _signal_at(step, *signums):
    """An on_event callback that sends this process the signals once the run has finished ``step``."""
    import os

    def on_event(event):
        if event["event"] == "step" and event["step"] == step:
            for signum in signums:
                os.kill(os.getpid(), signum)

    return on_event


@pytest.mark.heavy  # a training run
def test_sigterm_saves_the_step_and_the_weights_and_resume_is_exact(photo_dir, tmp_path):
    import signal

    from radn_cli.errors import ExitCode
    from radn_cli.train.stop import TrainingStopped

    settings = dict(pretrain_steps=0, steps=4, per_photo=3, ema=0.5, checkpoint_every=100, val_every=100)
    train(_config(photo_dir, tmp_path / "a", **settings))
    straight = load_weights(tmp_path / "a" / "last.safetensors").model.state_dict()

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingStopped, match="SIGTERM at step 3 of 4") as stopped:
        train(_config(photo_dir, tmp_path / "b", **settings), on_event=_signal_at(3, signal.SIGTERM))
    assert (stopped.value.step, stopped.value.exit_code) == (3, ExitCode.TERMINATED)
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are put back
    assert load_weights(tmp_path / "b" / "last.safetensors").info.metadata["steps"] == "3"
    events = []
    train(_config(photo_dir, tmp_path / "b", **settings), resume=True, on_event=events.append)
    assert [e["step"] for e in events if e["event"] == "step"] == [4]  # step 3 was not lost
    again = load_weights(tmp_path / "b" / "last.safetensors").model.state_dict()
    for name, tensor in straight.items():
        torch.testing.assert_close(again[name], tensor, rtol=0, atol=0)


@pytest.mark.heavy  # a training run
def test_a_second_signal_stops_at_once(photo_dir, tmp_path):
    import signal

    from radn_cli.errors import ExitCode
    from radn_cli.train.stop import TrainingStopped

    settings = dict(pretrain_steps=0, steps=3, checkpoint_every=100)
    with pytest.raises(KeyboardInterrupt):
        train(
            _config(photo_dir, tmp_path / "a", **settings),
            on_event=_signal_at(1, signal.SIGINT, signal.SIGINT),
        )
    assert not (tmp_path / "a" / "last.safetensors").exists()
    with pytest.raises(TrainingStopped, match="at once") as stopped:
        twice = _signal_at(1, signal.SIGTERM, signal.SIGTERM)
        train(_config(photo_dir, tmp_path / "b", **settings), on_event=twice)
    assert stopped.value.exit_code == ExitCode.TERMINATED
    assert not (tmp_path / "b" / "last.safetensors").exists()


def test_data_workers_leave_ctrl_c_and_sigterm_to_the_training_process(photo_dir, monkeypatch):
    import signal
    from types import SimpleNamespace

    from conftest import small_stream

    stream = small_stream(photo_dir, steps=1)
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: SimpleNamespace(id=0, num_workers=1))
    try:
        assert len(list(stream)) == 1  # as worker 0 of 1 would
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


@pytest.mark.heavy  # a training run
def test_train_command_stopped_by_sigterm_says_so_in_one_line(photo_dir, tmp_path, monkeypatch):
    import signal

    from typer.testing import CliRunner

    from radn_cli.cli import app
    from radn_cli.cli import train as train_cli

    shown = train_cli.show_training_event
    hook = _signal_at(1, signal.SIGTERM)
    monkeypatch.setattr(train_cli, "show_training_event", lambda event: (shown(event), hook(event)))
    settings = tmp_path / "settings.toml"
    _write_tiny_settings(settings, photo_dir, tmp_path / "run", steps=3)
    result = CliRunner().invoke(app, ["train", "--config", str(settings)])
    assert result.exit_code == 143, result.output
    lines = [line for line in result.stderr.splitlines() if "SIGTERM" in line]
    assert len(lines) == 1 and "step 1 of 3" in lines[0] and "--resume" in lines[0]
    assert "Traceback" not in result.output
    assert (tmp_path / "run" / "last.safetensors").is_file() and result.stdout == ""
