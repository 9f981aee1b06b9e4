"""Data: paired multi-sensor samples, resampling, splits, readers for real data sets."""

from dcat.data.avletters import (
    AVLETTERS_CLASSES,
    load_avletters,
    read_htk,
    read_lips,
    speaker_ids,
)
from dcat.data.cough import COUGH_CLASSES, load_cough
from dcat.data.manifest import load_manifest
from dcat.data.media import (
    FrameStore,
    VideoClip,
    decode_audio_track,
    decode_video,
    read_wav,
    resample_audio,
)
from dcat.data.paired import ChannelStats, PairedDataset, fit_normalization
from dcat.data.resample import resample_linear
from dcat.data.sp_sw_har import SP_SW_HAR_ACTIVITIES, load_sp_sw_har
from dcat.data.splits import Split, make_split
from dcat.data.uestc_mmea import PAPER_8_CLASSES, UESTC_CLASSES, load_uestc_mmea
from dcat.data.utd_mhad import UTD_MHAD_ACTIONS, load_utd_mhad, load_utd_mhad_embedded
from dcat.data.vggsound import load_vggsound
from dcat.data.windows import Stream, Windows, cut_windows

__all__ = [
    "AVLETTERS_CLASSES",
    "COUGH_CLASSES",
    "PAPER_8_CLASSES",
    "SP_SW_HAR_ACTIVITIES",
    "UESTC_CLASSES",
    "UTD_MHAD_ACTIONS",
    "ChannelStats",
    "FrameStore",
    "PairedDataset",
    "Split",
    "Stream",
    "VideoClip",
    "Windows",
    "cut_windows",
    "decode_audio_track",
    "decode_video",
    "fit_normalization",
    "load_avletters",
    "load_cough",
    "load_manifest",
    "load_sp_sw_har",
    "load_uestc_mmea",
    "load_utd_mhad",
    "load_utd_mhad_embedded",
    "load_vggsound",
    "make_split",
    "read_htk",
    "read_lips",
    "read_wav",
    "resample_audio",
    "resample_linear",
    "speaker_ids",
]
