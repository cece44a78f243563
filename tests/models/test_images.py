"""Images travel as 8-bit PNG data URLs; the server accepts nothing else."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from radloop.errors import InputError
from radloop.models.images import from_data_url, image_from_pixels, to_data_url
from radloop.study import Image


def test_a_data_url_round_trip_keeps_pixels_to_8_bits(radiograph: Image) -> None:
    url = to_data_url(radiograph)
    assert url.startswith("data:image/png;base64,")
    back = from_data_url(url)
    assert back.shape == radiograph.shape
    assert np.abs(back.pixels - radiograph.pixels).max() <= 0.5 / 255 + 1e-6


def test_a_large_image_is_shrunk_keeping_its_aspect() -> None:
    image = image_from_pixels(np.zeros((400, 200), dtype=np.float32))
    assert from_data_url(to_data_url(image, max_side=100)).shape == (100, 50)


def test_an_http_image_url_is_refused_so_the_server_never_fetches() -> None:
    with pytest.raises(InputError, match=r"expected a base64 image data URL"):
        from_data_url("http://example.org/chest.png")


def test_bytes_that_are_not_an_image_are_refused() -> None:
    url = "data:image/png;base64," + base64.b64encode(b"not a png").decode()
    with pytest.raises(InputError, match="expected a PNG or JPEG image"):
        from_data_url(url)


def test_an_image_over_the_byte_limit_is_refused_before_decoding(radiograph: Image) -> None:
    with pytest.raises(InputError, match="expected an image of at most 10 bytes"):
        from_data_url(to_data_url(radiograph), max_bytes=10)
