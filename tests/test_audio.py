"""The audio encoder: log-mel against numpy + librosa, SpecAugment, shapes, PANNs loading."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from torch import nn

from dcat import create_encoder, list_encoders
from dcat.nn.encoders import AudioEncoder, LogMel
from dcat.nn.encoders.audio import SpecAugment, load_panns_weights

SR = 16000
SMALL = (16, 32, 64)  # three blocks: time and frequency pooled by 4


def numpy_log_mel(
    x: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    """Independent float64 reference: reflect-pad, frame, periodic Hann, |rfft|², mel, ln."""
    padded = np.pad(x, n_fft // 2, mode="reflect")
    frames = 1 + (len(padded) - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(padded[index] * window, axis=-1)) ** 2  # (frames, bins)
    fb = librosa.filters.mel(
        sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False, norm="slaney"
    )
    return np.log(fb @ power.T + 1e-10)  # (n_mels, frames)


@pytest.mark.parametrize("freq", [1000.0, 3000.0])
def test_log_mel_matches_numpy_and_peaks_at_the_tone(freq: float) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    # A little broadband noise keeps every mel band well above float32 round-off, so the
    # comparison is meaningful in all bands, not only near the tone.
    x = 0.5 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(SR)
    logmel = LogMel(sample_rate=SR)
    out = logmel(torch.tensor(x, dtype=torch.float32)[None])[0].numpy()
    ref = numpy_log_mel(x, SR, 1024, 320, 64, 50.0, SR / 2)
    assert out.shape == ref.shape == (64, 1 + SR // 320)
    # |Δ ln mel| ≤ 1e-3 is a relative error ≤ 1e-3 on the mel energies; with the same reflect
    # padding the edge frames agree too, so all frames are compared.
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-3)

    centres = librosa.mel_frequencies(n_mels=64 + 2, fmin=50.0, fmax=SR / 2)[1:-1]
    assert out.mean(axis=1).argmax() == np.abs(centres - freq).argmin()


def test_log_mel_shapes_defaults_and_silence() -> None:
    logmel = LogMel()
    assert logmel.f_max == SR / 2
    assert logmel.mel_fb.dtype == torch.float32 and logmel.mel_fb.shape == (64, 513)
    assert "mel_fb" not in logmel.state_dict()  # derived from the configuration
    for samples in (513, 8000, 16000, 32001):
        x = torch.randn(3, samples)
        out = logmel(x)
        assert out.shape == (3, 64, 1 + samples // 320) == (3, 64, logmel.num_frames(samples))
        torch.testing.assert_close(logmel(x[:, None]), out)
    silence = logmel(torch.zeros(1, 4000))
    torch.testing.assert_close(silence, torch.full_like(silence, math.log(1e-10)))
    assert LogMel(n_fft=511, hop_length=100).num_frames(1000) == 10 == 1 + (1000 - 1) // 100


def test_log_mel_is_float32_under_cpu_bf16_autocast() -> None:
    logmel = LogMel(n_mels=32)
    x = torch.randn(2, 8000)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = logmel(x)
        deep = AudioEncoder(widths=SMALL, n_mels=32).eval()(x)
    assert out.dtype == torch.float32 and out.shape == (2, 32, 26)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, logmel(x))  # autocast really was off inside
    assert deep.shape == (2, 6, 64) and torch.isfinite(deep).all()


def test_log_mel_errors() -> None:
    logmel = LogMel()
    with pytest.raises(ValueError, match=r"expects a mono waveform .* got \(2, 2, 1000\)"):
        logmel(torch.randn(2, 2, 1000))
    with pytest.raises(ValueError, match=r"got \(1000,\)"):
        logmel(torch.randn(1000))
    with pytest.raises(ValueError, match=r"at least n_fft // 2 \+ 1 = 513 samples .* got 512"):
        logmel(torch.randn(2, 512))
    with pytest.raises(ValueError, match=r"f_max <= sample_rate / 2 = 8000.0, .*f_max=9000"):
        LogMel(f_max=9000)


def test_spec_augment_eval_identity_train_masks_and_seed() -> None:
    aug = SpecAugment(time_masks=2, time_width=16, freq_masks=2, freq_width=8)
    spec = torch.randn(16, 64, 101) + 10.0  # no zeros of its own
    assert aug.eval()(spec) is spec

    aug.train()
    torch.manual_seed(3)
    out = aug(spec)
    zero = out == 0
    zero_cols = zero.all(dim=1)  # (B, frames): masked time steps
    zero_rows = zero.all(dim=2)  # (B, n_mels): masked bins
    assert zero_cols.any() and zero_rows.any()
    # Every zero lies in a masked stripe, and the stripes respect the widths.
    assert torch.equal(zero, zero_cols[:, None, :] | zero_rows[:, :, None])
    assert zero_cols.sum(1).max() <= 2 * 16 and zero_rows.sum(1).max() <= 2 * 8
    torch.testing.assert_close(out[~zero], spec[~zero])
    # Masks differ between samples of a batch.
    assert not (zero_cols == zero_cols[:1]).all()

    torch.manual_seed(3)
    assert torch.equal(aug(spec), out)
    torch.manual_seed(4)
    assert not torch.equal(aug(spec), out)
    assert torch.equal(SpecAugment(0, 16, 0, 8).train()(spec), spec)


def test_spec_augment_errors() -> None:
    with pytest.raises(ValueError, match=r"\(B, n_mels, frames\), got \(2, 1, 64, 10\)"):
        SpecAugment()(torch.randn(2, 1, 64, 10))
    with pytest.raises(ValueError, match=r"non-negative, .*time_width=-1"):
        SpecAugment(time_width=-1)


@pytest.mark.parametrize(
    ("samples", "widths"),
    [(16000, SMALL), (32000, SMALL), (8000, SMALL), (8000, (8,)), (32000, (8, 16, 24, 32))],
)
def test_audio_encoder_shapes(samples: int, widths: tuple[int, ...]) -> None:
    enc = AudioEncoder(widths=widths).eval()
    out = enc(torch.randn(2, samples))
    frames = 1 + samples // 320
    expected = frames // 2 ** (len(widths) - 1)
    assert out.shape == (2, expected, widths[-1]) == (2, enc.output_length(samples), enc.d_model)
    torch.testing.assert_close(enc(torch.randn(2, 1, samples)).shape, out.shape)


@pytest.mark.slow
def test_audio_encoder_cnn14_default() -> None:
    enc = create_encoder("audio", 1).eval()
    assert isinstance(enc, AudioEncoder) and "audio" in list_encoders()
    assert [b.conv2.out_channels for b in enc.blocks] == [64, 128, 256, 512, 1024, 2048]
    assert enc.fc1 is None and enc.d_model == 2048
    assert enc.min_samples == 31 * 320  # 32 frames: time is pooled by 2**5
    assert enc(torch.randn(1, enc.min_samples)).shape == (1, 1, 2048)
    assert enc.output_length(32000) == 3  # 2 s: 101 frames


def test_audio_encoder_projection_and_min_samples() -> None:
    enc = AudioEncoder(widths=SMALL, d_model=24, dropout=0.0).eval()
    assert isinstance(enc.fc1, nn.Linear) and enc.d_model == 24
    assert enc.min_samples == 3 * 320
    out = enc(torch.randn(3, enc.min_samples))  # the shortest input: S = 1
    assert out.shape == (3, 1, 24) and (out >= 0).all()  # fc1 is followed by ReLU
    panns_like = AudioEncoder(widths=SMALL, projection=True)
    assert panns_like.fc1 is not None and panns_like.fc1.weight.shape == (64, 64)


def test_audio_encoder_trains_with_spec_augment() -> None:
    aug = SpecAugment(time_width=4, freq_width=4)
    enc = AudioEncoder(widths=SMALL, n_mels=32, spec_augment=aug).train()
    assert enc.spec_augment is aug
    assert isinstance(AudioEncoder(widths=SMALL, spec_augment=False).spec_augment, nn.Identity)
    wave = torch.randn(4, 8000, requires_grad=True)
    enc(wave).square().mean().backward()
    assert wave.grad is not None and torch.isfinite(wave.grad).all() and wave.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in enc.parameters())


def test_audio_encoder_errors() -> None:
    with pytest.raises(ValueError, match="in_channels must be 1, got 2"):
        AudioEncoder(2)
    with pytest.raises(ValueError, match="in_channels must be 1, got 2"):
        create_encoder("audio", 2)
    enc = AudioEncoder(widths=SMALL)
    with pytest.raises(ValueError, match=r"AudioEncoder expects a mono .* got \(2, 2, 16000\)"):
        enc(torch.randn(2, 2, 16000))
    with pytest.raises(ValueError, match=r"got \(16000,\)"):
        enc(torch.randn(16000))
    with pytest.raises(ValueError, match=r"at least 960 samples .* pool time by 4\), got 959"):
        enc(torch.randn(2, 959))
    with pytest.raises(ValueError, match="n_mels=16 is too few for 6 conv blocks"):
        AudioEncoder(n_mels=16)
    with pytest.raises(ValueError, match="d_model=24 differs from widths\\[-1\\]=64"):
        AudioEncoder(widths=SMALL, d_model=24, projection=False)


class _PannsLike(nn.Module):
    """A stand-in with PANNs CNN14's parameter names (bn0, conv_block{i}, fc1, fc_audioset)."""

    def __init__(self, widths: tuple[int, ...], n_mels: int = 64, classes: int = 527) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(n_mels)
        for i, (cin, cout) in enumerate(zip((1, *widths[:-1]), widths, strict=True), start=1):
            block = nn.Module()
            block.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            block.bn1 = nn.BatchNorm2d(cout)
            block.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            block.bn2 = nn.BatchNorm2d(cout)
            self.add_module(f"conv_block{i}", block)
        self.fc1 = nn.Linear(widths[-1], widths[-1])
        self.fc_audioset = nn.Linear(widths[-1], classes)
        with torch.no_grad():  # non-default statistics, so loading them is visible
            for name, tensor in self.state_dict().items():
                if name.endswith("running_var"):
                    tensor.uniform_(0.5, 5.0)
                elif name.endswith(("running_mean", "weight", "bias")):
                    tensor.normal_()


