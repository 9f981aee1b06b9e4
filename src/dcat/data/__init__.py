"""Data: paired multi-sensor samples, resampling, splits, readers for real data sets.

Names are imported on first use: :mod:`dcat.io.media` and the readers do not pull in torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AVLETTERS_CLASSES": "dcat.data.avletters",
    "COUGH_CLASSES": "dcat.data.cough",
    "ChannelStats": "dcat.data.paired",
    "FrameStore": "dcat.data.frame_store",
    "PAPER_8_CLASSES": "dcat.data.uestc_mmea",
    "PairedDataset": "dcat.data.paired",
    "SP_SW_HAR_ACTIVITIES": "dcat.data.sp_sw_har",
    "Split": "dcat.data.splits",
    "Stream": "dcat.io.windows",
    "StreamInfo": "dcat.data.paired",
    "UESTC_CLASSES": "dcat.data.uestc_mmea",
    "UTD_MHAD_ACTIONS": "dcat.data.utd_mhad",
    "VideoClip": "dcat.data.frame_store",
    "Windows": "dcat.io.windows",
    "cut_windows": "dcat.io.windows",
    "decode_audio_track": "dcat.io.media",
    "decode_video": "dcat.io.media",
    "fit_normalization": "dcat.data.paired",
    "load_avletters": "dcat.data.avletters",
    "load_cough": "dcat.data.cough",
    "load_manifest": "dcat.data.manifest",
    "load_sp_sw_har": "dcat.data.sp_sw_har",
    "load_uestc_mmea": "dcat.data.uestc_mmea",
    "load_utd_mhad": "dcat.data.utd_mhad",
    "load_utd_mhad_embedded": "dcat.data.utd_mhad",
    "load_vggsound": "dcat.data.vggsound",
    "make_split": "dcat.data.splits",
    "read_htk": "dcat.data.avletters",
    "read_lips": "dcat.data.avletters",
    "read_wav": "dcat.io.media",
    "resample_audio": "dcat.io.media",
    "resample_linear": "dcat.io.resample",
    "speaker_ids": "dcat.data.avletters",
}

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
    "StreamInfo",
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

if TYPE_CHECKING:
    from dcat.data.avletters import (
        AVLETTERS_CLASSES,
        load_avletters,
        read_htk,
        read_lips,
        speaker_ids,
    )
    from dcat.data.cough import COUGH_CLASSES, load_cough
    from dcat.data.frame_store import FrameStore, VideoClip
    from dcat.data.manifest import load_manifest
    from dcat.data.paired import ChannelStats, PairedDataset, StreamInfo, fit_normalization
    from dcat.data.sp_sw_har import SP_SW_HAR_ACTIVITIES, load_sp_sw_har
    from dcat.data.splits import Split, make_split
    from dcat.data.uestc_mmea import PAPER_8_CLASSES, UESTC_CLASSES, load_uestc_mmea
    from dcat.data.utd_mhad import UTD_MHAD_ACTIONS, load_utd_mhad, load_utd_mhad_embedded
    from dcat.data.vggsound import load_vggsound
    from dcat.io.media import (
        decode_audio_track,
        decode_video,
        read_wav,
        resample_audio,
    )
    from dcat.io.resample import resample_linear
    from dcat.io.windows import Stream, Windows, cut_windows


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'dcat.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
