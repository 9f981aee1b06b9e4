"""D-CAT's MCMA rules: ``correct`` (the paper's), ``confident`` (probability ≥ τ) and ``none``."""

from __future__ import annotations

import pytest
import torch

from dcat.errors import DcatError
from dcat.nn.encoders import create_encoder
from dcat.nn.losses import cross_attention_distance, mcma_mask
from dcat.nn.model import ModalityNet
from dcat.training.methods import resolve_method
from dcat.training.tasks import SourceSpec, TransferTask

# softmax rows: true class 0 with p = 0.7 (correct, confident), 0.4 of 3 (correct, unsure),
# and a wrong argmax
LOGITS = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.4, 0.3, 0.3], [0.1, 0.8, 0.1]]))
LABELS = torch.tensor([0, 0, 0])


def test_confident_needs_the_true_class_probability() -> None:
    assert mcma_mask(LOGITS, LABELS).tolist() == [True, True, False]
    assert mcma_mask(LOGITS, LABELS, confidence=0.5).tolist() == [True, False, False]
    assert mcma_mask(LOGITS, LABELS, confidence=0.4).tolist() == [True, True, False]
    assert mcma_mask(LOGITS, LABELS, confidence=0.71).tolist() == [False, False, False]
    # a low threshold never admits a sample the source gets wrong (p(true) = 0.1 there)
    assert mcma_mask(LOGITS, LABELS, confidence=0.05).tolist() == [True, True, False]
    with pytest.raises(DcatError, match=r"confidence must be in \(0, 1\], got 1.5"):
        mcma_mask(LOGITS, LABELS, confidence=1.5)


def test_rules_name_their_variants_and_old_spellings_still_work() -> None:
    assert resolve_method("dcat").option_dict["mcma"] == "correct"
    assert resolve_method("dcat").tag == "dcat"
    assert resolve_method({"name": "dcat", "mcma": True}).tag == "dcat"
    assert resolve_method({"name": "dcat", "mcma": False}).tag == "dcat_no_mcma"
    assert resolve_method("dcat_no_mcma").option_dict["mcma"] == "none"
    # the threshold names a variant only for the rule that reads it
    assert resolve_method({"name": "dcat", "confidence": 0.9}).tag == "dcat"
    confident = resolve_method({"name": "dcat", "mcma": "confident", "confidence": 0.9})
    assert confident.tag == "dcat_confidence0.9_mcmaconfident"
    assert confident.label == "D-CAT (confidence=0.9, mcma=confident)"
    with pytest.raises(DcatError, match=r"mcma must be one of \['correct', 'confident', 'none'\]"):
        resolve_method({"name": "dcat", "mcma": "sure"})
    with pytest.raises(DcatError, match=r"confidence must be in \(0, 1\], got 0.0"):
        resolve_method({"name": "dcat", "mcma": "confident", "confidence": 0.0})


def _net(seed: int) -> ModalityNet:
    torch.manual_seed(seed)
    return ModalityNet(create_encoder("sequence", 6, d_model=8, depth=1), d_out=8, num_classes=3)


@pytest.mark.parametrize("rule", ["correct", "confident", "none"])
def test_each_rule_aligns_exactly_its_samples(rule: str) -> None:
    source, target = _net(0).eval(), _net(1).eval()
    x = torch.randn(6, 6, 20)
    with torch.no_grad():
        logits = source.forward_all(x).logits
    labels = logits.argmax(1)
    labels[:2] = (labels[:2] + 1) % 3  # two samples the source gets wrong
    # a threshold between the correct samples' probabilities, so that the rules differ
    tau = float(logits.softmax(1).max(1).values[2:].median())
    spec = SourceSpec("s", source, "x", "dcat", options={"mcma": rule, "confidence": tau})
    task = TransferTask(target, "x", [spec]).eval()
    out = task({"inputs": {"x": x}, "label": labels})
    masks = {
        "correct": mcma_mask(logits, labels),
        "confident": mcma_mask(logits, labels, confidence=tau),
        "none": torch.ones(6, dtype=torch.bool),
    }
    assert masks["none"].sum() > masks["correct"].sum() > masks["confident"].sum() > 0
    mask = masks[rule]
    with torch.no_grad():
        s, t = source.forward_all(x).kqv, target.forward_all(x).kqv
    expected = cross_attention_distance((s[0], None, s[2]), t)[mask].mean()
    torch.testing.assert_close(out["ca"], expected)
    torch.testing.assert_close(out["mcma_frac/s"], mask.float().mean())
