"""Data: paired multi-sensor samples, resampling, readers for real data sets."""

from dcat.data.paired import ChannelStats, PairedDataset, fit_normalization
from dcat.data.resample import resample_linear
from dcat.data.utd_mhad import load_utd_mhad

__all__ = ["ChannelStats", "PairedDataset", "fit_normalization", "load_utd_mhad", "resample_linear"]
