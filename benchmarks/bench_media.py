"""Video frame cache: first decode vs cached reads, and memory as clips grow.

A clip of ``--frames`` frames (default 1000, 240×320, 25 fps, H.264 via ``libx264``, else
``mpeg4``) with known content (a bright square moving over a colour gradient) is written with
PyAV into a temporary folder and read as a manifest's video column (``--via manifest``, the
default: a two-row manifest naming the clip, decoded once) or by ``FrameStore.build``, then:

* ``decode_fps``: frames per second of the first decode, building a
  :class:`dcat.data.frame_store.FrameStore` of it (``FrameStore.build``: decode, write the
  uint8 ``frames.npy``), median and best of ``--decode-repeats`` builds into fresh caches (the
  file is touched in between so no cache is reused); ``decode_only_fps`` is
  :func:`dcat.io.media.decode_video` alone (into memory, no store, no disk), for where the time
  goes;
* ``read_fps``: frames per second read back from the cache (the store opened again, which
  ``build`` does without decoding), sample by sample as the training loop does (``store[i]``:
  float32 ``(F, C, H, W)`` in ``[0, 1]``); ``read_fps_uint8`` the same as stored
  (``store.uint8(i)``, copied as a collate would), ``read_fps_raw_batch`` all samples at once
  (``store.raw_batch``). Median and best of ``--read-repeats``. The cache was just written, so
  these reads come from the page cache (warm), as in every epoch after the first;
* ``cache_over_decode``: ``read_fps_uint8 / decode_fps``, reads of the cache as stored against
  the decode that fills it (medians, both from this run, as the machine is shared and noisy;
  ``_best``: best over best). Goal (issue): ≥ 20 (``meets_goal``).
  ``cache_over_decode_float32`` uses ``read_fps`` instead: the float32 conversion in ``store[i]``
  is the input transform every frame needs however it was obtained, and is reported beside it;
* ``content_max_error_px``: the square's centroid in each cached frame vs where it was drawn
  (decoded frame ``k`` must be source frame ``k``);
* ``memory``: for clips of ``--memory-frames`` frames (default 250, 500, 1000), each in its own
  process (clean peaks), the growth of resident memory over the process's baseline while
  building the store and while reading the cache frame by frame through its memory map (no
  copy of the whole clip), sampled every 2 ms, plus the kernel's peak (``VmHWM``, reset at the
  start). ``anon`` is the process's own memory (what an OOM counts); ``file`` is page cache
  mapped into the process (pages of ``frames.npy``), which the kernel may drop under pressure;
  ``rss = anon + file``. ``clip_mib`` is the size of the decoded clip (F·3·H·W bytes): an anon
  growth near it means the clip was held whole in memory. ``memory_{build,read}_anon_slope``
  is the anon peak growth per MiB of clip from the smallest to the largest clip (≈ 1: held
  whole; ≈ 0: flat), ``memory_{build,read}_flat`` whether it is below 0.1.

Here one clip is one sample, so ``store[0]`` is the whole clip (F frames). Prints one JSON object
on its last line. Runs in about a minute on a 2-core CPU at the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np

from dcat.data.frame_store import FrameStore, VideoClip
from dcat.io.media import decode_video

GOAL_CACHE_OVER_DECODE = 20.0
FPS = 25
MIB = 2**20


# ---------------------------------------------------------------------------------------------
# The clip


def square_side(height: int, width: int) -> int:
    return max(4, min(height, width) // 6)


def square_corner(frame: int, height: int, width: int) -> tuple[int, int]:
    """Top-left corner ``(y, x)`` of the square in source frame ``frame`` (bouncing motion)."""

    def bounce(position: int, span: int) -> int:
        if span <= 0:
            return 0
        position %= 2 * span
        return position if position <= span else 2 * span - position

    side = square_side(height, width)
    return bounce(2 * frame, height - side), bounce(3 * frame, width - side)


def draw_frame(frame: int, background: np.ndarray) -> np.ndarray:
    """Source frame ``frame``: the gradient with a white square, RGB ``(H, W, 3)`` uint8."""
    height, width = background.shape[:2]
    image = background.copy()
    y, x = square_corner(frame, height, width)
    side = square_side(height, width)
    image[y : y + side, x : x + side] = 255
    return image


def gradient(height: int, width: int) -> np.ndarray:
    """Red rises left to right, green top to bottom (both ≤ 160, well below the square)."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[..., 0] = np.linspace(0, 160, width, dtype=np.float64).astype(np.uint8)[None, :]
    image[..., 1] = np.linspace(0, 160, height, dtype=np.float64).astype(np.uint8)[:, None]
    image[..., 2] = 60
    return image


