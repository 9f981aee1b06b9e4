"""Tasks' loss dicts, frozen sources, baselines and the source cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from dcat import cross_attention_loss, mcma_mask
from dcat.nn.losses import source_square
from dcat.training.cache import SourceCache, cache_key
from dcat.training.tasks import SourceSpec, TransferTask, UnimodalTask

from conftest import make_paired, small_net


def _batch(dataset, size: int = 12, start: int = 0) -> dict:
    return next(iter(DataLoader(dataset.subset(range(start, start + size)), batch_size=size)))


def test_unimodal_loss_dict(paired) -> None:
    net = small_net("imu")
    batch = _batch(paired)
    out = UnimodalTask(net, "imu")(batch)
    assert set(out) == {"loss", "logits", "ce"}
    assert out["logits"].shape == (12, 3)
    torch.testing.assert_close(out["ce"], F.cross_entropy(out["logits"], batch["label"]))
    assert out["loss"] is out["ce"]


@pytest.mark.parametrize("mcma", [True, False])
def test_dcat_loss_dict_matches_the_formula(paired, mcma: bool) -> None:
    source, target = small_net("skeleton").eval(), small_net("imu").eval()
    task = TransferTask(target, "imu", [SourceSpec("skeleton", source, weight=0.7, mcma=mcma)])
    batch = _batch(paired)
    out = task.eval()(batch)
    src_logits, src_kqv = source(batch["inputs"]["skeleton"])
    logits, kqv = target(batch["inputs"]["imu"])
    mask = mcma_mask(src_logits, batch["label"]) if mcma else None
    ca = cross_attention_loss(src_kqv, kqv, mask)
    ce = F.cross_entropy(logits, batch["label"])
    torch.testing.assert_close(out["ca"], ca)
    torch.testing.assert_close(out["ca/skeleton"], ca)
    torch.testing.assert_close(out["ce"], ce)
    torch.testing.assert_close(out["loss"], ce + 0.7 * ca)
    expected_frac = mask.float().mean() if mcma else torch.tensor(1.0)
    torch.testing.assert_close(out["mcma_frac/skeleton"], expected_frac)


def test_baselines_and_several_sources(paired) -> None:
    source, target = small_net("skeleton").eval(), small_net("imu").eval()
    specs = [
        SourceSpec("skel_ca", source, modality="skeleton", weight=1.0),
        SourceSpec(
            "skel_kd", source, modality="skeleton", method="logit_kd", weight=0.5, temperature=2.0
        ),
        SourceSpec("skel_feat", source, modality="skeleton", method="feature", weight=0.3),
        SourceSpec(
            "skel_nce",
            source,
            modality="skeleton",
            method="contrastive",
            weight=0.2,
            temperature=0.5,
        ),
    ]
    task = TransferTask(target, "imu", specs).eval()
    batch = _batch(paired)
    out = task(batch)
    src = source.forward_all(batch["inputs"]["skeleton"])
    tgt = target.forward_all(batch["inputs"]["imu"])
    p_t = F.softmax(src.logits / 2.0, 1)
    kd = (p_t * (p_t.log() - F.log_softmax(tgt.logits / 2.0, 1))).sum(1).mean() * 4.0
    torch.testing.assert_close(out["kd/skel_kd"], kd)
    feat = ((task.methods["skel_feat"].projection(tgt.embedding) - src.embedding) ** 2).mean()
    torch.testing.assert_close(out["feat/skel_feat"], feat)
    heads = task.methods["skel_nce"].heads
    a = F.normalize(heads["target"](tgt.embedding), dim=1)
    b = F.normalize(heads["source"](src.embedding), dim=1)
    sim = a @ b.T / 0.5
    labels = torch.arange(len(a))
    nce = (F.cross_entropy(sim, labels) + F.cross_entropy(sim.T, labels)) / 2
    torch.testing.assert_close(out["nce/skel_nce"], nce)
    total = out["ce"] + out["ca"] + 0.5 * kd + 0.3 * feat + 0.2 * nce
    torch.testing.assert_close(out["loss"], total)
    # only the target and the baselines' projections train
    trainable = {id(p) for p in task.trainable_parameters()}
    assert trainable == {id(p) for p in [*target.parameters(), *task.methods.parameters()]}


def test_sources_frozen_and_bit_identical_after_training(paired) -> None:
    source, target = small_net("skeleton"), small_net("imu", dropout=0.3)
    before = {k: v.clone() for k, v in source.state_dict().items()}
    task = TransferTask(target, "imu", [SourceSpec("skeleton", source)])
    task.train()
    assert target.training and not source.training
    assert all(not p.requires_grad for p in source.parameters())
    optimizer = torch.optim.Adam(task.trainable_parameters(), lr=1e-2)
    for start in (0, 12, 24):
        out = task(_batch(paired, start=start))
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
    for key, value in source.state_dict().items():  # BN running stats included
        assert torch.equal(value, before[key]), key
    assert not source.training


def test_spec_and_task_errors() -> None:
    src = small_net("skeleton")
    with pytest.raises(ValueError, match=r"weight \(λ\) must be ≥ 0, got -0.1"):
        SourceSpec("skeleton", src, weight=-0.1)
    with pytest.raises(ValueError, match="method must be one of"):
        SourceSpec("skeleton", src, method="mixup")
    with pytest.raises(ValueError, match="d_out=32 but the target has d_out=16"):
        TransferTask(
            small_net("imu"), "imu", [SourceSpec("skeleton", small_net("skeleton", d_out=32))]
        )
    with pytest.raises(ValueError, match="has 5 classes but the target has 3"):
        TransferTask(
            small_net("imu"), "imu", [SourceSpec("skeleton", small_net("skeleton", classes=5))]
        )
    with pytest.raises(ValueError, match="source names must be unique"):
        TransferTask(small_net("imu"), "imu", [SourceSpec("s", src), SourceSpec("s", src)])
    task = TransferTask(small_net("imu"), "imu", [SourceSpec("skeleton", src)])
    with pytest.raises(ValueError, match=r"batch\['inputs'\] has no modality 'skeleton'"):
        task({"inputs": {"imu": torch.randn(2, 6, 32)}, "label": torch.tensor([0, 1])})


def test_cache_gives_the_same_losses(paired) -> None:
    source, target = small_net("skeleton").eval(), small_net("imu").eval()
    specs = [
        SourceSpec("skeleton", source),
        SourceSpec("kd", source, modality="skeleton", method="logit_kd"),
        SourceSpec("feat", source, modality="skeleton", method="feature"),
    ]
    task = TransferTask(target, "imu", specs).eval()
    batch = _batch(paired, size=16, start=5)
    batch["index"] = batch["index"] + 5  # positions in the full data set the cache covers
    uncached = task(batch)
    for spec in specs:
        task.attach_cache(spec.name, SourceCache.build(source, paired, "skeleton", batch_size=7))
    assert all(task.cached(s.name) for s in specs)
    cached = task(batch)
    for key in ("ce", "ca", "kd", "feat", "loss", "mcma_frac/skeleton"):
        torch.testing.assert_close(cached[key], uncached[key], rtol=1e-3, atol=1e-3, msg=key)
    assert cached["ca"] != 0


def test_cache_contents_and_disk_round_trip(tmp_path, paired) -> None:
    source = small_net("skeleton").eval()
    memory = SourceCache.build(source, paired, "skeleton", batch_size=10)
    assert memory._arrays["keys"].dtype == torch.float16
    out = source.forward_all(torch.from_numpy(paired.inputs["skeleton"][[3, 40]]))
    got = memory.lookup(torch.tensor([3, 40]))
    torch.testing.assert_close(got.keys.float(), out.kqv[0], rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(got.logits, out.logits)
    # ‖KᵀV‖² of the stored (float16) K and V, in float32, exactly as the loss would compute it
    assert got.square is not None and got.square.dtype == torch.float32
    assert torch.equal(got.square, source_square(got.keys.float(), got.values.float()))
    on_disk = SourceCache.build(source, paired, "skeleton", cache_dir=tmp_path)
    folder = tmp_path / on_disk.key[:32]
    assert {p.name for p in folder.iterdir()} == {
        "keys.npy",
        "values.npy",
        "logits.npy",
        "embedding.npy",
        "square.npy",
        "meta.json",
    }
    assert isinstance(on_disk._arrays["keys"], np.memmap)
    again = on_disk.lookup(torch.tensor([3, 40]))
    torch.testing.assert_close(again.values, got.values)
    assert again.square is not None and torch.equal(again.square, got.square)
    assert not list(tmp_path.glob(".*"))  # no temporary folder left behind


def test_a_cache_without_its_squares_computes_them_and_an_old_folder_is_named(
    tmp_path, paired
) -> None:
    source = small_net("skeleton").eval()
    built = SourceCache.build(source, paired, "skeleton", cache_dir=tmp_path)
    arrays = {f: built._arrays[f] for f in ("keys", "values", "logits", "embedding")}
    again = SourceCache(*arrays.values(), key=built.key)  # as earlier callers made one
    assert torch.equal(torch.as_tensor(np.asarray(again._arrays["square"])),
                       torch.as_tensor(np.asarray(built._arrays["square"])))  # fmt: skip
    folder = tmp_path / built.key[:32]
    (folder / "square.npy").unlink()  # a cache written by an earlier version
    with pytest.raises(ValueError, match=r"a source cache of an earlier format \(no square\)"):
        SourceCache.load(folder)


def test_dcat_reads_the_cached_source_square(paired, monkeypatch) -> None:
    import dcat.training.methods.cross_attention as module

    seen: list = []
    real = module.cross_attention_distance

    def spy(*args, **kwargs):
        seen.append(kwargs.get("source_square"))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "cross_attention_distance", spy)
    source = small_net("skeleton").eval()
    task = TransferTask(small_net("imu"), "imu", [SourceSpec("skeleton", source, mcma=False)])
    batch = next(iter(DataLoader(paired, batch_size=8)))
    task(batch)  # the source runs: nothing cached to read
    task.attach_cache("skeleton", SourceCache.build(source, paired, "skeleton"))
    task(batch)
    assert seen[0] is None and seen[1] is not None and seen[1].shape == (8,)


def test_stale_cache_is_never_used(tmp_path, paired) -> None:
    source = small_net("skeleton").eval()
    cache = SourceCache.build(source, paired, "skeleton", cache_dir=tmp_path)
    key = cache.key
    other_data = make_paired(seed=1)
    assert cache_key(source, other_data, "skeleton", torch.float16) != key
    assert cache_key(source, paired, "skeleton", torch.float32) != key
    with torch.no_grad():
        source.head.bias.add_(1.0)
    new_key = cache_key(source, paired, "skeleton", torch.float16)
    assert new_key != key
    with pytest.raises(ValueError, match="stale source cache"):
        SourceCache.load(tmp_path / key[:32], expected_key=new_key)
    rebuilt = SourceCache.build(source, paired, "skeleton", cache_dir=tmp_path)
    assert rebuilt.key == new_key
    torch.testing.assert_close(
        rebuilt.lookup(torch.tensor([0])).logits,
        source.eval()(torch.from_numpy(paired.inputs["skeleton"][:1]))[0],
    )


def test_required_modalities_follow_the_cache(paired) -> None:
    source = small_net("skeleton")
    task = TransferTask(small_net("imu"), "imu", [SourceSpec("skeleton", source)])
    assert task.required_modalities() == ["imu", "skeleton"]
    task.attach_cache("skeleton", SourceCache.build(source, paired, "skeleton"))
    assert task.required_modalities() == ["imu"]
    view = paired.select(task.required_modalities())
    assert view.modalities == ["imu"] and len(view) == len(paired)
    assert np.shares_memory(view.inputs["imu"], paired.inputs["imu"])
    batch = next(iter(DataLoader(view, batch_size=12)))
    assert set(batch["inputs"]) == {"imu"}
    assert torch.isfinite(task(batch)["loss"])  # runs without the source's input
    assert UnimodalTask(small_net("imu"), "imu").required_modalities() == ["imu"]


def test_baseline_loss_errors() -> None:
    from dcat.nn.losses import contrastive_alignment_loss, logit_distillation_loss

    with pytest.raises(ValueError, match=r"must both be \(B, C\), got \(2, 3\) and \(2, 4\)"):
        logit_distillation_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="temperature must be positive, got 0"):
        logit_distillation_loss(torch.zeros(2, 3), torch.zeros(2, 3), temperature=0)
    with pytest.raises(ValueError, match=r"must both be \(B, D\), got \(2, 3\) and \(3, 3\)"):
        contrastive_alignment_loss(torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="temperature must be positive, got -1"):
        contrastive_alignment_loss(torch.zeros(2, 3), torch.zeros(2, 3), temperature=-1)


class _Frames:
    """A minimal lazy array: samples computed on access, views by index."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows
        self.shape = (len(rows), 3, 1, 4, 4)
        self.ndim = 5
        self.reads = 0

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> np.ndarray:
        self.reads += 1
        return np.full(self.shape[1:], float(self.rows[index]), dtype=np.float32)

    def take(self, indices: np.ndarray) -> _Frames:
        return _Frames(self.rows[np.asarray(indices)])

    def fingerprint(self) -> str:
        return ",".join(map(str, self.rows))


