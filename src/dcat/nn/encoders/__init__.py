"""Modality encoders, created by name: ``create_encoder("imu", in_channels=6)``.

Every encoder maps its modality's input to a sequence of embeddings ``(B, S, d_model)`` and
exposes ``d_model``.
"""

from dcat.nn.encoders.audio import AudioEncoder, LogMel
from dcat.nn.encoders.conv1d import ConvBlock1d, IMUEncoder, SequenceEncoder
from dcat.nn.encoders.registry import create_encoder, is_encoder, list_encoders, register_encoder
from dcat.nn.encoders.skeleton import SkeletonEncoder, SkeletonHCN, SkeletonTCN
from dcat.nn.encoders.video import VideoEncoder
from dcat.nn.encoders.video_small import SmallVideoEncoder

__all__ = [
    "AudioEncoder",
    "ConvBlock1d",
    "IMUEncoder",
    "LogMel",
    "SequenceEncoder",
    "SkeletonEncoder",
    "SkeletonHCN",
    "SkeletonTCN",
    "SmallVideoEncoder",
    "VideoEncoder",
    "create_encoder",
    "is_encoder",
    "list_encoders",
    "register_encoder",
]
