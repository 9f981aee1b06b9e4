"""Cache of a frozen source's outputs, so transfer runs the source once per training sample.

A frozen source in eval mode is a deterministic function of its input, so everything the
transfer losses need (``K`` and ``V``, the logits for MCMA and distillation, the pooled embedding
for feature baselines) can be computed in one pass and looked up by sample index afterwards
(docs/design.md, "Performance"). ``K`` and ``V`` are kept in float16 by default (half the
memory of float32; the loss is computed in float32 regardless).

The cache is keyed by a hash of the source's weights, the data it was computed on, and the
storage dtype: :meth:`SourceCache.load` refuses a file whose key differs, so a stale cache is
never used. Storage is in memory, or on disk as ``.npy`` files read through memory maps for
sets larger than RAM.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from dcat.data.protocol import RawBatches, RawInto, TrainingData
from dcat.errors import DcatError
from dcat.io.atomic import atomic_folder
from dcat.nn.losses import source_square
from dcat.nn.model import ModalityNet

__all__ = ["SourceCache", "SourceOutputs", "cache_key", "state_dict_digest"]

_FIELDS = ("keys", "values", "logits", "embedding", "square")
# a cache's format: part of its key, so a cache written without ``square`` is rebuilt
_FORMAT = "2"


class SourceOutputs(NamedTuple):
    """What the transfer losses need from a source, for one batch.

    Attributes:
        keys: ``K`` ``(B, S, d_out)``.
        values: ``V`` ``(B, S, d_out)``.
        logits: ``(B, num_classes)``.
        embedding: The pooled features the head classifies ``(B, embedding_dim)``.
        square: ``‖KᵀV‖²_F`` ``(B,)`` of the stored ``K`` and ``V`` in the loss's dtype
            (float32 for float16 or float32 storage; :func:`dcat.nn.losses.source_square`),
            which D-CAT's Gram path then does not recompute; ``None`` where the source runs
            every step.
    """

    keys: Tensor
    values: Tensor
    logits: Tensor
    embedding: Tensor
    square: Tensor | None = None


def state_dict_digest(model: nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers (names, shapes, dtypes, bytes)."""
    digest = hashlib.sha256()
    items = sorted(model.state_dict().items())
    for name, tensor in items:
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
    # the bytes of every tensor of a device in one flat buffer: one copy to the host, not one
    # synchronising copy per tensor
    by_device: dict[torch.device, list[Tensor]] = {}
    for _, tensor in items:
        flat = tensor.detach().contiguous().reshape(-1).view(torch.uint8)
        by_device.setdefault(tensor.device, []).append(flat)
    for device in sorted(by_device, key=str):
        digest.update(torch.cat(by_device[device]).cpu().numpy().tobytes())
    return digest.hexdigest()


def _dataset_digest(dataset: Dataset, modality: str) -> str:
    if isinstance(dataset, TrainingData):
        return dataset.fingerprint([modality])
    digest = hashlib.sha256()  # generic datasets: hash every item's input and label, in order
    for index in range(len(dataset)):  # type: ignore[arg-type]
        item = dataset[index]
        digest.update(item["inputs"][modality].numpy().tobytes())
        digest.update(item["label"].numpy().tobytes())
    return digest.hexdigest()


