"""Frames per second of the frozen ResNet-101 video source pass (bf16, channels-last).

Two measurements, eager and ``torch.compile``:

* ``reference_*``: plain torchvision ResNet-101 on a batch of 256 frames already on the GPU (what
  the issue's reference figures measure: 7 800 eager, 14 200 compiled on an H100);
* ``model_only_*``: dcat's source network (trunk, attention, head, on-device standardisation)
  on uint8 frames already on the GPU, to separate the network's cost from the data path;
* ``eager_frames_per_s`` / ``compiled_frames_per_s``: dcat's own extraction pass,
  :meth:`dcat.training.cache.SourceCache.build` over a
  :class:`dcat.data.frame_store.FrameStore` of decoded uint8
  frames on disk: prefetched, pinned uint8 batches, standardised on the device, through the
  whole source network (ResNet-101 trunk, attention, head) with K and V kept for the loss,
  including the cache key (a SHA-256 of the source weights and the data, ``cache_key_s``, a
  fixed cost per pass that a short pass does not amortise).

Prints one JSON object on its last line. Goal (issue 5): ``compiled_frames_per_s`` ≥ 14 000 on
an H100. Needs a CUDA device.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from dcat import ModalityNet, create_encoder
from dcat.data import PairedDataset
from dcat.data.frame_store import FrameStore
from dcat.training.cache import SourceCache


def reference(compiled: bool, batch: int, size: int, repeats: int) -> float:
    model = torchvision.models.resnet101(weights=None).cuda().eval()
    model = model.to(memory_format=torch.channels_last)
    if compiled:
        model = torch.compile(model)
    x = torch.randn(batch, 3, size, size, device="cuda").to(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        for _ in range(3):
            model(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
        torch.cuda.synchronize()
    return batch * repeats / (time.perf_counter() - start)


def model_only(compiled: bool, clips: int, frames: int, size: int, repeats: int) -> float:
    """dcat's source network on uint8 frames already on the GPU: the ceiling without I/O."""
    torch.manual_seed(0)
    encoder = create_encoder("video", 3, depth=101, channels_last=True, compile=compiled)
    source = ModalityNet(encoder, d_out=512, num_classes=8).cuda().eval()
    x = torch.randint(0, 256, (clips, frames, 3, size, size), dtype=torch.uint8, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        for _ in range(3):
            source.forward_all(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            source.forward_all(x)
        torch.cuda.synchronize()
    return clips * frames * repeats / (time.perf_counter() - start)


def extraction(compiled: bool, data: PairedDataset, clips_per_batch: int, repeats: int) -> float:
    torch.manual_seed(0)
    encoder = create_encoder("video", 3, depth=101, channels_last=True, compile=compiled)
    source = ModalityNet(encoder, d_out=512, num_classes=8).cuda().eval()
    frames = data.shape("video")[0]  # per clip
    warm = data.subset(range(min(len(data), 2 * clips_per_batch)))
    SourceCache.build(
        source,
        warm,
        "video",
        batch_size=clips_per_batch,
        device="cuda",
        autocast_dtype=torch.bfloat16,
    )  # compiles / warms up
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        SourceCache.build(
            source,
            data,
            "video",
            batch_size=clips_per_batch,
            device="cuda",
            autocast_dtype=torch.bfloat16,
        )
        times.append(time.perf_counter() - start)
    return len(data) * frames / min(times)


def key_seconds(data: PairedDataset) -> float:
    """Time of the cache key alone (SHA-256 of the source weights and the data fingerprint)."""
    from dcat.training.cache import cache_key

    torch.manual_seed(0)
    source = ModalityNet(create_encoder("video", 3, depth=101), d_out=512, num_classes=8).cuda()
    torch.cuda.synchronize()
    start = time.perf_counter()
    cache_key(source, data, "video", torch.float16)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--frames", type=int, default=32, help="frames per clip")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-frames", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_video_source.py needs a CUDA device")
    torch.backends.cudnn.benchmark = True
    clips_per_batch = max(1, args.batch_frames // args.frames)
    results: dict[str, object] = {
        "device": torch.cuda.get_device_name(), "torch": torch.__version__, "size": args.size,
        "batch_frames": clips_per_batch * args.frames, "clips": args.clips,
        "frames_per_clip": args.frames,
    }  # fmt: skip
    for compiled in (False, True):
        name = "compiled" if compiled else "eager"
        results[f"reference_{name}_frames_per_s"] = round(
            reference(compiled, clips_per_batch * args.frames, args.size, 20), 1
        )
        print(f"reference {name}: {results[f'reference_{name}_frames_per_s']}", flush=True)
    for compiled in (False, True):
        name = "compiled" if compiled else "eager"
        results[f"model_only_{name}_frames_per_s"] = round(
            model_only(compiled, clips_per_batch, args.frames, args.size, 20), 1
        )
        print(f"dcat model only {name}: {results[f'model_only_{name}_frames_per_s']}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        shape = (args.clips, args.frames, 3, args.size, args.size)
        frames = rng.integers(0, 256, size=shape, dtype=np.uint8)
        store = FrameStore.from_array(frames, Path(tmp))
        del frames
        data = PairedDataset(
            {"video": store},
            np.arange(args.clips) % 8,
            np.zeros(args.clips, int),
            [str(i) for i in range(args.clips)],
            [str(c) for c in range(8)],
        )
        results["cache_key_s"] = round(key_seconds(data), 3)
        print(f"cache key: {results['cache_key_s']} s", flush=True)
        for compiled in (False, True):
            name = "compiled" if compiled else "eager"
            results[f"{name}_frames_per_s"] = round(
                extraction(compiled, data, clips_per_batch, args.repeats), 1
            )
            print(f"dcat extraction {name}: {results[f'{name}_frames_per_s']}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
