import os

import pytest
import torch
from conftest import seeded_model

from radn_cli.errors import WeightsError
from radn_cli.models.radn import RADN, RADNConfig
from radn_cli.weights import (
    convert_checkpoint,
    install_weights,
    list_weights,
    load_weights,
    read_info,
    resolve_weights,
    save_weights,
    tensors_sha256,
)


def test_round_trip_keeps_tensors_and_metadata(weights_file):
    loaded = load_weights(weights_file)
    original = seeded_model().state_dict()
    for name, tensor in loaded.model.state_dict().items():
        torch.testing.assert_close(tensor, original[name].float(), rtol=0, atol=0)
    info = loaded.info
    assert info.config == RADNConfig()
    assert info.metadata["score_direction"] == "higher_is_better"
    assert info.metrics == {"note": "untrained"}
    assert info.weights_id.startswith("test-seeded@") and len(info.sha256) == 64


def test_sha256_depends_on_every_byte():
    a = {"x": torch.zeros(3), "y": torch.ones(2)}
    b = {"x": torch.zeros(3), "y": torch.tensor([1.0, 1.0 + 2**-20])}
    assert tensors_sha256(a) != tensors_sha256(b)
    assert tensors_sha256(a) == tensors_sha256(dict(reversed(list(a.items()))))


def test_flipped_byte_is_detected(weights_file, tmp_path):
    data = bytearray(weights_file.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the tensor data
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 .* does not match") as info:
        load_weights(bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("keep", [0, 7, 1000, 0.5])
def test_truncated_file_is_a_clear_error(weights_file, tmp_path, keep):
    data = weights_file.read_bytes()
    bad = tmp_path / "truncated.safetensors"
    bad.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(WeightsError) as info:
        load_weights(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_foreign_safetensors_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"a": torch.zeros(1)}, str(path))
    with pytest.raises(WeightsError, match="not radn weights"):
        read_info(path)


def test_mismatched_keys_are_named(tmp_path):
    state = RADN().state_dict()
    state.pop("fc2_q.bias")
    state["extra.weight"] = torch.zeros(1)
    state["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    path = tmp_path / "bad.safetensors"
    save_weights(state, path, config=RADNConfig(), name="bad")
    with pytest.raises(WeightsError) as info:
        load_weights(path)
    message = str(info.value)
    assert "fc2_q.bias" in message and "extra.weight" in message and "conv1.weight (64, 3, 5, 5)" in message


def test_lookup_order(weights_file, tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match="no RADN weights are installed") as info:
        resolve_weights()
    assert os.environ["RADN_DATA_DIR"] in str(info.value)
    target = install_weights(weights_file)
    assert resolve_weights().path == target and resolve_weights().source == "user data dir"
    monkeypatch.setenv("RADN_WEIGHTS", str(weights_file))
    assert resolve_weights().source == "$RADN_WEIGHTS"
    assert resolve_weights(weights_file).source == "--weights"
    assert [source for source, _ in list_weights()] == ["$RADN_WEIGHTS", "user data dir"]
    monkeypatch.setenv("RADN_WEIGHTS", str(tmp_path / "missing.safetensors"))
    with pytest.raises(WeightsError, match="RADN_WEIGHTS"):
        resolve_weights()
    with pytest.raises(WeightsError, match="given with --weights"):
        resolve_weights(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("config", [RADNConfig(), RADNConfig.wresnet(), RADNConfig(attention=False)])
@pytest.mark.heavy  # a full model saved and converted per config
def test_convert_legacy_dataparallel_checkpoint(tmp_path, config):
    model = seeded_model(config)
    legacy = {f"module.{k}": v.float() for k, v in model.state_dict().items()}
    src = tmp_path / "RADN-lr=0.0001-bs=2"
    torch.save(legacy, src, _use_new_zipfile_serialization=False)
    info = convert_checkpoint(src, tmp_path / "converted.safetensors")
    assert info.config == config
    converted = load_weights(tmp_path / "converted.safetensors").model
    for name, tensor in converted.state_dict().items():
        assert torch.equal(tensor, legacy[f"module.{name}"])


def test_convert_refuses_pickled_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    src = tmp_path / "evil.pth"
    torch.save({"conv1.weight": Evil()}, src)
    with pytest.raises(WeightsError, match="weights_only=True"):
        convert_checkpoint(src, tmp_path / "out.safetensors")


def test_convert_refuses_unknown_models(tmp_path):
    src = tmp_path / "other.pth"
    torch.save({"layer.weight": torch.zeros(2)}, src)
    with pytest.raises(WeightsError, match="neither RADN nor WResNet"):
        convert_checkpoint(src, tmp_path / "out.safetensors")
