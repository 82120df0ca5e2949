"""Detecting generated images: data (real/fake sets, augmentation), training, calibration, evaluation, spectra.

The network lives in ``ganforge.models.detector``; this package holds everything around it:

- ``data``: real and fake image sets (dataset names, folders, ganforge generator checkpoints sampled on the fly),
  CNNDetection-style augmentation (Wang et al. 2020), the tiles an image is scored on, deterministic perturbations.
- ``config``: the typed training configuration (``--config`` JSON: sources and train sections, defaults, unknown keys
  refused) and the removed modes a saved detector may name.
- ``train``: training in named stages: split, fit normalisers, fit, place thresholds, calibrate, report.
- ``processing``: the solver that fits the processing head's JPEG recogniser (kept outside the network).
- ``thresholds``: the one threshold rule, one threshold per processing combination.
- ``calibration``: temperature scaling and negative log-likelihood (Guo et al. 2017).
- ``evaluate``: AP, ROC-AUC, accuracy at 0.5 and ECE as pure functions of scores and labels.
- ``distance``: the optional second stage, how far a picture's FID Inception features lie from real pictures'.
- ``add_distance``: fitting that stage on real pictures and writing it into a detector checkpoint.
- ``predict``: scoring images and folders with per-file error entries; saving and loading detector checkpoints.
- ``spectrum``: the average spectrum of a folder, saved as a picture (real vs fake side by side).
"""
