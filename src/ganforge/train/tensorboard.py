"""TensorBoard logging (losses, D(x), D(G(z)), metrics, fixed-noise grids), imported lazily: it is slow to import."""

from __future__ import annotations

from pathlib import Path

import torch

from ganforge.media import make_grid


class TensorBoard:
    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def scalars(self, values: dict[str, float], nimg: int) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, global_step=nimg)

    def image(self, tag: str, images: torch.Tensor, nimg: int) -> None:
        grid = make_grid(images)  # [H, W, C] uint8
        self.writer.add_image(tag, grid, global_step=nimg, dataformats="HWC")

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