def test_paired_dataset_holds_lazy_arrays(paired) -> None:
    from dcat.data import PairedDataset

    frames = _Frames(np.arange(len(paired)))
    data = PairedDataset(
        {"video": frames, "imu": paired.inputs["imu"]},
        paired.labels,
        paired.subjects,
        paired.recordings,
        paired.class_names,
    )
    assert frames.reads == 0  # nothing read at construction
    part = data.subset([5, 2])
    assert isinstance(part.inputs["video"], _Frames) and part.inputs["video"].rows.tolist() == [
        5,
        2,
    ]
    item = part[1]
    assert (
        item["inputs"]["video"].dtype == torch.float32 and item["inputs"]["video"][0, 0, 0, 0] == 2
    )
    assert set(data.fit_normalization()) == {"imu"}  # video is not normalised per channel
    assert data.fingerprint(["video"]) != data.subset(range(len(data) - 1)).fingerprint(["video"])


class _FloatFrames(_Frames):
    """uint8 frames read one sample at a time as float in [0, 1] (the DataLoader path)."""

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames
        self.rows = np.arange(len(frames))
        self.shape = frames.shape
        self.ndim = frames.ndim
        self.reads = 0

    def __getitem__(self, index: int) -> np.ndarray:
        return self.frames[self.rows[index]].astype(np.float32) / 255.0


