import gzip
import json
import pickle
import time

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from vae_core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vae_core.config import ModelConfig
from vae_core.datasets import DataError, load_dataset, read_idx
from vae_core.models import build_model


def write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    (gzip.open if gz else open)(path, "wb").write(header + array.astype(np.uint8).tobytes())


def idx_folder(folder, subset, gz):
    folder.mkdir(parents=True)
    for stem, array in (("train-images-idx3-ubyte", subset.train_images[:300, 0]),
                        ("train-labels-idx1-ubyte", subset.train_labels[:300]),
                        ("t10k-images-idx3-ubyte", subset.test_images[:100, 0]),
                        ("t10k-labels-idx1-ubyte", subset.test_labels[:100])):
        write_idx(folder / (stem + (".gz" if gz else "")), array, gz)


def test_offline_fallback_is_the_stratified_subset_and_says_so():
    started = time.monotonic()
    data = load_dataset("mnist")
    assert time.monotonic() - started < 10
    assert "offline subset" in data.note
    assert data.train_images.shape == (4500, 1, 28, 28) and data.test_images.shape == (500, 1, 28, 28)
    assert np.bincount(data.train_labels).tolist() == [450] * 10
    assert np.bincount(data.test_labels).tolist() == [50] * 10
    again = load_dataset("mnist")
    assert np.array_equal(data.test_images, again.test_images)
    train_set = {img.tobytes() for img in data.train_images}
    assert not any(img.tobytes() in train_set for img in data.test_images)


@pytest.mark.parametrize("layout", ["torchvision", "flat-gz"])
def test_data_root_reads_both_layouts(tmp_path, subset, layout):
    folder = tmp_path / "MNIST" / "raw" if layout == "torchvision" else tmp_path / "flat"
    idx_folder(folder, subset, gz=layout == "flat-gz")
    data = load_dataset("mnist", tmp_path if layout == "torchvision" else folder)
    assert data.note == ""
    assert np.array_equal(data.train_images, subset.train_images[:300])
    assert np.array_equal(data.test_labels, subset.test_labels[:100])


def test_debian_fashion_mnist_folder_is_read_whole():
    from vae_core.datasets import DEBIAN_FASHION

    if not DEBIAN_FASHION.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed here")
    data = load_dataset("fashion-mnist", DEBIAN_FASHION)
    assert data.train_images.shape == (60000, 1, 28, 28) and data.test_images.shape == (10000, 1, 28, 28)


def test_bad_data_roots_get_plain_errors(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_dataset("mnist", tmp_path / "nope")
    with pytest.raises(DataError, match="no mnist idx files"):
        load_dataset("mnist", tmp_path)
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("cifar")
    (tmp_path / "bad-idx").write_bytes(b"\x00\x00\x0d\x01junk")
    with pytest.raises(DataError, match="not a uint8 idx"):
        read_idx(tmp_path / "bad-idx")


@pytest.fixture
def checkpoint(tmp_path):
    model = build_model(ModelConfig())
    return save_checkpoint(tmp_path / "ck", model, torch.optim.Adam(model.parameters()), {"epochs_trained": 0})


def test_missing_file_corrupt_tensors_and_lying_config_are_refused(checkpoint, tmp_path):
    (checkpoint / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(checkpoint)
    (checkpoint / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_checkpoint(checkpoint)
    save_file({k: v.contiguous() for k, v in build_model(ModelConfig()).state_dict().items()},
              checkpoint / "model.safetensors")
    config = json.loads((checkpoint / "config.json").read_text())
    config["model"]["latent"] = 12
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(checkpoint)
    (checkpoint / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(checkpoint)


class _Trap:
    """Unpickling this writes a file: proof, without any mock, of whether anything unpickled it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_files_are_refused_unopened(tmp_path):
    marker = tmp_path / "unpickled"
    for name in ("model.pt", "weights.bin", "noext"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps(_Trap(str(marker))))
        with pytest.raises(CheckpointError, match="pickled|is a file"):
            load_checkpoint(path)
    torch.save({"x": _Trap(str(marker))}, tmp_path / "zip.pt")
    with pytest.raises(CheckpointError, match="unpickling can run arbitrary code"):
        load_checkpoint(tmp_path / "zip.pt")
    assert not marker.exists()


def test_saving_over_a_checkpoint_replaces_it_whole(checkpoint):
    model = build_model(ModelConfig(latent=3))
    save_checkpoint(checkpoint, model, None, {"epochs_trained": 5})
    loaded = load_checkpoint(checkpoint)
    assert loaded.model.config.latent == 3 and loaded.info["epochs_trained"] == 5
    assert not (checkpoint / "optimizer.safetensors").exists()  # nothing of the old one lingers
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["ck"]


def test_a_config_that_lies_about_its_sizes_is_refused_before_anything_is_allocated(checkpoint, tmp_path):
    """hidden 8192 and 256×256 pictures would be gigabytes of weights; the file holds a few hundred kB."""
    import resource
    import subprocess
    import sys

    config = json.loads((checkpoint / "config.json").read_text())
    config["model"].update(hidden=8192, latent=64, image_shape=[1, 256, 256])
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="does not match its config.json"):
        load_checkpoint(checkpoint)

    def room_for_torch_alone():  # an honest evaluate runs in 4.5 GB of address space; the lie needs 4.3 GB more
        resource.setrlimit(resource.RLIMIT_AS, (4_500_000_000, 4_500_000_000))

    result = subprocess.run([sys.executable, "-m", "vae_core", "evaluate", str(checkpoint)], capture_output=True,
                            text=True, preexec_fn=room_for_torch_alone, timeout=120)
    assert result.returncode == 2 and "does not match its config.json" in result.stderr, result.stderr
    for field, value in [("hidden", "200"), ("image_shape", [1, 100_000, 100_000]), ("n_classes", 10**9)]:
        config["model"] = {**json.loads(json.dumps(config["model"])), "hidden": 200, "latent": 10,
                           "image_shape": [1, 28, 28], field: value}
        (checkpoint / "config.json").write_text(json.dumps(config))
        with pytest.raises(CheckpointError, match="does not describe a model"):
            load_checkpoint(checkpoint)


def test_idx_files_that_disagree_are_refused_before_training(tmp_path, subset):
    folder = tmp_path / "idx"
    idx_folder(folder, subset, gz=False)
    write_idx(folder / "train-labels-idx1-ubyte", subset.train_labels[:100].astype(np.uint8), gz=False)
    with pytest.raises(DataError, match="must match"):
        load_dataset("mnist", folder)
