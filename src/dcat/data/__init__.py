"""Data: paired multi-sensor samples, splits, the frame store, the data-set registry, readers.

Names are imported on first use: :mod:`dcat.io.media` and the readers do not pull in torch.
"""

from __future__ import annotations

from dcat.lazy import lazy_exports

_EXPORTS = {
    "dcat.data.avletters": [
        "AVLETTERS_CLASSES",
        "load_avletters",
        "read_htk",
        "read_lips",
        "speaker_ids",
    ],
    "dcat.data.cough": ["COUGH_CLASSES", "load_cough"],
    "dcat.data.frame_store": ["FrameClip", "FrameStore", "VideoClip"],
    "dcat.data.manifest": ["load_manifest"],
    "dcat.data.paired": [
        "ChannelStats",
        "PairedDataset",
        "StreamInfo",
        "UNLABELLED",
        "fit_normalization",
    ],
    "dcat.data.registry": ["dataset_names", "get_dataset", "list_datasets", "register_dataset"],
    "dcat.data.sp_sw_har": ["SP_SW_HAR_ACTIVITIES", "load_sp_sw_har"],
    "dcat.data.splits": ["Split", "make_split", "resolve_subjects", "sort_names", "subject_name"],
    "dcat.data.uestc_mmea": ["PAPER_8_CLASSES", "UESTC_CLASSES", "load_uestc_mmea"],
    "dcat.data.utd_mhad": ["UTD_MHAD_ACTIONS", "load_utd_mhad", "load_utd_mhad_embedded"],
    "dcat.data.vggsound": ["load_vggsound"],
    "dcat.io.media": ["decode_audio_track", "decode_video", "read_wav", "resample_audio"],
    "dcat.io.resample": ["resample_linear"],
    "dcat.io.windows": ["Stream", "Windows", "cut_windows"],
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
