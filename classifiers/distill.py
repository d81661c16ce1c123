"""Distil the shipped encoder into a shallow student, the cascade's first stage:
`python -m classifiers.distill` (after `python -m classifiers.train_screen` has cached the
teacher's window scores, or it computes them).

The student is the teacher cut down: the shipped 12-layer encoder's weights (read back from its
ONNX file, int8 weights dequantized) with only `--layers` of its layers kept, then trained to
reproduce the teacher's calibrated probabilities window by window (soft-target cross-entropy,
windows the teacher flags weighted up, as for the n-gram screen). The windows are the runtime's
own: model view, 128-token windows and sentence windows of the train split, the phenomena train
rows and concatenations of train rows (`train_screen.corpus`). It is exported to ONNX, quantized
like the teacher (dynamic int8, per channel), and its escalation thresholds are chosen on dev
windows so that at least `--recall` of the windows the teacher scores >= `--flag-level` are
escalated. Writes `screen.onnx` + `screen.json` beside the model and `classifiers/reports/student.json`.

Needs the `train` extra (torch, transformers, onnx). Never reads a test split.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from classifiers.train_screen import choose_thresholds, dev_escalation, teacher_data
from safety_filter.detectors.classifier import ClassifierDetector
from safety_filter.detectors.screen import StudentScreen

HERE = Path(__file__).resolve().parent
VERSION = "student-2026.12.04"


def log(*parts: object) -> None:
    print(time.strftime("%H:%M:%S"), *parts, file=sys.stderr, flush=True)


def teacher_state(onnx_path: Path) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The fine-tuned classifier's weights from its dynamic-int8 ONNX export, as the torch state
    dict of `train.build_model`'s network (`encoder.*`, `head.*`): quantized weights are
    dequantized ((q - zero point) * scale), MatMul weights transposed back to Linear's layout."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state: dict[str, np.ndarray] = {}
    for name, value in inits.items():
        if name.endswith("_quantized") and name[: -len("_quantized")] + "_scale" in inits:
            base = name[: -len("_quantized")]
            if base.startswith("encoder.embeddings."):
                zero = inits[base + "_zero_point"].astype(np.float32)
                state[base] = (value.astype(np.float32) - zero) * inits[base + "_scale"]
        elif (value.dtype == np.float32 and value.ndim >= 1 and name.startswith(("encoder.", "head."))
              and not name.endswith(("_scale", "_zero_point"))):
            state[name] = value
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        weight = node.input[1]
        base = weight[: -len("_quantized")]
        dense = (base[: -len("_Transposed")] if base.startswith("head.") else
                 node.name.lstrip("/").rsplit("/", 1)[0].replace("/", ".") + ".weight")
        zero = inits[base + "_zero_point"].astype(np.float32)
        state[dense] = ((inits[weight].astype(np.float32) - zero) * inits[base + "_scale"]).T.copy()
    layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("encoder.encoder.layer."))
    shapes = {"vocab": state["encoder.embeddings.word_embeddings.weight"].shape[0], "layers": layers,
              "hidden": state["encoder.embeddings.word_embeddings.weight"].shape[1],
              "intermediate": state["encoder.encoder.layer.0.intermediate.dense.bias"].shape[0],
              "positions": state["encoder.embeddings.position_embeddings.weight"].shape[0]}
    return state, shapes


def build_network(state: dict[str, np.ndarray], shapes: dict[str, int], keep: list[int], labels: int):
    """The classifier network with only the encoder layers in `keep` (renumbered in order): all
    of them rebuild the teacher in fp32."""
    import torch
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=shapes["vocab"], hidden_size=shapes["hidden"], num_hidden_layers=len(keep),
                     num_attention_heads=shapes["hidden"] // 32, intermediate_size=shapes["intermediate"],
                     max_position_embeddings=shapes["positions"], type_vocab_size=2, layer_norm_eps=1e-12,
                     hidden_act="gelu", pad_token_id=1)

    class Student(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = BertModel(cfg, add_pooling_layer=False)
            self.head = torch.nn.Linear(shapes["hidden"], labels)

        def forward(self, input_ids, attention_mask):  # type: ignore[no-untyped-def]
            h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return self.head((h * m).sum(1) / m.sum(1).clamp(min=1.0))

    model = Student()
    renumber = {f"encoder.encoder.layer.{old}.": f"encoder.encoder.layer.{new}." for new, old in enumerate(keep)}
    picked = {}
    for name, value in state.items():
        if name.startswith("encoder.encoder.layer."):
            prefix = ".".join(name.split(".")[:4]) + "."
            if prefix not in renumber:
                continue
            name = renumber[prefix] + name[len(prefix):]
        picked[name] = torch.tensor(np.ascontiguousarray(value))
    missing, unexpected = model.load_state_dict(picked, strict=False)
    if unexpected or [m for m in missing if "position_ids" not in m]:
        raise RuntimeError(f"student weights do not match: missing {missing}, unexpected {unexpected}")
    return model


def sequences(detector: ClassifierDetector, contents: list[np.ndarray]) -> list[list[int]]:
    return [[detector.bos, *detector.prefix_ids, *map(int, c), detector.eos] for c in contents]


def pad(seqs: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    longest = max(len(s) for s in seqs)
    ids = np.full((len(seqs), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), longest), dtype=np.int64)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = s
        mask[r, : len(s)] = 1
    return ids, mask


def train(model, seqs, teacher, cal_a, cal_b, pad_id, *, batch, lr, minutes, seed):  # type: ignore[no-untyped-def]
    """Soft-target cross-entropy against the teacher's calibrated probabilities, through the
    teacher's own calibration (so the student's logits live on the teacher's scale); windows the
    teacher scores high weigh more. Length-bucketed batches; linear decay over the time budget."""
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    target = torch.from_numpy(teacher.astype(np.float32))
    weight = 1.0 + 8.0 * target
    a, b = torch.tensor(cal_a, dtype=torch.float32), torch.tensor(cal_b, dtype=torch.float32)
    params = [p for n, p in model.named_parameters() if "word_embeddings" not in n]
    for n, p in model.named_parameters():
        p.requires_grad_("word_embeddings" not in n)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    budget, started, step, running = minutes * 60, time.time(), 0, None
    lengths = np.array([len(s) for s in seqs])
    while time.time() - started < budget:
        order = rng.permutation(len(seqs))
        chunks = [order[i : i + batch * 50] for i in range(0, len(order), batch * 50)]
        batches = [c[np.argsort(lengths[c])][k : k + batch] for c in chunks for k in range(0, len(c), batch)]
        rng.shuffle(batches)
        for idx in batches:
            progress = (time.time() - started) / budget
            if progress >= 1:
                break
            for group in opt.param_groups:
                group["lr"] = lr * min(1.0, (step + 1) / 100) * max(0.02, 1 - progress)
            model.train()
            ids, mask = pad([seqs[i] for i in idx], pad_id)
            logits = model(torch.from_numpy(ids), torch.from_numpy(mask))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits * a + b, target[idx], weight=weight[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
            if step % 50 == 0:
                log(f"step {step}: loss {running:.4f}, {(time.time() - started) / step:.2f} s/step, "
                    f"{(time.time() - started) / 60:.1f} min")
    log(f"trained {step} steps ({step * batch / len(seqs):.2f} epochs) in {(time.time() - started) / 60:.1f} min")
    return step


def export(model, path: Path) -> None:
    """ONNX (inputs input_ids/attention_mask, output logits), then dynamic int8 per channel."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model.eval()
    fp32 = path.with_suffix(".fp32.onnx")
    ids = torch.ones((1, 16), dtype=torch.long)
    torch.onnx.export(model, (ids, torch.ones_like(ids)), str(fp32), input_names=["input_ids", "attention_mask"],
                      output_names=["logits"], opset_version=17, dynamo=False, do_constant_folding=True,
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                                    "logits": {0: "batch"}})
    quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=True)
    fp32.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="../shared/datasets", help="labelled datasets, for classifiers.prepare")
    ap.add_argument("--splits", default="", help="prepared splits folder (default: prepare into the work folder)")
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "safety-filter-screen"),
                    help="the teacher-score cache (shared with train_screen)")
    ap.add_argument("--model-dir", default=None, help="the teacher (default: the shipped model)")
    ap.add_argument("--layers", default="0,4,8,11", help="teacher layers the student keeps")
    ap.add_argument("--init", default="", help="continue training a student ONNX file (its weights dequantized)")
    ap.add_argument("--flag-level", type=float, default=0.4, help="teacher score counted as a flag")
    ap.add_argument("--recall", type=float, default=0.995, help="share of dev flags the student must escalate")
    ap.add_argument("--minutes", type=float, default=40.0, help="training time budget")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    detector, tr, dv = teacher_data(args.model_dir, args.datasets, args.splits, Path(args.workdir), args.seed,
                                    args.threads)
    tag = detector.version
    log(f"teacher {tag}: {len(tr[0])} train windows, {len(dv[0])} dev windows")

    keep = [int(x) for x in args.layers.split(",")]
    if args.init:
        state, shapes = teacher_state(Path(args.init))
        model = build_network(state, shapes, list(range(shapes["layers"])), len(detector.labels))
    else:
        state, shapes = teacher_state(detector.model_dir / "model.onnx")
        model = build_network(state, shapes, keep, len(detector.labels))
    steps = train(model, sequences(detector, tr[0]), tr[1], detector.cal_a, detector.cal_b, detector.pad,
                  batch=args.batch, lr=args.lr, minutes=args.minutes, seed=args.seed)

    out = detector.model_dir / "screen.onnx"
    export(model, out)
    config = {"kind": "student", "version": VERSION, "teacher": tag, "layers": keep, "init": args.init or None,
              "flag_level": args.flag_level, "thresholds": dict.fromkeys(detector.labels, 0.0)}
    (detector.model_dir / "screen.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    screen = StudentScreen(detector.model_dir, threads=args.threads, bos=detector.bos, prefix_ids=detector.prefix_ids,
                           eos=detector.eos, cal_a=detector.cal_a, cal_b=detector.cal_b)
    dev_scores = screen.scores(dv[0])  # exactly as the runtime scores them: one window at a time
    thresholds = choose_thresholds(dev_scores, dv[1], args.flag_level, args.recall)
    config["thresholds"] = dict(zip(detector.labels, map(float, thresholds), strict=True))
    (detector.model_dir / "screen.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")

    report = {
        **config, "train_windows": len(tr[0]), "dev_windows": len(dv[0]), "steps": steps, "minutes": args.minutes,
        "recall_target": args.recall, "bytes": out.stat().st_size,
        "dev": {
            **dev_escalation(dev_scores, thresholds, dv, args.flag_level, detector.labels),
            "mean_abs_prob_gap": {c: float(np.abs(dev_scores[:, k] - dv[1][:, k]).mean())
                                  for k, c in enumerate(detector.labels)},
        },
    }
    (HERE / "reports" / "student.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