def _fake_panns_file(tmp_path: Path, widths: tuple[int, ...]) -> tuple[Path, dict]:
    state = dict(_PannsLike(widths).state_dict())
    state["spectrogram_extractor.stft.conv_real.weight"] = torch.randn(513, 1, 1024)
    state["logmel_extractor.melW"] = torch.randn(1024 // 2 + 1, 64)
    state["conv_block2.conv2.weight"] = torch.randn(7, 7, 3, 3)  # the wrong shape
    path = tmp_path / "Cnn14_fake.pth"
    torch.save({"model": state, "iteration": 1000}, path)
    return path, state


def test_panns_weights_map_and_report(tmp_path: Path) -> None:
    path, state = _fake_panns_file(tmp_path, (16, 32, 64))  # a 3-block checkpoint ...
    with pytest.warns(UserWarning, match=r"\d+ missing .* 14 unexpected, 1 shape mismatch"):
        enc = AudioEncoder(widths=(16, 32), weights=path)  # ... into 2 blocks, no fc1
    report = enc.load_report
    assert report is not None
    assert report["shape_mismatch"] == ["conv_block2.conv2.weight"]
    assert set(report["ignored"]) == {
        "fc_audioset.weight",
        "fc_audioset.bias",
        "spectrogram_extractor.stft.conv_real.weight",
        "logmel_extractor.melW",
    }
    assert (
        "fc1.weight" in report["unexpected"] and "conv_block3.conv1.weight" in report["unexpected"]
    )
    # fc1's weight and bias, conv_block3's two convolutions and two BNs (5 tensors each).
    assert len(report["unexpected"]) == 2 + 2 + 2 * 5
    assert report["missing"] == ["blocks.1.conv2.weight"]
    assert "blocks.0.bn1.num_batches_tracked" in report["loaded"]

    torch.testing.assert_close(enc.blocks[0].conv1.weight, state["conv_block1.conv1.weight"])
    torch.testing.assert_close(enc.blocks[1].bn2.running_var, state["conv_block2.bn2.running_var"])
    torch.testing.assert_close(enc.bn0.weight, state["bn0.weight"])
    db = 10 / math.log(10)
    torch.testing.assert_close(enc.bn0.running_mean, state["bn0.running_mean"] / db)
    bn_eps = enc.bn0.eps
    expected_var = (state["bn0.running_var"] + bn_eps) / db**2 - bn_eps
    torch.testing.assert_close(enc.bn0.running_var, expected_var)
    assert not torch.equal(enc.blocks[1].conv2.weight[:7, :7], state["conv_block2.conv2.weight"])


def test_panns_bn0_rescaling_matches_decibel_input(tmp_path: Path) -> None:
    path, state = _fake_panns_file(tmp_path, SMALL)
    enc = AudioEncoder(widths=SMALL, projection=True)
    with pytest.warns(UserWarning, match="1 shape mismatch"):
        load_panns_weights(enc, path)
    assert enc.load_report is not None and enc.load_report["unexpected"] == []
    torch.testing.assert_close(enc.fc1.weight, state["fc1.weight"])
    # PANNs' bn0 on decibels equals ours on natural logs once the statistics are rescaled.
    panns_bn0 = nn.BatchNorm2d(64).eval()
    panns_bn0.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("bn0.")})
    ln = enc.logmel(torch.randn(2, 8000)).unsqueeze(-1)
    expected = panns_bn0(ln * 10 / math.log(10))
    torch.testing.assert_close(enc.bn0.eval()(ln), expected, rtol=1e-5, atol=1e-5)

    with pytest.warns(UserWarning, match="1 shape mismatch"):
        report = load_panns_weights(enc, path, rescale_bn0=False)
    torch.testing.assert_close(enc.bn0.running_mean, state["bn0.running_mean"])
    assert report is enc.load_report


def test_panns_clean_load_is_silent_and_bad_files_raise(tmp_path: Path) -> None:
    ref = AudioEncoder(widths=(8, 16))
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_()
    state = {
        k.replace("blocks.0.", "conv_block1.").replace("blocks.1.", "conv_block2."): v
        for k, v in ref.state_dict().items()
    }
    path = tmp_path / "bare.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)  # DataParallel prefix
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc = AudioEncoder(widths=(8, 16), weights=path)
    assert enc.load_report is not None
    assert enc.load_report["missing"] == enc.load_report["unexpected"] == []
    torch.testing.assert_close(enc.blocks[1].conv2.weight, ref.blocks[1].conv2.weight)

    bad = tmp_path / "bad.pth"
    torch.save([1, 2, 3], bad)
    with pytest.raises(ValueError, match="holds no PANNs state dict"):
        load_panns_weights(enc, bad)
