"""Export the single-sensor target network of a training run (docs/design.md, "Deployment").

``export_model(RUN_OR_CHECKPOINT)`` rebuilds the target branch alone (encoder, attention, head;
no source, no training code) from a checkpoint and its model card, and writes a folder::

    OUT/model.onnx          ONNX, dynamic batch axis (input "input", output "logits")
    OUT/model.pt2           torch.export program (with format "torch-export")
    OUT/model.safetensors   the weights
    OUT/metadata.json       the model card (dcat.io.card) plus what was exported and its parity

``metadata.json`` is shipped with the model, so it holds no path of the training machine: the
run folder and checkpoint are given relative to the export folder when the export lies in the
run's folder (the default ``<run>/export``), and as ``null`` otherwise.

After writing, every format is run on held-out samples (the validation inputs the run kept in
``examples.npy``; random inputs when a bare checkpoint has none) and compared with the PyTorch
logits; a maximum absolute difference above the tolerance refuses the export. The folder
appears complete or not at all: it is written under a temporary name and renamed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

import dcat
from dcat.errors import DcatError
from dcat.io.atomic import atomic_folder
from dcat.io.card import ModelCard
from dcat.nn.model import ModalityNet
from dcat.nn.weights import load_error_summary
from dcat.training.run_folder import RunFolder, read_target_state

__all__ = ["FORMATS", "DeployedNet", "ExportError", "export_model", "load_trained"]

FORMATS = ("onnx", "torch-export")


class ExportError(DcatError):
    """An export that cannot be made or fails its parity check (nothing is left written)."""


class DeployedNet(nn.Module):
    """A target network as deployed: input ``(B, *input_shape)`` → logits ``(B, K)``."""

    def __init__(self, net: ModalityNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, num_classes)`` of a batch of normalised inputs ``(B, *input_shape)``."""
        return self.net.forward_all(x).logits