class _Uint8Frames(_FloatFrames):
    """The same, plus the raw uint8 batch read that the extraction fast path uses."""

    def raw_batch(self, indices: np.ndarray) -> np.ndarray:
        self.reads += 1
        return self.frames[self.rows[indices]]


def test_cache_fast_path_for_uint8_frames_equals_loader_path(paired) -> None:
    from dcat import ModalityNet, create_encoder
    from dcat.data import PairedDataset

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(10, 3, 3, 16, 16), dtype=np.uint8)
    data = PairedDataset(
        {"video": _Uint8Frames(frames)},
        paired.labels[:10],
        paired.subjects[:10],
        paired.recordings[:10],
        paired.class_names,
    )
    net = ModalityNet(create_encoder("video", 3, depth=18, d_model=16), d_out=16, num_classes=3)
    fast = SourceCache.build(net, data, "video", batch_size=4, dtype=torch.float32)
    assert data.inputs["video"].reads == 3  # ceil(10 / 4) raw batches
    slow_data = PairedDataset(
        {"video": _FloatFrames(frames)},
        data.labels,
        data.subjects,
        data.recordings,
        data.class_names,
    )
    slow = SourceCache.build(net, slow_data, "video", batch_size=4, dtype=torch.float32)
    index = torch.arange(10)
    for a, b in zip(fast.lookup(index), slow.lookup(index), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
