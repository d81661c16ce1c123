"""Latency of the shipped classifier vs plain fp32 transformers/torch inference of the same model.

    python benchmarks/classifier_latency.py [--checkpoint WORKDIR/model_fp32.pt] [--threads 2]

Rows: texts of about 32, 128 and 512 tokens, batch 1 and batch 16, per text (ms).
- `runtime`: ClassifierDetector.scores() as shipped (onnxruntime, the shipped model.onnx, with
  tokenisation, 128-token windows with overlap, calibration).
- `ort_single_pass`: the shipped model.onnx on the whole sequence in one pass (no windows).
- `torch_fp32`: the same fine-tuned network as fp32 transformers BertModel + head under torch
  (needs the training extras and the fp32 checkpoint written by `python -m classifiers.train`,
  which is kept out of the package in its --workdir; skipped with a note if absent).
Writes benchmarks/results/classifier_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from safety_filter.detectors.classifier import ClassifierDetector  # noqa: E402

SENTENCES = [
    "The committee met on Tuesday to discuss the new budget for the public library.",
    "Le comité s'est réuni mardi pour discuter du nouveau budget de la bibliothèque municipale.",
    "She walked her dog along the river before breakfast and watched the boats go by.",
    "Il faut arroser les tomates le soir quand il fait chaud.",
]


def make_text(det: ClassifierDetector, n_tokens: int) -> str:
    words: list[str] = []
    i = 0
    text = ""
    while True:
        words.append(SENTENCES[i % len(SENTENCES)]); i += 1
        cand = " ".join(words)
        n = len(det._tokenizer.encode(cand, add_special_tokens=False).ids) + 2 + len(det.prefix_ids)
        if n > n_tokens:
            # trim words to land close to the target
            toks = cand.split(" ")
            while toks and len(det._tokenizer.encode(" ".join(toks), add_special_tokens=False).ids) + 2 + len(det.prefix_ids) > n_tokens:
                toks.pop()
            return " ".join(toks)
        text = cand


def timeit(fn, n_texts: int, min_time: float = 1.5, min_reps: int = 3) -> float:
    fn()  # warm-up
    times = []
    t_start = time.perf_counter()
    while len(times) < min_reps or time.perf_counter() - t_start < min_time:
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
        if len(times) >= 200:
            break
    return 1000 * statistics.median(times) / n_texts


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=str(Path(tempfile.gettempdir()) / "safety-filter-train" / "model_fp32.pt"),
                    help="the fp32 checkpoint `python -m classifiers.train` writes in its --workdir")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "classifier_latency.json"))
    ap.add_argument("--min-time", type=float, default=1.5)
    a = ap.parse_args(argv)

    det = ClassifierDetector(threads=a.threads)
    det.load()
    sizes = [32, 128, 512]
    texts = {n: make_text(det, n) for n in sizes}
    ntok = {n: len(det._tokenizer.encode(texts[n], add_special_tokens=False).ids) + 2 + len(det.prefix_ids) for n in sizes}

    def ids_for(text):
        return [det.bos, *det.prefix_ids, *det._tokenizer.encode(text, add_special_tokens=False).ids, det.eos]

    torch_model = None
    note = ""
    if Path(a.checkpoint).exists():
        try:
            import torch

            torch.set_num_threads(a.threads)
            from classifiers.train import build_model

            ck = torch.load(a.checkpoint, weights_only=False)
            torch_model = build_model(ck["keep"], torch)
            torch_model.load_state_dict(ck["state_dict"]); torch_model.eval()
        except Exception as e:  # pragma: no cover
            note = f"torch comparison skipped: {e!r}"
    else:
        note = f"torch comparison skipped: no fp32 checkpoint at {a.checkpoint} (run python -m classifiers.train)"

    results = []
    for n in sizes:
        for bs in (1, 16):
            batch = [texts[n]] * bs
            row = {"tokens": ntok[n], "target_tokens": n, "batch": bs}
            row["runtime_ms_per_text"] = timeit(lambda: det.scores(batch), bs, a.min_time)
            seq = ids_for(texts[n])
            ids = np.array([seq] * bs, dtype=np.int64); am = np.ones_like(ids)
            row["ort_single_pass_ms_per_text"] = timeit(lambda: det._session.run(None, {"input_ids": ids, "attention_mask": am}), bs, a.min_time)
            if torch_model is not None:
                import torch

                ti, ta = torch.from_numpy(ids), torch.from_numpy(am)

                def run_torch():
                    with torch.inference_mode():
                        torch_model(ti, ta)

                row["torch_fp32_ms_per_text"] = timeit(run_torch, bs, a.min_time)
            results.append(row)
            print(row, flush=True)

    out = {"model_version": det.version, "quantization": det.config.get("quantization"), "threads": a.threads,
           "max_length_window": det.max_length, "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
           "note": note, "results": results}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    hdr = f"{'tokens':>7}{'batch':>7}{'runtime ms':>12}{'ort 1-pass':>12}{'torch fp32':>12}{'speed-up':>10}"
    print(hdr)
    for r in results:
        tf = r.get("torch_fp32_ms_per_text")
        ort1 = r["ort_single_pass_ms_per_text"]
        tf_s = f"{tf:.2f}" if tf else "-"
        sp_s = f"{tf / ort1:.1f}x" if tf else "-"
        print(f"{r['tokens']:>7}{r['batch']:>7}{r['runtime_ms_per_text']:>12.2f}{ort1:>12.2f}{tf_s:>12}{sp_s:>10}")
    if note:
        print(note)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
