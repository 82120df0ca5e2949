"""Live training diagnostics, run by the loop with every progress grid (see :mod:`ganforge.train.monitor` for the
measurements themselves).

Each evaluation yields plain numbers for ``diagnostics.jsonl`` and TensorBoard, and warnings for the console:

- ``coverage/<k>`` and ``coverage/classes``: the class histogram of generated samples under the packaged digit
  classifier, for labelled datasets that classifier reads (28x28, 1 or 3 channels: MNIST-like, Stacked MNIST), with a
  warning when coverage collapses;
- ``modes``, ``modes/hq``: for the toy point sets (``ring8``, ``grid25``, ...), the modes covered and the share of
  high-quality samples (:func:`ganforge.metrics.toy.toy_modes`), with a warning while modes are missing;
- ``D/sign_train``, ``D/sign_heldout``, ``D/overfit_gap``: ``E[sign D(x)]`` on training reals vs. reals held out of
  training (``--heldout N``), the overfitting signal of ADA (Karras et al. 2020);
- a warning when D saturates (mean D(x) and D(G(z)) as probabilities beyond 0.95 / 0.05 over the last logging
  interval), for the logistic losses where those numbers are probabilities.

A warning is printed when its condition starts and again when it clears, not at every grid.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ganforge.data import GanDataset
from ganforge.metrics.evaluate import default_extractor
from ganforge.train.monitor import (
    class_coverage,
    coverage_warning,
    covered_classes,
    overfit_signal,
    saturation_message,
)

LOGISTIC_LOSSES = ("non-saturating", "minimax", "stylegan2")


class Diagnostics:
    """Coverage, overfitting and saturation checks for one run.

    Args:
        dataset: the training set (after any held-out split).
        heldout: reals held out of training, or None.
        loss_name: the run's loss; saturation is only judged for logistic losses.
        device: where G, D and the classifier run.
        n: generated samples per coverage histogram; ``n_signal``: reals per overfitting estimate.
    """

    def __init__(
        self,
        dataset: GanDataset,
        heldout: GanDataset | None,
        loss_name: str,
        device: torch.device,
        n: int = 1000,
        n_signal: int = 500,
        seed: int = 0,
    ) -> None:
        self.dataset, self.heldout, self.device = dataset, heldout, device
        self.n, self.seed = n, seed
        self.check_saturation = loss_name in LOGISTIC_LOSSES
        self.use_coverage = bool(
            dataset.is_image
            and dataset.labels is not None
            and default_extractor(dataset.channels, dataset.resolution) == "digits"
        )
        self.use_modes = "modes" in dataset.info and "mode_std" in dataset.info  # a toy point set
        self._classifier: Any = None
        self.active: set[str] = set()  # warnings currently in force
        g = torch.Generator().manual_seed(seed)
        self.train_idx = torch.randperm(len(dataset), generator=g)[:n_signal]
        self.held_idx = None if heldout is None else torch.randperm(len(heldout), generator=g)[:n_signal]

    def classifier(self) -> Any:
        if self._classifier is None:
            from ganforge.metrics import get_extractor

            self._classifier = get_extractor("digits", self.device)
        return self._classifier

    def run(
        self, G: nn.Module, D: nn.Module | None, recent: dict[str, float], warn: bool = True
    ) -> tuple[dict[str, Any], list[str]]:
        """Measure; returns ``(values, messages)``: the numbers to log and the warnings that started or cleared.

        ``recent``: the loop's stats averaged over the last logging interval (``D/real``, ``D/fake``). ``warn=False``
        (the untrained networks at kimg 0, which always "collapse") records the numbers without warnings.
        """
        values: dict[str, Any] = {}
        found: dict[str, str] = {}
        if self.use_coverage:
            counts = class_coverage(G, self.classifier(), self.n, self.seed, self.device)
            values["coverage"] = counts.tolist()
            values["coverage/classes"] = float(covered_classes(counts).sum())
            if (text := coverage_warning(counts)) is not None:
                found["coverage"] = text
        if self.use_modes:
            values |= self._modes(G)
            if values["modes"] < values["modes/total"]:
                found["modes"] = (f"mode collapse: G covers {values['modes']:.0f} of {values['modes/total']:.0f} "
                                  f"modes ({values['modes/hq']:.0%} of samples near a mode)")
        if D is not None and self.held_idx is not None and self.heldout is not None:
            values |= self._overfit(D)
        if self.check_saturation and "D/real" in recent and "D/fake" in recent:
            if (text := saturation_message(recent["D/real"], recent["D/fake"])) is not None:
                found["saturation"] = text
        if not warn:
            found = {}
        messages = [f"warning: {text}" for key, text in found.items() if key not in self.active]
        messages += [f"cleared: {key} warning no longer holds" for key in sorted(self.active - set(found))]
        self.active = set(found)
        values["warnings"] = sorted(found.values())
        return values, messages

    def _modes(self, G: nn.Module) -> dict[str, float]:
        """Mode statistics of ``self.n`` samples of G on fixed seeds (the toy sets' nearest-centre protocol)."""
        from ganforge.metrics.context import SampleSet
        from ganforge.metrics.toy import toy_modes

        was_training = G.training
        G.eval()
        try:
            fake = SampleSet.from_generator(G, self.n, self.seed, None, self.device)
            points = torch.cat(list(fake.batches(500)))  # [n, D, 1, 1]
        finally:
            G.train(was_training)
        stats = toy_modes(points, self.dataset.info)
        return {k: stats[k] for k in ("modes", "modes/total", "modes/hq", "modes/kl")}

    def _overfit(self, D: nn.Module) -> dict[str, float]:
        assert self.heldout is not None and self.held_idx is not None
        with torch.no_grad():
            train = self.dataset.batch(self.train_idx).to(self.device)
            held = self.heldout.batch(self.held_idx).to(self.device)
            tc = hc = None
            if getattr(D, "c_dim", 0):
                tc = self.dataset.onehot(self.train_idx).to(self.device)
                hc = self.heldout.onehot(self.held_idx).to(self.device)
            return overfit_signal(D, train, held, tc, hc)

    @staticmethod
    def scalars(values: dict[str, Any]) -> dict[str, float]:
        """The numeric values for TensorBoard, the histogram as one scalar per class."""
        out = {k: float(v) for k, v in values.items() if isinstance(v, (int, float))}
        for k, count in enumerate(values.get("coverage", [])):
            out[f"coverage/{k}"] = float(count)
        return out
