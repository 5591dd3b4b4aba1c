import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# ../shared beside the checkout (the project's read-only data); tests that need it skip without it
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

torch.set_num_threads(1)  # small test images: one thread is faster and steadier


@pytest.hookimpl(tryfirst=True)  # before `-m` selects: `pytest -m quick` is the quick tier
def pytest_collection_modifyitems(items):
    """Every test not marked heavy, slow or gpu is also marked quick."""
    for item in items:
        if not any(item.get_closest_marker(name) for name in ("heavy", "slow", "gpu")):
            item.add_marker(pytest.mark.quick)


@pytest.fixture(scope="session", autouse=True)
def _ctrl_c_as_in_a_terminal():
    """SIGINT raises KeyboardInterrupt in the test process and is at its default in the processes the
    tests start (the kernel resets caught signals on exec), as when radn is run from a terminal, also
    when the suite runs as a background job of a shell without job control, which starts it with
    SIGINT ignored (and an ignored signal stays ignored in every child)."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


@pytest.fixture(autouse=True)
def _isolated_user_dir(request, tmp_path_factory, monkeypatch):
    """No test touches the real user data dir or picks up the user's RADN_WEIGHTS, and only tests
    marked `shipped` see the weights shipped in the package."""
    monkeypatch.setenv("RADN_DATA_DIR", str(tmp_path_factory.mktemp("radn_data")))
    monkeypatch.delenv("RADN_WEIGHTS", raising=False)
    monkeypatch.delenv("RADN_VERBOSE", raising=False)
    if request.node.get_closest_marker("shipped") is None:
        import radn_cli.weights

        hidden = tmp_path_factory.mktemp("no_shipped") / "default.safetensors"
        monkeypatch.setattr(radn_cli.weights, "shipped_weights_path", lambda: hidden)
    yield


def small_stream(photos, *, rank: int = 0, world: int = 1, **settings):
    """A SyntheticStream of 64-px crops, 1 photo x 2 versions x 2 patches, 4 steps (seed 4)."""
    from radn_cli.train.config import TrainConfig
    from radn_cli.train.data import SyntheticStream, find_photos

    small = dict(crop=64, photos_per_batch=1, per_photo=2, patches=2, steps=4, seed=4)
    config = TrainConfig(photos=str(photos), out="unused", **{**small, **settings})
    return SyntheticStream(find_photos(photos), config, rank=rank, world=world)


def seeded_model(config=None, seed: int = 0):
    """A float64 RADN with deterministic, signal-preserving random weights (see tests/golden/seeded.py)."""
    from golden.seeded import seeded_state_dict

    from radn_cli.models.radn import RADN

    model = RADN(config).double()  # float64 before loading, so the seeded values are not rounded
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict(seeded_state_dict(shapes, seed))
    return model.eval()


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory):
    """A radn weights file (fp32) holding a seeded RADN."""
    from radn_cli.weights import save_weights

    path = tmp_path_factory.mktemp("weights") / "seeded.safetensors"
    save_weights(
        seeded_model(),
        path,
        name="test-seeded",
        training_data="none: seeded random weights for tests",
        score_scale="arbitrary",
        metrics={"note": "untrained"},
    )
    return path


@pytest.fixture(scope="session")
def tid2013_dev(tmp_path_factory) -> Path:
    """The 480-pair TID2013 dev set rebuilt in its own layout by ../shared's make_tid2013.py."""
    source = SHARED_DATA / "tid2013_dev"
    if not (source / "make_tid2013.py").is_file():
        pytest.skip(f"the TID2013 dev set generator ({source}) is not available")
    out = tmp_path_factory.mktemp("tid") / "tid2013_dev"
    script = source / "make_tid2013.py"
    subprocess.run(
        [sys.executable, str(script), str(source / "refs"), str(source / "params.csv"), str(out)],
        check=True,
        capture_output=True,
    )
    return out
