import numpy as np
import pytest
from PIL import Image

from vae_core.images import ImageError, load_digit, sketch_ink


@pytest.fixture
def digit(subset):
    return subset.test_images[3, 0]  # white ink on black, 28×28


def similar(a, b):
    return np.corrcoef(a.ravel(), b.ravel())[0, 1]


@pytest.mark.parametrize("make", [
    lambda d: Image.fromarray(d),                                              # MNIST itself
    lambda d: Image.fromarray(255 - d).resize((300, 300)),                     # dark ink on paper, larger
    lambda d: Image.fromarray(np.pad(255 - d, ((5, 20), (31, 2)), constant_values=255)).convert("RGB"),  # 53×61
    lambda d: Image.fromarray(np.dstack([np.zeros_like(d)] * 3 + [d]), "RGBA"),  # ink only in alpha
    lambda d: Image.fromarray((255 - d).astype(np.uint16) * 257),              # 16-bit grey
])
def test_any_reasonable_picture_becomes_the_same_mnist_style_digit(tmp_path, digit, make):
    path = tmp_path / "d.png"
    make(digit).save(path)
    x = load_digit(str(path))
    assert x.shape == (1, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert x[0, 0, 0].max() < 0.05  # background black, like MNIST
    assert similar(x[0, 0].numpy(), digit / 255.0) > 0.7


def test_bad_pictures_are_refused_with_reasons(tmp_path):
    (tmp_path / "t.png").write_text("not an image")
    with pytest.raises(ImageError, match="not an image"):
        load_digit(str(tmp_path / "t.png"))
    good = tmp_path / "g.png"
    Image.new("L", (28, 28)).save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:40])
    with pytest.raises(ImageError, match="not an image"):
        load_digit(str(tmp_path / "cut.png"))
    with pytest.raises(ImageError, match="blank"):
        load_digit(str(good))
    Image.new("1", (6000, 4000)).save(tmp_path / "huge.png")
    with pytest.raises(ImageError, match="24 megapixels"):
        load_digit(str(tmp_path / "huge.png"))


def test_sketch_ink_reads_the_brush_and_ignores_a_blank_canvas():
    canvas = np.zeros((280, 280, 4), np.uint8)  # transparent
    assert sketch_ink(canvas) is None
    canvas[100:180, 130:150] = (0, 0, 0, 255)  # a black stroke
    ink = sketch_ink(canvas)
    assert ink[140, 140] == 255 and ink[10, 10] == 0


def test_off_white_paper_becomes_black_not_a_grey_box():
    import numpy as np

    from vae_core.images import ink_to_tensor

    grey = np.full((100, 100), 0.8)  # a photo of paper under room light: nowhere near white
    grey[20:28, 20:80] = 0.1  # a dark "7": its bar …
    grey[20:80, 72:80] = 0.1  # … and its stem, with paper between them inside the digit's box
    digit = ink_to_tensor(grey).numpy()[0, 0]
    assert (digit > 0.05).mean() < 0.2  # the paper, inside the box too, is black as MNIST's background
    assert digit.max() > 0.8  # and the stroke keeps nearly the full range