def cache_key(model: nn.Module, dataset: Dataset, modality: str, dtype: torch.dtype) -> str:
    """The key a cache of ``model`` over ``dataset[modality]`` at ``dtype`` is stored under."""
    parts = [state_dict_digest(model), _dataset_digest(dataset, modality), modality, str(dtype)]
    parts.append(f"format {_FORMAT}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _batches(
    dataset: Dataset, modality: str, batch_size: int, device: torch.device
) -> Iterator[Tensor]:
    """Yield the modality's inputs in order, in batches, on ``device``.

    A lazy array with ``raw_batch(indices)`` (e.g. decoded frames cached as uint8) is read in
    contiguous batches by a prefetching thread into pinned memory and moved without blocking,
    so disk, host and device work overlap; anything else goes through a DataLoader.
    """
    array = dataset.inputs.get(modality) if isinstance(dataset, TrainingData) else None
    if not isinstance(array, RawBatches):
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
        for batch in loader:
            yield batch["inputs"][modality].to(device, non_blocking=True)
        return
    from concurrent.futures import ThreadPoolExecutor

    starts = list(range(0, len(array), batch_size))
    if device.type != "cuda" or not isinstance(array, RawInto):

        def read(start: int) -> Tensor:
            rows = np.arange(start, min(start + batch_size, len(array)))
            tensor = torch.from_numpy(np.ascontiguousarray(array.raw_batch(rows)))
            return tensor.pin_memory() if device.type == "cuda" else tensor

        with ThreadPoolExecutor(max_workers=2) as pool:
            pending = [pool.submit(read, start) for start in starts[:2]]
            for i in range(len(starts)):
                host = pending.pop(0).result()
                if i + 2 < len(starts):
                    pending.append(pool.submit(read, starts[i + 2]))
                yield host.to(device, non_blocking=True)
        return
    # GPU: a ring of reused pinned buffers filled by reader threads straight from the store (one
    # copy); an event per buffer keeps a reader from refilling it before its upload has finished
    ring = 4
    sample = tuple(array.shape[1:])
    buffers = [
        torch.empty((batch_size, *sample), dtype=torch.uint8).pin_memory() for _ in range(ring)
    ]
    uploaded: list[torch.cuda.Event | None] = [None] * ring

    stream = torch.cuda.Stream(device)  # uploads overlap the compute on the current stream

    def fill(i: int) -> Tensor:
        slot = i % ring
        event = uploaded[slot]
        if event is not None:
            event.synchronize()
        rows = np.arange(starts[i], min(starts[i] + batch_size, len(array)))
        host = buffers[slot][: len(rows)]
        array.raw_into(rows, host.numpy())
        return host

    with ThreadPoolExecutor(max_workers=ring - 1) as pool:
        pending = [pool.submit(fill, i) for i in range(min(ring - 1, len(starts)))]
        for i in range(len(starts)):
            host = pending.pop(0).result()
            with torch.cuda.stream(stream):
                batch = host.to(device, non_blocking=True)
                event = torch.cuda.Event()
                event.record(stream)
            torch.cuda.current_stream(device).wait_event(event)
            batch.record_stream(torch.cuda.current_stream(device))
            uploaded[i % ring] = event
            if i + ring - 1 < len(starts):
                pending.append(pool.submit(fill, i + ring - 1))
            yield batch


def _square(keys: Tensor, values: Tensor) -> Tensor:
    """``‖KᵀV‖²_F`` per sample of stored ``K`` and ``V`` ``(B, S, d)`` in the loss's dtype (at
    least float32), as the loss would recompute it from them; ``(B,)``."""
    wide = torch.promote_types(keys.dtype, torch.float32)
    return source_square(keys.to(wide), values.to(wide))


def _squares(keys, values, rows: int = 256) -> Tensor:
    """:func:`_square` of stored ``K`` and ``V`` ``(N, S, d)`` (tensors or arrays), a block of
    rows at a time; ``(N,)``."""

    def block(array, i: int) -> Tensor:  # a copy: memory-mapped rows are read-only
        return torch.from_numpy(np.array(array[i : i + rows]))

    blocks = [_square(block(keys, i), block(values, i)) for i in range(0, len(keys), rows)]
    if blocks:
        return torch.cat(blocks)
    return torch.zeros(0, dtype=torch.promote_types(block(keys, 0).dtype, torch.float32))