def _checkpoint_path(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run folder or checkpoint")
    best = RunFolder(path).best
    if best.is_file():
        return best
    if (path / "results.json").is_file() or (path / "runs").is_dir():
        raise DcatError(
            f"{path} is an experiment folder with many runs; pass one run, e.g. "
            f"{path / 'runs' / 'ood' / 'seed0' / 'imu' / 'baseline'}"
        )
    where = best.relative_to(path)
    raise DcatError(f"{path}: not a run folder (no {where}) nor a checkpoint file")


def load_trained(
    path: str | Path, modality: str | None = None
) -> tuple[ModalityNet, ModelCard, Path]:
    """Rebuild a run's trained target network from its checkpoint.

    Args:
        path: A run folder (its ``checkpoints/best.ckpt`` is used) or a checkpoint file.
        modality: If given, the target modality the checkpoint must hold.

    Returns:
        The network in eval mode, its model card (with ``run["checkpoint"]`` filled in) and
        the checkpoint path.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DcatError: Not a dcat checkpoint, no model card, another modality, or weights that do
            not fit the described network (each message names the file).
    """
    ckpt = _checkpoint_path(Path(path))
    weights, state = read_target_state(ckpt)
    card_data = state.get("dcat_card")
    where = str(ckpt)
    if card_data is None:
        beside = ckpt.parent.parent / "model_card.json"
        if not beside.is_file():
            raise DcatError(
                f"{ckpt}: holds no model description (model card); it was written by an older "
                "dcat or its encoder was not built by name with create_encoder"
            )
        card = ModelCard.load(beside)
    else:
        card = ModelCard.from_dict(card_data, where=where)
    if modality is not None and modality != card.modality:
        raise DcatError(f"{ckpt}: holds a model of modality {card.modality!r}, not {modality!r}")
    try:
        net = ModalityNet.from_architecture(card.architecture)
    except ValueError as err:
        raise DcatError(f"{ckpt}: cannot rebuild the described network: {err}") from None
    try:
        net.load_state_dict(weights)
    except RuntimeError as err:
        raise DcatError(
            f"{ckpt}: weights do not fit the described network: {load_error_summary(err)}"
        ) from None
    card.run = {**card.run, "checkpoint": str(ckpt.resolve())}
    return net.eval(), card, ckpt


def _portable_run(run: dict[str, Any], ckpt: Path, out: Path) -> dict[str, Any]:
    """``run`` with its paths (``dir``, ``checkpoint``) relative to the export folder ``out``
    when they lie in the folder that holds ``out``, else ``None``: an absolute path would leak
    the training machine's layout into a file users ship."""
    base, ckpt = out.resolve().parent, ckpt.resolve()
    in_run = RunFolder(ckpt.parent.parent).checkpoints == ckpt.parent  # not a bare file
    paths = {"checkpoint": ckpt, "dir": ckpt.parent.parent if in_run else None}
    portable = {k: v for k, v in run.items() if k not in paths}
    for key, path in paths.items():
        if path is not None and (path == base or base in path.parents):  # inside
            portable[key] = os.path.relpath(path, out.resolve())
        else:
            portable[key] = None
    return portable


def _examples(
    card: ModelCard, ckpt: Path, samples: np.ndarray | str | Path | None
) -> tuple[np.ndarray, str]:
    if samples is None:
        kept = ckpt.parent.parent / "examples.npy"
        if kept.is_file():
            samples, origin = kept, f"held-out validation inputs ({kept.name})"
        else:
            rng = np.random.default_rng(0)
            shape = (8, *card.input_shape)
            # frames lie in [0, 1]; normalised series are roughly standard normal
            draw = rng.random(shape) if card.is_video else rng.standard_normal(shape)
            return draw.astype(np.float32), "random inputs (the run kept no examples.npy)"
    else:
        origin = "given samples"
    if isinstance(samples, (str, Path)):
        try:
            array = np.load(samples, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise ExportError(f"{samples}: cannot read samples as .npy: {err}") from None
    else:
        array = np.asarray(samples)
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != len(card.input_shape) + 1 or list(array.shape[1:]) != card.input_shape:
        raise ExportError(
            f"parity samples must have shape (N, {', '.join(map(str, card.input_shape))}), "
            f"got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ExportError("parity samples hold NaN or Inf values")
    return array, origin


def _onnx(model: DeployedNet, example: Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        input_names=["input"],
        output_names=["logits"],
        dynamic_shapes={"x": {0: batch}},
        dynamo=True,
        verbose=False,
        external_data=False,
    )


def _onnx_logits(path: Path, inputs: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # batch 1 and the whole set both, so the dynamic batch axis is exercised
    first = session.run(["logits"], {"input": inputs[:1]})[0]
    rest = session.run(["logits"], {"input": inputs})[0]
    return np.concatenate([first, rest[1:]]) if len(inputs) > 1 else first


def _torch_export(model: DeployedNet, example: Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (example,), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, str(path))


def _torch_export_logits(path: Path, inputs: np.ndarray) -> np.ndarray:
    module = torch.export.load(str(path)).module()
    with torch.no_grad():
        return module(torch.from_numpy(inputs)).numpy()


_WRITERS: dict[str, tuple[str, Callable, Callable]] = {
    "onnx": ("model.onnx", _onnx, _onnx_logits),
    "torch-export": ("model.pt2", _torch_export, _torch_export_logits),
}


@dataclass(frozen=True)
class _Parity:
    """The inputs every exported format is checked on, PyTorch's logits for them, where the
    inputs came from (for the messages) and the largest difference allowed."""

    inputs: np.ndarray
    reference: np.ndarray
    origin: str
    tolerance: float

    def check(self, fmt: str, logits: np.ndarray, log: Callable[[str], None]) -> float:
        """The largest ``|logits − reference|`` of ``fmt``, logged.

        Raises:
            ExportError: It is above the tolerance (or NaN).
        """
        diff = float(np.abs(logits - self.reference).max())
        log(f"  parity on {len(self.inputs)} {self.origin}: max |Δlogit| = {diff:.3g}")
        if not diff <= self.tolerance:  # NaN fails too
            raise ExportError(
                f"{fmt} parity check failed: max |logits − PyTorch logits| = {diff:.3g} > "
                f"tolerance {self.tolerance:g} on {len(self.inputs)} {self.origin}; "
                "nothing was written"
            )
        return diff


def export_model(
    path: str | Path,
    out: str | Path | None = None,
    *,
    formats: Sequence[str] = ("onnx",),
    modality: str | None = None,
    samples: np.ndarray | str | Path | None = None,
    tolerance: float = 1e-4,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Export a run's target network, check parity, and write the deployment folder.

    Args:
        path: A run folder or a checkpoint (see :func:`load_trained`).
        out: Output folder; default ``<run>/export``.
        formats: Any of ``"onnx"`` and ``"torch-export"``.
        modality: The target modality the run must hold (checked), if given.
        samples: Parity inputs ``(N, *input_shape)`` (array or ``.npy``), normalised as the
            network sees them; default the run's kept validation inputs.
        tolerance: Largest allowed ``max |logits_exported − logits_torch|``.
        overwrite: Replace an existing ``out`` folder.
        log: Where progress lines go.

    Returns:
        The output folder.

    Raises:
        ExportError: Unknown format, bad samples, an exporter failure, or failed parity
            (nothing is written).
        DcatError, FileNotFoundError: As for :func:`load_trained`.
    """
    _check_request(formats, tolerance)
    net, card, ckpt = load_trained(path, modality)
    out = Path(out) if out is not None else ckpt.parent.parent / "export"
    if out.exists() and not overwrite:
        raise _already_exists(out)
    inputs, origin = _examples(card, ckpt, samples)
    model = DeployedNet(net).eval()
    with torch.no_grad():
        reference = model(torch.from_numpy(inputs)).numpy()
    parity = _Parity(inputs, reference, origin, tolerance)
    try:
        with atomic_folder(out, replace="always" if overwrite else "never") as tmp:
            files, diffs = _write_formats(model, formats, parity, tmp, ckpt, card.modality, log)
            files["safetensors"] = _write_weights(net, card, tmp)
            metadata = _metadata(card, ckpt, out, files, diffs, parity)
            (tmp / "metadata.json").write_text(json.dumps(metadata, indent=2))
    except FileExistsError as err:
        if err.filename != str(out):
            raise
        # another process created ``out`` while this one was exporting: refuse as if it had
        # been there from the start, and leave theirs
        raise _already_exists(out) from None
    log(f"exported to {out}")
    return out


def _check_request(formats: Sequence[str], tolerance: float) -> None:
    """Refuse unknown formats and a tolerance that is not positive, before anything is read.

    Raises:
        ExportError: An unknown or no format, or ``tolerance`` ≤ 0 (or NaN).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ExportError(f"format must be one or more of {list(FORMATS)}, got {list(formats)}")
    if not tolerance > 0:
        raise ExportError(f"tolerance must be positive, got {tolerance}")


def _already_exists(out: Path) -> ExportError:
    """The refusal of an ``out`` folder that exists (without ``overwrite``)."""
    return ExportError(f"{out} already exists; choose another --out or pass --overwrite")


def _write_formats(
    model: DeployedNet,
    formats: Sequence[str],
    parity: _Parity,
    tmp: Path,
    ckpt: Path,
    modality: str,
    log: Callable[[str], None],
) -> tuple[dict[str, str], dict[str, Any]]:
    """Write each format (once, in the order given) to ``tmp`` and check its parity.

    Returns:
        The file name of each format, and its parity record (``max_abs_diff``).

    Raises:
        ExportError: An exporter failed (with its cause), or a format failed parity.
    """
    # two samples, not one: a batch of one could let the exporter fix the batch axis
    example = torch.from_numpy(parity.inputs[: min(2, len(parity.inputs))].copy())
    files: dict[str, str] = {}
    diffs: dict[str, Any] = {}
    for fmt in dict.fromkeys(formats):
        name, write, run = _WRITERS[fmt]
        log(f"exporting {modality} model to {fmt} ...")
        try:
            write(model, example, tmp / name)
        except Exception as err:  # exporters raise many kinds; the user needs the cause
            raise ExportError(f"{fmt} export of {ckpt} failed: {err}") from err
        diff = parity.check(fmt, run(tmp / name, parity.inputs), log)
        files[fmt] = name
        diffs[fmt] = {"max_abs_diff": diff}
    return files, diffs


def _write_weights(net: ModalityNet, card: ModelCard, tmp: Path) -> str:
    """Write the network's weights as safetensors in ``tmp``; returns the file name."""
    from safetensors.torch import save_file

    name = "model.safetensors"
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()},
        str(tmp / name),
        metadata={"format": card.format, "modality": card.modality},
    )
    return name


def _metadata(
    card: ModelCard,
    ckpt: Path,
    out: Path,
    files: dict[str, str],
    diffs: dict[str, Any],
    parity: _Parity,
) -> dict[str, Any]:
    """``metadata.json``: the model card, with the run's paths made portable, and what was
    exported (files, tensor names, parity, versions)."""
    return {
        **card.to_dict(),
        "run": _portable_run(card.run, ckpt, out),
        "export": {
            "files": files,
            "input_name": "input",
            "output_name": "logits",
            "parity": {
                **diffs,
                "tolerance": parity.tolerance,
                "samples": len(parity.inputs),
                "inputs": parity.origin,
            },
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "dcat_version": dcat.__version__,
            "torch_version": "".join(torch.__version__),
        },
    }
