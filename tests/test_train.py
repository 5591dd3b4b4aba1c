import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from radn_cli.errors import UsageError
from radn_cli.train.data import PhotoBank, find_photos, make_batch, split_photos
from radn_cli.train.labels import CATEGORIES, CELLS, KADID_DMOS, preference_probability, table_from_csv
from radn_cli.train.loop import TrainConfig, train
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
    batch = make_batch(
        bank, g, photos=2, per_photo=3, patches=5, crop=64, contrastive=True, device=torch.device("cpu")
    )
    assert batch.ref.shape == (2, 5, 3, 32, 32) and batch.dist.shape == (2, 3, 5, 3, 32, 32)
    assert batch.mean.shape == batch.sd.shape == (2, 3)
    for p in range(2):  # contrastive: all versions of a photo come from one category
        types = {int(t) for t in batch.cells[p, :, 0]}
        assert any(types <= set(c) for c in CATEGORIES.values())
    again = make_batch(
        bank,
        torch.Generator().manual_seed(0),
        photos=2,
        per_photo=3,
        patches=5,
        crop=64,
        contrastive=True,
        device=torch.device("cpu"),
    )
    assert torch.equal(batch.dist, again.dist)


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
    resumed = []
    train(_config(photo_dir, tmp_path / "b"), resume=True, on_event=resumed.append)
    assert [e["step"] for e in resumed if e["event"] == "step"] == [4]
    again = load_weights(tmp_path / "b" / "last.safetensors").model.state_dict()
    for name, tensor in straight.items():
        torch.testing.assert_close(again[name], tensor, rtol=0, atol=0)


def test_config_errors(photo_dir, tmp_path):
    with pytest.raises(UsageError):
        _config(photo_dir, tmp_path, steps=0, pretrain_steps=0)
    with pytest.raises(UsageError):
        _config(photo_dir, tmp_path, per_photo=1)
    bad = tmp_path / "settings.json"
    bad.write_text(json.dumps({"photos": "x", "out": "y", "learning_rate": 1}))
    with pytest.raises(UsageError, match="learning_rate"):
        TrainConfig.from_file(bad)


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
    assert "labels.csv" in load_weights(best).info.metadata["training_data"]


def test_train_command(photo_dir, tmp_path):
    from typer.testing import CliRunner

    from radn_cli.cli import app

    out = tmp_path / "cli"
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'photos = "{photo_dir}"\nout = "{out}"\narch = "wresnet"\ndeformable = false\nattention = false\n'
        "pretrain_steps = 1\nsteps = 1\nphotos_per_batch = 1\nper_photo = 2\npatches = 2\ncrop = 64\n"
        "val_fraction = 0.34\nval_photos = 1\nval_per_photo = 2\nval_crop = 64\n"
    )
    result = CliRunner().invoke(app, ["train", "--config", str(settings), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out / "best.safetensors")
    assert json.loads((out / "config.json").read_text())["seed"] == 3
    missing = CliRunner().invoke(app, ["train", "--steps", "1"])
    assert missing.exit_code == 2


def test_initialisation_keeps_activations_order_one():
    from radn_cli.model import RADN
    from radn_cli.train.loop import OFFSET_LR_FACTOR, init_weights, parameter_groups

    model = RADN()
    init_weights(model)
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        trunk = model.trunk(x)
        features, offsets = model.encode_reference(x)
    assert 0.05 < float(trunk.pow(2).mean().sqrt()) < 5
    assert float(offsets.abs().max()) == 0  # starts as a plain convolution
    groups = parameter_groups(model, 1e-4)
    assert groups[1]["lr"] == pytest.approx(1e-4 * OFFSET_LR_FACTOR)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
