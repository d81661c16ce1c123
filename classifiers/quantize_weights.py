"""Weight-only int8 ONNX: MatMul weights per output column, the embedding table per tensor,
stored as int8 + DequantizeLinear; activations stay fp32.

    python -m classifiers.quantize_weights model_fp32.onnx model_int8w.onnx

Unlike onnxruntime's dynamic quantisation, nothing depends on the batch: dynamic int8 scales
activations per batch tensor, so one text's score moved by up to 0.75 with its batch-mates
(tests/test_obfuscation.py caught it on e5s-ft-2026.12.03). Same size as dynamic int8 (~37 MB).
"""

import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def quantize(src, dst):
    m = onnx.load(str(src))
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    users = {}
    for n in g.node:
        for k, x in enumerate(n.input):
            users.setdefault(x, []).append((n, k))
    new_nodes = []
    for name, init in list(inits.items()):
        w = numpy_helper.to_array(init)
        if w.dtype != np.float32 or w.size < 100000:
            continue
        us = users.get(name, [])
        if not us:
            continue
        kinds = {n.op_type for n, _ in us}
        if kinds == {"MatMul"} and w.ndim == 2:
            scale = np.maximum(np.abs(w).max(axis=0), 1e-12) / 127.0  # per output column
            q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
            qn = name + "_q"; sn = name + "_s"; zn = name + "_z"; dn = name + "_dq"
            g.initializer.remove(init)
            g.initializer.extend([numpy_helper.from_array(q, qn), numpy_helper.from_array(scale.astype(np.float32), sn),
                                  numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), zn)])
            new_nodes.append(helper.make_node("DequantizeLinear", [qn, sn, zn], [dn], axis=1))
            for n, k in us:
                n.input[k] = dn
        elif kinds == {"Gather"} and w.ndim == 2:
            scale = np.float32(max(np.abs(w).max(), 1e-12) / 127.0)
            q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
            qn = name + "_q"; sn = name + "_s"; zn = name + "_z"
            g.initializer.remove(init)
            g.initializer.extend([numpy_helper.from_array(q, qn), numpy_helper.from_array(np.array(scale, np.float32), sn),
                                  numpy_helper.from_array(np.array(0, np.int8), zn)])
            for n, k in us:
                out = n.output[0]; n.output[0] = out + "_qrows"
                n.input[k] = qn
                new_nodes.append(helper.make_node("DequantizeLinear", [out + "_qrows", sn, zn], [out]))
        else:
            print("skip", name, kinds, w.shape)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend([n for n in new_nodes if n.input[0].endswith("_q")] + nodes + [n for n in new_nodes if not n.input[0].endswith("_q")])
    # topological order: put gather-dequant right after its gather
    order = []
    post = {n.input[0]: n for n in new_nodes if not n.input[0].endswith("_q")}
    rest = [n for n in g.node if n not in post.values()]
    for n in rest:
        order.append(n)
        for o in n.output:
            if o in post:
                order.append(post[o])
    del g.node[:]; g.node.extend(order)
    onnx.checker.check_model(m)
    onnx.save(m, str(dst))


if __name__ == "__main__":
    quantize(sys.argv[1], sys.argv[2])
