"""Data: paired multi-sensor samples, resampling, splits, readers for real data sets."""

from dcat.data.avletters import (
    AVLETTERS_CLASSES,
    load_avletters,
    read_htk,
    read_lips,
    speaker_ids,
)
from dcat.data.manifest import load_manifest
from dcat.data.paired import ChannelStats, PairedDataset, fit_normalization
from dcat.data.resample import resample_linear
from dcat.data.sp_sw_har import SP_SW_HAR_ACTIVITIES, load_sp_sw_har
from dcat.data.splits import Split, make_split
from dcat.data.utd_mhad import UTD_MHAD_ACTIONS, load_utd_mhad, load_utd_mhad_embedded
from dcat.data.windows import Stream, Windows, cut_windows

__all__ = [
    "AVLETTERS_CLASSES",
    "SP_SW_HAR_ACTIVITIES",
    "UTD_MHAD_ACTIONS",
    "ChannelStats",
    "PairedDataset",
    "Split",
    "Stream",
    "Windows",
    "cut_windows",
    "fit_normalization",
    "load_avletters",
    "load_manifest",
    "load_sp_sw_har",
    "load_utd_mhad",
    "load_utd_mhad_embedded",
    "make_split",
    "read_htk",
    "read_lips",
    "resample_linear",
    "speaker_ids",
]
