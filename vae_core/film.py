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
MAX_SIDE = 512  # a frame's long side: a 256×256 model's 8×8 grid (2 K pixels a side) is shrunk to it
FRAME_MS = 250  # four epochs a second
LAST_FRAME_MS = 2000  # the finished model stays on screen before the loop starts again
CAPTION_PX = 18


@dataclass
class Film:
    max_frames: int = MAX_FRAMES
    frames: list[tuple[int, float, np.ndarray]] = field(default_factory=list)  # (epoch, test loss, grid)
    every: int = 1  # epochs between kept frames

    def add(self, epoch: int, loss: float, grid: np.ndarray) -> None:
        """Keep this epoch's grid (uint8, H×W or H×W×3; kept grey, at most MAX_SIDE a side) if it is due."""
        if self.frames and epoch - self.frames[-1][0] < self.every:
            return
        picture = Image.fromarray(grid).convert("L")
        picture.thumbnail((MAX_SIDE, MAX_SIDE))  # in place, aspect kept, never enlarged
        self.frames.append((epoch, loss, np.asarray(picture)))
        if len(self.frames) > self.max_frames:
            self.frames = self.frames[::2]
            self.every *= 2

    def gif(self) -> bytes:
        """The film as GIF bytes; ValueError if it has no frame yet."""
        if not self.frames:
            raise ValueError("the run has no finished epoch to show yet")
        # frames are captioned as Pillow asks for them: a long film is never all in memory at once
        pictures = (_captioned(grid, f"epoch {epoch} · test loss {loss:.2f}") for epoch, loss, grid in self.frames)
        out = io.BytesIO()
        durations = [FRAME_MS] * (len(self.frames) - 1) + [LAST_FRAME_MS]
        next(pictures).save(out, format="GIF", save_all=True, append_images=pictures, duration=durations, loop=0,
                            optimize=False, disposal=1)
        return out.getvalue()


def _captioned(grid: np.ndarray, text: str) -> Image.Image:
    """The grid under a caption band; a small grid doubled in size, so that 28-px digits read on a phone."""
    picture = Image.fromarray(grid)
    if max(picture.size) <= MAX_SIDE // 2:
        picture = picture.resize((picture.width * 2, picture.height * 2), Image.Resampling.NEAREST)
    frame = Image.new("L", (max(picture.width, 200), picture.height + CAPTION_PX), "white")
    frame.paste(picture, (0, CAPTION_PX))
    ImageDraw.Draw(frame).text((4, 3), text, fill=0, font=ImageFont.load_default(size=12))
    return frame