def write_clip(path: Path, frames: int, height: int, width: int) -> str:
    """Encode ``frames`` frames at 25 fps; returns the codec used."""
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    background = gradient(height, width)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "mpeg4":
            stream.bit_rate = 2_000_000
        for index in range(frames):
            image = draw_frame(index, background)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return codec


def content_error(store: FrameStore, sample: int) -> float:
    """Largest distance (px) between the square's centroid in the cached frames of ``sample``
    and where it was drawn, assuming cached frame ``k`` is source frame ``k``."""
    clip = store.uint8(sample)  # a view of the memory map; read in chunks below
    frames, _, height, width = clip.shape
    side = square_side(height, width)
    ys, xs = np.mgrid[0:height, 0:width]
    worst = 0.0
    for start in range(0, frames, 100):
        chunk = np.asarray(clip[start : start + 100])
        mask = (chunk > 200).all(axis=1)  # (n, H, W): white in every channel
        count = mask.sum(axis=(1, 2))
        if (count == 0).any():
            return float("inf")
        cy = (mask * ys).sum(axis=(1, 2)) / count
        cx = (mask * xs).sum(axis=(1, 2)) / count
        for offset, (y, x) in enumerate(zip(cy, cx, strict=True)):
            ey, ex = square_corner(start + offset, height, width)
            centre = (side - 1) / 2
            worst = max(worst, float(np.hypot(y - ey - centre, x - ex - centre)))
    return worst


# ---------------------------------------------------------------------------------------------
# The decode (switch to the manifest here)


def write_manifest(folder: Path, video: str) -> Path:
    """A two-row manifest (two subjects and labels) whose ``cam`` column names the clip."""
    manifest = folder / "manifest.csv"
    manifest.write_text(f"subject,label,cam\ns1,walk,{video}\ns2,run,{video}\n")
    return manifest


def manifest_options(cache_dir: Path, frames: int, size: tuple[int, int]) -> dict:
    """``load_manifest`` options: ``frames`` frames of ``size`` per sample, cached in
    ``cache_dir``."""
    return {
        "frame_cache": cache_dir,
        "media": {"cam": {"frames": frames, "size": list(size)}},
        "min_class_samples": 1,
    }


def first_decode(
    path: Path, cache_dir: Path, frames: int, size: tuple[int, int], *, via: str = "manifest"
) -> FrameStore:
    """The store of ``path`` (decoded unless cached): through the manifest (two rows of the
    clip, decoded once and copied) when ``via == "manifest"``, else ``FrameStore.build`` of the
    one clip."""
    if via == "manifest":
        from dcat.data.manifest import load_manifest

        manifest = write_manifest(path.parent, path.name)
        data = load_manifest(manifest, **manifest_options(cache_dir, frames, size))
        return data.inputs["cam"]
    return FrameStore.build([VideoClip(path)], cache_dir, frames=frames, size=size, grayscale=False)


# ---------------------------------------------------------------------------------------------
# Resident memory


def rss_kib() -> dict[str, int]:
    """Current ``anon``, ``file`` and ``rss`` resident memory in KiB (/proc/self/status)."""
    fields: dict[str, int] = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                fields[key] = int(value.split()[0])
    return {
        "anon": fields.get("RssAnon", 0),
        "file": fields.get("RssFile", 0) + fields.get("RssShmem", 0),
        "rss": fields.get("VmRSS", 0),
    }


