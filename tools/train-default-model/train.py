#!/usr/bin/env python3
"""Step 2 of the default model (GPU machine, PyTorch): train the llama model and export it.

Reads prepare.py's folder (train/valid/heldout .u16, tokens.txt, merges.txt), trains each
configuration in CONFIGS with a fixed seed, keeps the one with the lowest validation loss, and
writes an apr weights folder (core/src/model/weights_import.hpp) to OUT_DIR together with
report.json: the losses, and the held-out perplexity computed the way apr-perplexity computes
it (llama.cpp's method), with the weights and activations rounded as apr rounds them for Q8_0.
The GGUF itself is written by `apr-make-model --import OUT_DIR --type q8_0` (step 3).

Usage: train.py DATA_DIR OUT_DIR [--steps N]
The model computes exactly what apr's llama forward computes: RMSNorm (eps 1e-5), RoPE on
adjacent pairs (llama.cpp's "normal" mode, base 10000), causal softmax attention, SwiGLU,
tied input/output embeddings.
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

BOS = 0
N_CTX = 256
CONFIGS = [
    {"name": "d256-l6", "n_embd": 256, "n_layer": 6, "n_head": 4, "n_ff": 768},
    {"name": "d384-l6", "n_embd": 384, "n_layer": 6, "n_head": 6, "n_ff": 1024},
]
RMS_EPS = 1e-5
ROPE_BASE = 10000.0


class Llama(torch.nn.Module):
    def __init__(self, n_vocab, n_embd, n_layer, n_head, n_ff, dropout):
        super().__init__()
        self.n_head, self.head_dim, self.dropout = n_head, n_embd // n_head, dropout
        self.tok = torch.nn.Embedding(n_vocab, n_embd)
        lin = lambda i, o: torch.nn.Linear(i, o, bias=False)
        self.layers = torch.nn.ModuleList()
        for _ in range(n_layer):
            L = torch.nn.Module()
            L.attn_norm = torch.nn.Parameter(torch.ones(n_embd))
            L.q, L.k, L.v, L.o = lin(n_embd, n_embd), lin(n_embd, n_embd), lin(n_embd, n_embd), lin(n_embd, n_embd)
            L.ffn_norm = torch.nn.Parameter(torch.ones(n_embd))
            L.gate, L.up, L.down = lin(n_embd, n_ff), lin(n_embd, n_ff), lin(n_ff, n_embd)
            self.layers.append(L)
        self.out_norm = torch.nn.Parameter(torch.ones(n_embd))
        for name, p in self.named_parameters():
            if p.dim() == 2:
                # Residual projections scaled down with depth (GPT-2's init).
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith(("o.weight", "down.weight")) else 0.02
                torch.nn.init.normal_(p, std=std)
        half = self.head_dim // 2
        inv = ROPE_BASE ** (-torch.arange(half, dtype=torch.float64) * 2 / self.head_dim)
        ang = torch.arange(N_CTX, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", torch.cos(ang).float(), persistent=False)
        self.register_buffer("sin", torch.sin(ang).float(), persistent=False)
        self.act_round = None  # eval only: rounds every matrix product's input (apr's Q8_0 numerics)

    @staticmethod
    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS) * w

    def rope(self, x):  # x: B, H, T, D; pairs (2i, 2i+1)
        T = x.shape[2]
        c, s = self.cos[:T], self.sin[:T]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * c - x1 * s, x0 * s + x1 * c), dim=-1).flatten(-2)

    def mm(self, layer, x):
        return layer(self.act_round(x) if self.act_round else x)

    def forward(self, idx):
        B, T = idx.shape
        x = self.tok(idx)
        p = self.dropout if self.training else 0.0
        for L in self.layers:
            h = self.rms(x, L.attn_norm)
            q, k, v = (self.mm(m, h).view(B, T, self.n_head, self.head_dim).transpose(1, 2) for m in (L.q, L.k, L.v))
            a = F.scaled_dot_product_attention(self.rope(q), self.rope(k), v, is_causal=True, dropout_p=p)
            x = x + F.dropout(self.mm(L.o, a.transpose(1, 2).reshape(B, T, -1)), p, self.training)
            h = self.rms(x, L.ffn_norm)
            x = x + F.dropout(self.mm(L.down, F.silu(self.mm(L.gate, h)) * self.mm(L.up, h)), p, self.training)
        h = self.rms(x, self.out_norm)
        return (self.act_round(h) if self.act_round else h) @ self.tok.weight.t()


def round_q8_0_rows(x):
    """Blocks of 32 along the last axis as Q8_0: d = amax/127 kept as f16, q = round(x*127/amax)."""
    shape = x.shape
    b = x.reshape(-1, 32).float()
    amax = b.abs().amax(-1, keepdim=True)
    q = torch.where(amax > 0, torch.round(b * (127.0 / amax.clamp_min(1e-30))), torch.zeros_like(b)).clamp(-127, 127)
    d = (amax / 127.0).half().float()
    return (q * d).reshape(shape)


def batches(data, batch, gen, device):
    starts = torch.randint(0, len(data) - N_CTX, (batch,), generator=gen)
    w = torch.stack([data[s:s + N_CTX] for s in starts]).to(device)
    x = torch.cat([torch.full((batch, 1), BOS, device=device, dtype=w.dtype), w[:, :-1]], 1)
    return x.long(), w.long()


@torch.no_grad()
def mean_loss(model, data, device, max_windows=256):
    """Mean next-token loss over consecutive windows (BOS + 255 tokens) of `data`."""
    model.eval()
    n = min(max_windows, len(data) // N_CTX)
    w = data[: n * N_CTX].view(n, N_CTX).to(device).long()
    x = torch.cat([torch.full((n, 1), BOS, device=device, dtype=torch.long), w[:, :-1]], 1)
    total = 0.0
    for i in range(0, n, 64):
        total += F.cross_entropy(model(x[i:i + 64]).float().flatten(0, 1), w[i:i + 64].flatten(), reduction="sum").item()
    model.train()
    return total / (n * N_CTX)


@torch.no_grad()
def perplexity(model, ids, device, max_chunks=None):
    """llama.cpp's perplexity (and apr-perplexity's): the text's tokens with BOS in front, cut into
    chunks of N_CTX, each chunk's first token replaced by BOS, and the tokens of each chunk's
    second half scored (positions N_CTX/2 .. N_CTX-2 predicting the next token)."""
    model.eval()
    toks = torch.cat([torch.tensor([BOS]), ids.long()])
    n_chunks = len(toks) // N_CTX
    if max_chunks:
        n_chunks = min(n_chunks, max_chunks)
    chunks = toks[: n_chunks * N_CTX].view(n_chunks, N_CTX).clone()
    chunks[:, 0] = BOS
    nll, count = 0.0, 0
    first = N_CTX // 2
    for i in range(0, n_chunks, 32):
        c = chunks[i:i + 32].to(device)
        logp = F.log_softmax(model(c).double(), -1)
        tgt = c[:, first + 1:]
        nll -= logp[:, first:-1].gather(-1, tgt[..., None]).sum().item()
        count += tgt.numel()
    model.train()
    return math.exp(nll / count), n_chunks, count


def train_one(cfg, data, n_vocab, steps, device, seed):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = Llama(n_vocab, cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["n_ff"], dropout=0.1).to(device)
    decay = [p for p in model.parameters() if p.dim() == 2]
    keep = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": keep, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), fused=True)
    warmup = 100
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))))
    best = (float("inf"), None, 0)
    log = []
    t0 = time.time()
    for step in range(1, steps + 1):
        x, y = batches(data["train"], 64, gen, device)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(model(x).float().flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps:
            v = mean_loss(model, data["valid"], device)
            log.append({"step": step, "train_loss": round(loss.item(), 4), "valid_loss": round(v, 4)})
            print(f"{cfg['name']} step {step} train {loss.item():.4f} valid {v:.4f} ({time.time() - t0:.0f} s)", flush=True)
            if v < best[0]:
                best = (v, {k: t.detach().clone() for k, t in model.state_dict().items()}, step)
    model.load_state_dict(best[1])
    return model, {"config": cfg, "best_valid_loss": best[0], "best_step": best[2], "log": log,
                   "seconds": round(time.time() - t0, 1),
                   "parameters": sum(p.numel() for p in model.parameters())}


def export(model, cfg, n_vocab, out):
    """The apr weights folder: hparams.txt, tensors.txt, weights.bin (f32, GGUF names/shapes)."""
    tensors = [("token_embd.weight", model.tok.weight)]
    for i, L in enumerate(model.layers):
        b = f"blk.{i}."
        tensors += [(b + "attn_norm.weight", L.attn_norm), (b + "attn_q.weight", L.q.weight),
                    (b + "attn_k.weight", L.k.weight), (b + "attn_v.weight", L.v.weight),
                    (b + "attn_output.weight", L.o.weight), (b + "ffn_norm.weight", L.ffn_norm),
                    (b + "ffn_gate.weight", L.gate.weight), (b + "ffn_up.weight", L.up.weight),
                    (b + "ffn_down.weight", L.down.weight)]
    tensors.append(("output_norm.weight", model.out_norm))
    with open(os.path.join(out, "weights.bin"), "wb") as f, open(os.path.join(out, "tensors.txt"), "w") as t:
        for name, p in tensors:
            a = p.detach().float().cpu().numpy()
            # GGUF lists dimensions innermost first: a [rows, cols] matrix is "cols rows".
            t.write(name + " " + " ".join(str(d) for d in reversed(a.shape)) + "\n")
            f.write(a.astype("<f4").tobytes())
    with open(os.path.join(out, "hparams.txt"), "w") as f:
        f.write(f"name apr-fortunes-{cfg['name']}\nn_vocab {n_vocab}\nn_embd {cfg['n_embd']}\n"
                f"n_layer {cfg['n_layer']}\nn_head {cfg['n_head']}\nn_head_kv {cfg['n_head']}\n"
                f"n_ff {cfg['n_ff']}\nn_ctx {N_CTX}\nrope_freq_base {ROPE_BASE:g}\nrms_norm_eps {RMS_EPS:g}\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda"
    data = {k: torch.from_numpy(np.fromfile(os.path.join(args.data, k + ".u16"), dtype="<u2").astype(np.int32))
            for k in ("train", "valid", "heldout")}
    with open(os.path.join(args.data, "tokens.txt"), encoding="utf-8") as f:
        n_vocab = sum(1 for _ in f)
    runs = [train_one(cfg, data, n_vocab, args.steps, device, args.seed) for cfg in CONFIGS]
    model, info = min(runs, key=lambda r: r[1]["best_valid_loss"])
    os.makedirs(args.out, exist_ok=True)
    for name in ("tokens.txt", "merges.txt"):
        with open(os.path.join(args.data, name), "rb") as src, open(os.path.join(args.out, name), "wb") as dst:
            dst.write(src.read())

    report = {"chosen": info["config"]["name"], "runs": [r[1] for r in runs], "n_ctx": N_CTX}
    report["heldout_ppl_f32"] = perplexity(model, data["heldout"], device)[0]
    # What apr computes for the Q8_0 file: weights rounded to Q8_0, and every matrix product's
    # input rounded to Q8_0 blocks as llama.cpp (and apr's reference and CPU backend) do.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(round_q8_0_rows(p))
    export(model, info["config"], n_vocab, args.out)
    model.act_round = round_q8_0_rows
    ppl, n_chunks, count = perplexity(model, data["heldout"], device)
    report["heldout_ppl_q8_0"] = ppl
    report["heldout_chunks"], report["heldout_scored_tokens"] = n_chunks, count
    ppl16, _, count16 = perplexity(model, data["heldout"], device, max_chunks=16)
    report["heldout_ppl_q8_0_first16"], report["heldout_scored_tokens_first16"] = ppl16, count16
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=1))

    # A taste of the text, greedy from the README's prompt tokens is done by apr itself; here
    # only the training loss curve and perplexities are reported.


if __name__ == "__main__":
    main()
