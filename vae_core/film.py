"""A training film: a run's sample grid at every epoch, as an animated GIF with the epoch and loss on each frame.

Pillow writes the GIF (palette per frame, loop forever); we only lay out the frames. The
film holds at most `max_frames`: past that, every other frame is dropped and later
epochs are kept at the same spacing, so a 10,000-epoch run costs no more than a 300-epoch one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MAX_FRAMES = 300
FRAME_MS = 250  # four epochs a second
LAST_FRAME_MS = 2000  # the finished model stays on screen before the loop starts again
CAPTION_PX = 18


@dataclass
class Film:
    max_frames: int = MAX_FRAMES
    frames: list[tuple[int, float, np.ndarray]] = field(default_factory=list)  # (epoch, test loss, grid)
    every: int = 1  # epochs between kept frames

    def add(self, epoch: int, loss: float, grid: np.ndarray) -> None:
        """Keep this epoch's grid (uint8, H×W or H×W×3) if it falls on the film's spacing."""
        if self.frames and epoch - self.frames[-1][0] < self.every:
            return
        self.frames.append((epoch, loss, grid))
        if len(self.frames) > self.max_frames:
            self.frames = self.frames[::2]
            self.every *= 2

    def gif(self) -> bytes:
        """The film as GIF bytes; ValueError if it has no frame yet."""
        if not self.frames:
            raise ValueError("the run has no finished epoch to show yet")
        pictures = [_captioned(grid, f"epoch {epoch} · test loss {loss:.2f}") for epoch, loss, grid in self.frames]
        out = io.BytesIO()
        durations = [FRAME_MS] * (len(pictures) - 1) + [LAST_FRAME_MS]
        pictures[0].save(out, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0,
                         optimize=False, disposal=1)
        return out.getvalue()


def _captioned(grid: np.ndarray, text: str) -> Image.Image:
    """The grid, doubled in size so digits read on a phone, under a caption band."""
    picture = Image.fromarray(grid).convert("RGB")
    picture = picture.resize((picture.width * 2, picture.height * 2), Image.Resampling.NEAREST)
    frame = Image.new("RGB", (picture.width, picture.height + CAPTION_PX), "white")
    frame.paste(picture, (0, CAPTION_PX))
    ImageDraw.Draw(frame).text((4, 3), text, fill="black", font=ImageFont.load_default(size=12))
    return frame
