#!/usr/bin/env python3
"""Writes the small, genuine torch.save / safetensors files under tests/fixtures/io/ that the checkpoint
reader tests (tests/unit/test_pth_reader.cpp, test_safetensors_reader.cpp) compare against bit-exactly.

Needs torch (Debian's python3-torch 1.13 is enough). The .safetensors file is written by the `safetensors`
package when it is importable; otherwise by the small writer below, which follows the format description
(8-byte LE header length, JSON header padded with spaces to a multiple of 8, raw little-endian data). To use
the package with Debian's torch:

    /usr/bin/python3 -m venv --system-site-packages /tmp/stvenv && /tmp/stvenv/bin/pip install safetensors
    /tmp/stvenv/bin/python tools/reference/make_io_fixtures.py

expected.json lists, per file: the archive prefix (for .pth), and every tensor in file order with its name,
dtype, shape and its values converted to float (exact for f32, f16 and bf16).
"""

import collections
import io
import json
import os
import struct
import sys

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "io")
DTYPE_NAME = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16"}


def values(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 3).to(dtype)


def describe(sd):
    out = []
    for name, t in sd.items():
        out.append({
            "name": name,
            "dtype": DTYPE_NAME[t.dtype],
            "shape": list(t.shape),
            # .contiguous() gives the logical row-major order, which is what the reader must produce.
            "values": [float(x) for x in t.contiguous().float().flatten().tolist()],
        })
    return out


def save_to_file(obj, name):
    # torch.save names the archive's top folder after the file's base name ("tiny.pth" -> "tiny/").
    path = os.path.join(OUT, name)
    cwd = os.getcwd()
    os.chdir(OUT)
    try:
        torch.save(obj, name)
    finally:
        os.chdir(cwd)
    return path


def save_to_buffer(obj, name):
    # Saving to a buffer uses the default prefix "archive/".
    buf = io.BytesIO()
    torch.save(obj, buf)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(buf.getvalue())


def write_safetensors_by_hand(path, tensors, metadata):
    """Minimal writer following the safetensors format description (used when the package is absent)."""
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    header, blobs, pos = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        raw = t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [pos, pos + len(raw)]}
        blobs.append(raw)
        pos += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {}

    # 1. An OrderedDict of tensors as in a released RWKV .pth, saved to a buffer ("archive/" prefix), with all
    #    three dtypes, a 1-element tensor, a 0-dim tensor and a 3-D tensor.
    sd = collections.OrderedDict()
    sd["emb.weight"] = values((5, 4), torch.bfloat16, 1)
    sd["blocks.0.att.x_r"] = values((1, 1, 4), torch.bfloat16, 2)
    sd["blocks.0.att.r_k"] = values((2, 2), torch.float16, 3)
    sd["blocks.0.att.w0"] = values((3, 2, 4), torch.float32, 4)
    sd["one"] = values((1,), torch.float32, 5)
    sd["scalar"] = values((), torch.float16, 6)
    sd["empty"] = torch.zeros((0, 3), dtype=torch.bfloat16)
    save_to_buffer(sd, "ordered.pth")
    expected["ordered.pth"] = {"prefix": "archive", "tensors": describe(sd)}

    # 2. state_dict() of a module: the OrderedDict is followed by BUILD of {'_metadata': ...}.
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    msd = module.state_dict()
    save_to_file(msd, "module.pth")
    expected["module.pth"] = {"prefix": "module", "tensors": describe(msd)}

    # 3. Views saved as they are: a transposed view (strides (1, 4)), a slice with a storage offset, the base
    #    they share a storage with, an expanded view (stride 0) and a transposed bf16 3-D view.
    base = values((3, 4), torch.float32, 7)
    big = values((20,), torch.float16, 8)
    views = {
        "transposed": base.t(),
        "base": base,
        "sliced": big[5:11].view(2, 3),
        "expanded": values((3,), torch.float32, 9).expand(2, 3),
        "permuted": values((2, 3, 4), torch.bfloat16, 10).permute(2, 0, 1),
    }
    assert not views["transposed"].is_contiguous() and views["sliced"].storage_offset() == 5
    save_to_file(views, "views.pth")
    expected["views.pth"] = {"prefix": "views", "tensors": describe(views)}

    # 4. A plain dict (EMPTY_DICT, no OrderedDict) as RWKV-PEFT writes state-tuning files.
    peft = {"blocks.0.att.time_state": values((2, 4, 4), torch.bfloat16, 11)}
    save_to_file(peft, "peft_state.pth")
    expected["peft_state.pth"] = {"prefix": "peft_state", "tensors": describe(peft)}

    # 5. A file written under another name: the prefix is "tiny/", not "archive/".
    tiny = collections.OrderedDict([("a", values((2,), torch.float32, 12)), ("b", values((2, 2), torch.float16, 13))])
    save_to_file(tiny, "tiny.pth")
    expected["tiny.pth"] = {"prefix": "tiny", "tensors": describe(tiny)}

    # 6. Parameters saved directly rather than through state_dict(), as some RWKV-LM files are: each tensor is
    #    wrapped by torch._utils._rebuild_parameter.
    params = collections.OrderedDict(
        [("w", torch.nn.Parameter(values((2, 3), torch.float32, 20))), ("b", torch.nn.Parameter(values((3,), torch.bfloat16, 21)))])
    save_to_file(params, "params.pth")
    expected["params.pth"] = {"prefix": "params", "tensors": describe(collections.OrderedDict((k, v.detach()) for k, v in params.items()))}

    # 7. A pickle that needs a forbidden global (collections.Counter): the reader must refuse it.
    save_to_file({"w": values((2,), torch.float32, 14), "counts": collections.Counter("ab")}, "forbidden.pth")
    expected["forbidden.pth"] = {"error": "forbidden pickle global 'collections Counter'"}

    # 8. A safetensors file with all three dtypes and metadata.
    st = collections.OrderedDict()
    st["model.embeddings.weight"] = values((5, 4), torch.bfloat16, 15)
    st["model.layers.0.attn.r_k"] = values((2, 2), torch.float16, 16)
    st["model.layers.0.attn.x_r"] = values((1, 1, 4), torch.float32, 17)
    st["one"] = values((1,), torch.float32, 18)
    st["scalar"] = values((), torch.bfloat16, 19)
    st_path = os.path.join(OUT, "tensors.safetensors")
    metadata = {"format": "pt"}
    try:
        from safetensors.torch import save_file

        save_file(dict(st), st_path, metadata=metadata)
        writer = "safetensors " + __import__("safetensors").__version__
    except ImportError:
        write_safetensors_by_hand(st_path, st, metadata)
        writer = "make_io_fixtures.py's own writer"
    # safetensors stores tensors sorted by dtype alignment, then name; the reader returns them in file order.
    with open(st_path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    order = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"][0])
    expected["tensors.safetensors"] = {"writer": writer, "tensors": describe(collections.OrderedDict((k, st[k]) for k in order))}

    expected["_generator"] = "tools/reference/make_io_fixtures.py, torch " + torch.__version__
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(OUT, x)) for x in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.normpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