class SourceCache:
    """Per-sample outputs of a frozen source, looked up by the batch's ``index``.

    Build one with :meth:`build`; it is saved to and reloaded from ``cache_dir`` when given.

    Args:
        keys: ``(N, S, d_out)``, Tensor or memory-mapped array.
        values: ``(N, S, d_out)``.
        logits: ``(N, num_classes)``, float32.
        embedding: ``(N, embedding_dim)``, float32.
        square: ``(N,)``, ``‖KᵀV‖²_F`` of the stored ``K`` and ``V`` (float32, or float64
            for float64 storage); ``None``: computed here from them.
        key: The cache key (:func:`cache_key`).
    """

    def __init__(self, keys, values, logits, embedding, square=None, *, key: str) -> None:
        n = len(logits)
        if square is None:
            square = _squares(keys, values)
        arrays = (keys, values, logits, embedding, square)
        for field, array in zip(_FIELDS, arrays, strict=True):
            if len(array) != n:
                raise DcatError(f"cache field {field} has {len(array)} rows, expected {n}")
        self._arrays = dict(zip(_FIELDS, arrays, strict=True))
        self.key = key

    def __len__(self) -> int:
        return len(self._arrays["logits"])

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        return sum(int(a.nbytes) for a in self._arrays.values())

    def lookup(self, index: Tensor, device: torch.device | str | None = None) -> SourceOutputs:
        """Outputs for the samples at ``index`` ``(B,)``, on ``device`` (default: index's)."""
        device = device if device is not None else index.device
        first = self._arrays["keys"]
        if isinstance(first, Tensor) and isinstance(index, Tensor) and first.device == index.device:
            # same device: gather there (index_select checks bounds) without a host round trip
            return SourceOutputs(*(self._arrays[f].index_select(0, index) for f in _FIELDS))
        rows = index.detach().cpu().numpy() if isinstance(index, Tensor) else np.asarray(index)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"cache of {len(self)} samples looked up at index {rows.max()}")
        out = []
        for field in _FIELDS:
            array = self._arrays[field]
            part = (
                array[torch.from_numpy(rows)]
                if isinstance(array, Tensor)
                else torch.from_numpy(np.ascontiguousarray(array[rows]))
            )
            out.append(part.to(device, non_blocking=True))
        return SourceOutputs(*out)

    def to(self, device: torch.device | str) -> SourceCache:
        """An in-memory cache with its arrays on ``device`` (a GPU: lookups without host
        syncs or copies); a memory-mapped cache is returned unchanged."""
        if not all(isinstance(a, Tensor) for a in self._arrays.values()):
            return self
        moved = [self._arrays[f].to(device) for f in _FIELDS]
        return SourceCache(*moved, key=self.key)

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        model: ModalityNet,
        dataset: Dataset,
        modality: str,
        *,
        dtype: torch.dtype = torch.float16,
        batch_size: int = 64,
        device: torch.device | str = "cpu",
        autocast_dtype: torch.dtype | None = None,
        cache_dir: str | Path | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> SourceCache:
        """Run ``model`` (eval mode, no grad) once over ``dataset`` and keep its outputs.

        Args:
            model: A :class:`~dcat.nn.model.ModalityNet` (anything with ``forward_all``).
            dataset: Items ``{"inputs": {modality: x}, "label": y, "index": i}``; iterated in
                order, so row ``i`` of the cache is ``dataset[i]``.
            modality: The source's input key.
            dtype: Storage dtype of ``K`` and ``V``.
            batch_size: Extraction batch size.
            device: Where the source runs.
            autocast_dtype: e.g. ``torch.bfloat16`` on a GPU; ``None`` runs in float32.
            cache_dir: If given, reuse ``cache_dir/<key>/`` when it exists with the same key,
                else write it there (atomically) as memory-mappable ``.npy`` files.
            progress: Called as ``progress(done, total)`` after each batch.

        Returns:
            The cache (memory-mapped when ``cache_dir`` is given).
        """
        from concurrent.futures import ThreadPoolExecutor

        keyer = ThreadPoolExecutor(max_workers=1)
        # hashing the weights takes a while (0.46 s for a ResNet-101): a cache on disk needs the
        # key first, to find an existing copy; one in memory gets it alongside the extraction
        pending_key = keyer.submit(cache_key, model, dataset, modality, dtype)
        if cache_dir is not None:
            folder = Path(cache_dir) / pending_key.result()[:32]
            if (folder / "meta.json").is_file():
                keyer.shutdown()
                return cls.load(folder, expected_key=pending_key.result())
        was_training = model.training
        model.eval()
        device = torch.device(device)
        total = len(dataset)  # type: ignore[arg-type]
        parts: dict[str, list[Tensor]] = {field: [] for field in _FIELDS}
        done = 0
        try:
            for x in _batches(dataset, modality, batch_size, device):
                with torch.autocast(
                    device.type,
                    dtype=autocast_dtype or torch.float32,
                    enabled=autocast_dtype is not None,
                ):
                    out = model.forward_all(x)
                k, _, v = out.kqv
                # kept on the device until the end: one transfer, no per-batch sync
                k, v = k.to(dtype), v.to(dtype)
                parts["keys"].append(k)
                parts["values"].append(v)
                parts["square"].append(_square(k, v))  # on the device, with the batch
                parts["logits"].append(out.logits.float())
                parts["embedding"].append(out.embedding.float())
                done += len(x)
                if progress is not None:
                    progress(done, total)
        finally:
            model.train(was_training)
        key = pending_key.result()
        keyer.shutdown()
        cache = cls(*(torch.cat(parts[field]).cpu() for field in _FIELDS), key=key)
        if cache_dir is not None:
            return cache.save(Path(cache_dir) / key[:32])
        return cache

    def save(self, folder: str | Path) -> SourceCache:
        """Write the cache to ``folder`` atomically and return a memory-mapped view of it.

        Safe when several processes (DDP ranks sharing a ``cache_dir``) save the same cache at
        once: a folder that already holds this key is kept, never deleted, since another rank
        may be reading it, and this copy is discarded; a folder of another key (stale) is
        renamed aside and replaced, never removed in place.
        """
        folder = Path(folder)
        with atomic_folder(folder, replace="never", valid=self._holds_key) as tmp:
            for field, array in self._arrays.items():
                data = array.numpy() if isinstance(array, Tensor) else np.asarray(array)
                np.save(tmp / f"{field}.npy", data, allow_pickle=False)
            # written last: a folder with meta.json is a complete cache
            (tmp / "meta.json").write_text(json.dumps({"key": self.key, "rows": len(self)}))
        return SourceCache.load(folder, expected_key=self.key)

    def _holds_key(self, folder: Path) -> bool:
        """Whether ``folder`` is a complete saved cache of this key."""
        return json.loads((folder / "meta.json").read_text()).get("key") == self.key

    @classmethod
    def load(cls, folder: str | Path, expected_key: str | None = None) -> SourceCache:
        """Open a saved cache (memory-mapped); refuse it if its key is not ``expected_key``."""
        folder = Path(folder)
        meta_path = folder / "meta.json"
        if not meta_path.is_file():
            raise DcatError(f"{folder}: not a source cache (no meta.json)")
        meta = json.loads(meta_path.read_text())
        missing = [f for f in _FIELDS if not (folder / f"{f}.npy").is_file()]
        if missing:
            raise DcatError(
                f"{folder}: a source cache of an earlier format (no {', '.join(missing)}); "
                "delete it, and it is built again"
            )
        if expected_key is not None and meta.get("key") != expected_key:
            raise DcatError(
                f"{folder}: stale source cache (key {str(meta.get('key'))[:12]}…, expected "
                f"{expected_key[:12]}…): the source weights or the data changed"
            )
        arrays = [
            np.load(folder / f"{field}.npy", mmap_mode="r", allow_pickle=False) for field in _FIELDS
        ]
        return cls(*arrays, key=meta["key"])