@contextmanager
def peak_growth(period_s: float = 0.002) -> Iterator[dict[str, float]]:
    """Peak and final growth (MiB) of resident memory over its value at entry, sampled by a
    thread every ``period_s``; filled in on exit."""
    base = rss_kib()
    peak = dict(base)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for key, value in rss_kib().items():
                peak[key] = max(peak[key], value)
            stop.wait(period_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    result: dict[str, float] = {}
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        end = rss_kib()
        for key in base:
            peak[key] = max(peak[key], end[key])
            result[f"{key}_peak_growth_mib"] = round((peak[key] - base[key]) / 1024, 1)
            result[f"{key}_after_growth_mib"] = round((end[key] - base[key]) / 1024, 1)


def high_water_kib() -> int | None:
    """VmHWM (peak resident memory of this process, KiB), ``None`` where unreadable."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def reset_high_water() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0). ``ru_maxrss`` cannot be reset, and a
    child started by ``subprocess`` inherits its parent's in it."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def memory_child(
    video: Path, cache_dir: Path, frames: int, size: tuple[int, int], via: str
) -> dict:
    """One clip size in a fresh process: memory while building and while reading."""
    reset = reset_high_water()
    base_rss = rss_kib()["rss"]
    with peak_growth() as build:
        start = time.perf_counter()
        store = first_decode(video, cache_dir, frames, size, via=via)
        seconds = time.perf_counter() - start
    del store
    store = first_decode(video, cache_dir, frames, size, via=via)  # cached: opened, not decoded
    buffer = np.empty(store.shape[2:], dtype=np.uint8)
    checksum = 0
    with peak_growth() as read:
        for sample in range(len(store)):
            clip = store.uint8(sample)  # a view of the memory map
            for frame in clip:
                np.copyto(buffer, frame)
                checksum += int(buffer[0, 0, 0])
    clip_mib = frames * int(np.prod(store.shape[2:])) / MIB
    return {
        "frames": frames,
        "clip_mib": round(clip_mib, 1),
        "decode_fps": round(frames / seconds, 1),
        "build": build,
        "read_frame_by_frame": read,
        "build_anon_peak_over_clip": round(build["anon_peak_growth_mib"] / clip_mib, 3),
        "read_anon_peak_over_clip": round(read["anon_peak_growth_mib"] / clip_mib, 3),
        # the kernel's own peak (no sampling gaps) over both phases, rss = anon + file
        "vm_hwm_growth_mib": (
            round((high_water_kib() - base_rss) / 1024, 1)
            if reset and high_water_kib() is not None
            else None
        ),
        "checksum": checksum,
    }


def memory_run(
    folder: Path, sizes: list[int], main_clip: Path, main_frames: int, via: str, args
) -> list:
    rows = []
    for frames in sizes:
        video = main_clip if frames == main_frames else folder / f"memory{frames}.mp4"
        if video != main_clip:
            write_clip(video, frames, args.height, args.width)
        cache = folder / f"memory{frames}_cache"
        shutil.rmtree(cache, ignore_errors=True)
        command = [
            sys.executable, __file__, "--child", str(video), "--child-cache", str(cache),
            "--frames", str(frames), "--height", str(args.height), "--width", str(args.width),
            "--child-via", via,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"memory child for {frames} frames failed:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        shutil.rmtree(cache, ignore_errors=True)
        row = rows[-1]
        print(
            f"memory {frames} frames: build anon peak +{row['build']['anon_peak_growth_mib']} MiB, "
            f"read anon peak +{row['read_frame_by_frame']['anon_peak_growth_mib']} MiB "
            f"(clip {row['clip_mib']} MiB)",
            file=sys.stderr,
            flush=True,
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Main


def timed_reads(store: FrameStore, repeats: int) -> dict[str, list[float]]:
    """Frames per second of each repeat, per way of reading."""
    frames = len(store) * store.shape[1]
    fps: dict[str, list[float]] = {"float32": [], "uint8": [], "raw_batch": []}
    everything = np.arange(len(store))
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(len(store)):
            sample = store[i]
            del sample  # one sample at a time, as the training loop holds it
        fps["float32"].append(frames / (time.perf_counter() - start))
        start = time.perf_counter()
        for i in range(len(store)):
            sample = np.array(store.uint8(i))  # a copy, as a collate makes
            del sample
        fps["uint8"].append(frames / (time.perf_counter() - start))
        start = time.perf_counter()
        batch = store.raw_batch(everything)
        fps["raw_batch"].append(frames / (time.perf_counter() - start))
        del batch
    return fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000, help="frames of the clip (25 fps)")
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--decode-repeats", type=int, default=5)
    parser.add_argument("--read-repeats", type=int, default=5)
    parser.add_argument(
        "--memory-frames", type=int, nargs="*", default=[250, 500, 1000],
        help="clip sizes of the memory measurement (none: skip it)",
    )  # fmt: skip
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-cache", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-via", default="manifest", help=argparse.SUPPRESS)
    parser.add_argument(
        "--via",
        choices=["manifest", "frame_store"],
        default="manifest",
        help="decode through a manifest (default) or FrameStore.build directly",
    )
    args = parser.parse_args()
    size = (args.height, args.width)
    if args.child is not None:
        row = memory_child(args.child, args.child_cache, args.frames, size, args.child_via)
        print(json.dumps(row))
        return

    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        folder, cleanup = args.keep, None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="bench_media_")
        folder = Path(cleanup.name)
    try:
        results = run(folder, size, args)
    finally:
        if cleanup is not None:
            cleanup.cleanup()
    print(json.dumps(results))


def run(folder: Path, size: tuple[int, int], args) -> dict:
    import torch

    results: dict[str, object] = {
        "frames": args.frames, "size": list(size), "fps": FPS,
        "python": platform.python_version(), "numpy": np.__version__, "av": av.__version__,
        "libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
    }  # fmt: skip
    via = args.via
    results["path"] = via
    clip = folder / "clip.mp4"
    start = time.perf_counter()
    results["codec"] = write_clip(clip, args.frames, *size)
    results["encode_s"] = round(time.perf_counter() - start, 2)
    results["clip_bytes"] = clip.stat().st_size
    print(f"clip: {results['codec']}, {results['encode_s']} s", file=sys.stderr, flush=True)

    decode_s, decode_only_s = [], []
    for repeat in range(args.decode_repeats):
        start = time.perf_counter()  # decode_video alone, into memory: no store, no disk
        decode_video(clip, fps=0.0, size=size, frames=args.frames)
        decode_only_s.append(time.perf_counter() - start)
        cache = folder / f"cache{repeat}"
        shutil.rmtree(cache, ignore_errors=True)
        stat = clip.stat()  # a new mtime: a new store key, so nothing cached is reused
        os.utime(clip, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000 * (repeat + 1)))
        start = time.perf_counter()
        store = first_decode(clip, cache, args.frames, size, via=via)
        decode_s.append(time.perf_counter() - start)
        del store
        if repeat < args.decode_repeats - 1:
            shutil.rmtree(cache, ignore_errors=True)
        print(
            f"decode {repeat + 1}: build {decode_s[-1]:.3f} s, decode only "
            f"{decode_only_s[-1]:.3f} s",
            file=sys.stderr,
            flush=True,
        )
    decoded = args.frames  # frames decoded per build (the same clip listed twice is copied)
    results["decode_s"] = [round(s, 3) for s in decode_s]
    results["decode_fps"] = round(decoded / statistics.median(decode_s), 1)
    results["decode_fps_best"] = round(decoded / min(decode_s), 1)
    results["decode_only_fps"] = round(args.frames / statistics.median(decode_only_s), 1)

    start = time.perf_counter()
    store = first_decode(clip, cache, args.frames, size, via=via)  # the same store, cached
    results["cached_open_s"] = round(time.perf_counter() - start, 4)
    results["store_shape"] = list(store.shape)
    results["content_max_error_px"] = round(content_error(store, 0), 2)
    fps = timed_reads(store, args.read_repeats)
    del store
    results["page_cache"] = "warm (reads right after the build)"
    for name, key in (("float32", "read_fps"), ("uint8", "read_fps_uint8")):
        results[key] = round(statistics.median(fps[name]), 1)
        results[f"{key}_best"] = round(max(fps[name]), 1)
    results["read_fps_raw_batch"] = round(statistics.median(fps["raw_batch"]), 1)
    results["read_fps_raw_batch_best"] = round(max(fps["raw_batch"]), 1)
    # The goal compares reads of the cache as stored (uint8) with the decode that fills it;
    # the float32 conversion is the input transform every frame needs however it was obtained.
    ratio = results["read_fps_uint8"] / results["decode_fps"]
    results["cache_over_decode"] = round(ratio, 2)
    results["cache_over_decode_best"] = round(
        results["read_fps_uint8_best"] / results["decode_fps_best"], 2
    )
    results["cache_over_decode_float32"] = round(results["read_fps"] / results["decode_fps"], 2)
    results["goal_cache_over_decode"] = GOAL_CACHE_OVER_DECODE
    results["meets_goal"] = bool(ratio >= GOAL_CACHE_OVER_DECODE)
    shutil.rmtree(cache, ignore_errors=True)

    if args.memory_frames:
        memory = memory_run(folder, sorted(args.memory_frames), clip, args.frames, via, args)
        results["memory"] = memory
        for phase, key in (("build", "build"), ("read", "read_frame_by_frame")):
            growth = [row[key]["anon_peak_growth_mib"] for row in memory]
            clips = [row["clip_mib"] for row in memory]
            # anon growth per MiB of clip between the smallest and largest clip: ~1 when the
            # clip is held whole, ~0 when memory stays flat
            slope = (growth[-1] - growth[0]) / (clips[-1] - clips[0]) if len(clips) > 1 else None
            results[f"memory_{phase}_anon_slope"] = None if slope is None else round(slope, 3)
            results[f"memory_{phase}_flat"] = None if slope is None else bool(slope < 0.1)
    return results


if __name__ == "__main__":
    main()
