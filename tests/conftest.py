import pytest


@pytest.fixture(autouse=True)
def _empty_data_cache(tmp_path_factory, monkeypatch):
    """Keep tests off any MNIST a developer has cached, so the offline path is what runs here."""
    monkeypatch.setenv("VAE_STUDIO_DATA", str(tmp_path_factory.mktemp("data-cache")))


@pytest.fixture(scope="session")
def subset():
    from vae_core.datasets import load_offline_subset

    return load_offline_subset()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    from testing.appserver import Server

    folder = tmp_path_factory.mktemp("server")
    srv = Server(folder / "runs", folder / "app.log")
    yield srv
    srv.close()


@pytest.fixture
def client(server):
    """A client of its own for each test: its own browser session, so its own active models."""
    from gradio_client import Client

    return Client(server.url, verbose=False)


@pytest.fixture(scope="session")
def digit_png(tmp_path_factory, subset):
    """A real test digit saved as a dark-on-light 112×112 PNG, as someone might photograph or draw it."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("digits")
    paths = []
    for index in (0, 7):
        path = folder / f"digit{index}.png"
        Image.fromarray(255 - subset.test_images[index, 0]).resize((112, 112)).save(path)
        paths.append(path)
    return paths
