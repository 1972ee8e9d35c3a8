#!/usr/bin/env python3
"""Write a tiny deterministic random-weight llama GGUF (v3, F32) for the
real-engine smoke test (reference/c-stack.md §7.3): 2 blocks, embedding 64,
feed-forward 128, 4 heads, context 2048, a 332-token byte-level vocabulary
(<unk>, <s>, </s>, the 256 byte tokens <0xNN>, a few "▁word" pieces) with
tokenizer.ggml.model = llama. About 125k parameters, 0.5 MB. The weights
come from a seeded PRNG, so the file is identical on every run; its output
is gibberish, good for protocol and streaming tests, not for content.

Usage: make_gguf.py OUT.gguf [--seed N]    (stdlib only)"""

import random
import struct
import sys
from array import array

N_EMBD, N_FF, N_HEAD, N_BLOCK, N_CTX = 64, 128, 4, 2, 2048
ALIGN = 32
WORDS = ("the a and of to in is it you that he was for on are with as I "
         "his they be at one have this from or had by hot word but what "
         "some we can out other were all there when up use your how said "
         "an each she which do their time if will way about many then "
         "them write would like so these her long make thing see him two "
         "has look more day could go come did number sound no most "
         "people").split()[:73]

T_U32, T_I32, T_F32, T_STR, T_ARR = 4, 5, 6, 8, 9


def gstr(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, val):
    out = gstr(key) + struct.pack("<I", typ)
    if typ == T_U32:
        return out + struct.pack("<I", val)
    if typ == T_F32:
        return out + struct.pack("<f", val)
    if typ == T_STR:
        return out + gstr(val)
    etyp, items = val  # array
    out += struct.pack("<IQ", etyp, len(items))
    if etyp == T_STR:
        return out + b"".join(gstr(x) for x in items)
    fmt = {T_I32: "<i", T_F32: "<f", T_U32: "<I"}[etyp]
    return out + b"".join(struct.pack(fmt, x) for x in items)


def vocab():
    toks, scores, types = ["<unk>", "<s>", "</s>"], [0.0] * 3, [2, 3, 3]
    for b in range(256):
        toks.append("<0x%02X>" % b)
        scores.append(0.0)
        types.append(6)  # byte
    for i, w in enumerate(WORDS):
        toks.append("\u2581" + w)
        scores.append(-1.0 - i * 0.01)
        types.append(1)  # normal
    return toks, scores, types


def tensors(n_vocab):
    out = [("token_embd.weight", [N_EMBD, n_vocab])]
    for i in range(N_BLOCK):
        p = "blk.%d." % i
        out += [(p + "attn_norm.weight", [N_EMBD]),
                (p + "attn_q.weight", [N_EMBD, N_EMBD]),
                (p + "attn_k.weight", [N_EMBD, N_EMBD]),
                (p + "attn_v.weight", [N_EMBD, N_EMBD]),
                (p + "attn_output.weight", [N_EMBD, N_EMBD]),
                (p + "ffn_norm.weight", [N_EMBD]),
                (p + "ffn_gate.weight", [N_EMBD, N_FF]),
                (p + "ffn_up.weight", [N_EMBD, N_FF]),
                (p + "ffn_down.weight", [N_FF, N_EMBD])]
    return out + [("output_norm.weight", [N_EMBD]),
                  ("output.weight", [N_EMBD, n_vocab])]


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    seed = int(argv[argv.index("--seed") + 1]) if "--seed" in argv else 42
    rng = random.Random(seed)
    toks, scores, types = vocab()
    meta = [kv("general.architecture", T_STR, "llama"),
            kv("general.name", T_STR, "clawgate-tiny-random"),
            kv("general.file_type", T_U32, 0),
            kv("general.alignment", T_U32, ALIGN),
            kv("llama.context_length", T_U32, N_CTX),
            kv("llama.embedding_length", T_U32, N_EMBD),
            kv("llama.block_count", T_U32, N_BLOCK),
            kv("llama.feed_forward_length", T_U32, N_FF),
            kv("llama.attention.head_count", T_U32, N_HEAD),
            kv("llama.attention.head_count_kv", T_U32, N_HEAD),
            kv("llama.rope.dimension_count", T_U32, N_EMBD // N_HEAD),
            kv("llama.attention.layer_norm_rms_epsilon", T_F32, 1e-5),
            kv("llama.vocab_size", T_U32, len(toks)),
            kv("tokenizer.ggml.model", T_STR, "llama"),
            kv("tokenizer.ggml.tokens", T_ARR, (T_STR, toks)),
            kv("tokenizer.ggml.scores", T_ARR, (T_F32, scores)),
            kv("tokenizer.ggml.token_type", T_ARR, (T_I32, types)),
            kv("tokenizer.ggml.unknown_token_id", T_U32, 0),
            kv("tokenizer.ggml.bos_token_id", T_U32, 1),
            kv("tokenizer.ggml.eos_token_id", T_U32, 2)]
    infos, blobs, off = [], [], 0
    for name, dims in tensors(len(toks)):
        n = 1
        for d in dims:
            n *= d
        if name.endswith("norm.weight"):
            data = array("f", [1.0] * n)
        else:
            data = array("f", (rng.uniform(-0.08, 0.08) for _ in range(n)))
        if sys.byteorder == "big":
            data.byteswap()
        infos.append(gstr(name) + struct.pack("<I", len(dims)) +
                     b"".join(struct.pack("<Q", d) for d in dims) +
                     struct.pack("<IQ", 0, off))
        raw = data.tobytes()
        pad = (-len(raw)) % ALIGN
        blobs.append(raw + b"\0" * pad)
        off += len(raw) + pad
    head = b"GGUF" + struct.pack("<IQQ", 3, len(infos), len(meta))
    head += b"".join(meta) + b"".join(infos)
    head += b"\0" * ((-len(head)) % ALIGN)
    tmp = argv[1] + ".tmp"
    with open(tmp, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)
    import os
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
