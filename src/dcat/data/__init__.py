"""Data: paired multi-sensor samples, resampling, splits, readers for real data sets."""

from dcat.data.avletters import (
    AVLETTERS_CLASSES,
    load_avletters,
    read_htk,
    read_lips,
    speaker_ids,
)
from dcat.data.paired import ChannelStats, PairedDataset, fit_normalization
from dcat.data.resample import resample_linear
from dcat.data.splits import Split, make_split
from dcat.data.utd_mhad import UTD_MHAD_ACTIONS, load_utd_mhad, load_utd_mhad_embedded

__all__ = [
    "AVLETTERS_CLASSES",
    "UTD_MHAD_ACTIONS",
    "ChannelStats",
    "PairedDataset",
    "Split",
    "fit_normalization",
    "load_avletters",
    "load_utd_mhad",
    "load_utd_mhad_embedded",
    "make_split",
    "read_htk",
    "read_lips",
    "resample_linear",
    "speaker_ids",
]
