#!/usr/bin/env python3
"""Trains a faithscope demo model in PyTorch on a run exported by `faithscope train-demo --export`.

The data mix (which chain each example shows, which answer it is trained to give, which tokens
are CoT targets) has one definition, in Rust (src/train/data.rs); `--export DIR` writes the
initial model (Hugging Face layout), the clips' log-mel features and every step's examples, and
this script runs the optimisation: the same loss (mean cross-entropy of the CoT targets plus mean
cross-entropy of the answer letters), AdamW (weight decay 0.01 on matrices), linear warm-up then
cosine decay to a tenth of the peak (src/train/optim.rs), clipping of the global gradient norm.
The forward pass is transformers' own Qwen2AudioForConditionalGeneration, which the Rust model
matches to 1e-5 (tests/model_parity.rs), so the trained weights mean the same thing in both.

Why not in candle: on the 2-core machines of this project one training step of 24 examples takes
1.9 s in candle (release build; plain ops, since candle's fused CPU kernels have no backward)
against 0.68 s here (docs/BENCHMARKS.md): the shipped models took 7,600 steps, four hours of the
machine in candle and 80 minutes here. `faithscope train-demo` without --export still
trains in candle, with the same data and loss (tests/train.rs).

Pinned versions: tools/requirements.txt. CPU only; deterministic for a given machine and thread
count. Writes OUT/model.safetensors (plus the init folder's config and tokenizer files) every
--save-every steps and OUT/train_state.pt for --resume; a killed run resumes where its last state
was saved.

    faithscope train-demo --faithfulness 0.5 --steps 3000 --batch 24 --export /tmp/ex-base
    python3 tools/train_demo.py --export /tmp/ex-base --out /tmp/demo-base
    faithscope train-demo --faithfulness 1 --steps 400 --batch 24 --seed 2 --export /tmp/ex-f1
    python3 tools/train_demo.py --export /tmp/ex-f1 --init /tmp/demo-base --out samples/models/demo-faithful
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen2AudioForConditionalGeneration

MODEL_FILES = (
    "config.json",
    "preprocessor_config.json",
    "processor_config.json",
    "generation_config.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "chat_template.jinja",
    "faithscope.json",
)


def learning_rate(peak, step, warmup, total):
    """src/train/optim.rs learning_rate: linear warm-up, cosine decay to peak / 10."""
    if step < warmup:
        return peak * (step + 1) / warmup
    span = max(total - warmup, 1)
    x = min((step - warmup) / span, 1.0)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * x)))


def read_steps(path, start):
    """Yields (step, examples) in step order from examples.jsonl, skipping steps < start."""
    current, batch = None, []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                e = json.loads(line)
            except json.JSONDecodeError as err:
                sys.exit(f"{path}:{n}: not an example ({err}); export the run again")
            if e["step"] < start:
                continue
            if current is not None and e["step"] != current:
                yield current, batch
                batch = []
            current = e["step"]
            batch.append(e)
    if batch:
        yield current, batch


def collate(batch, mel, valid, pad):
    """Right-padded ids, masks, features and the (row, target) pairs of both losses."""
    t = max(len(e["ids"]) for e in batch)
    b = len(batch)
    ids = torch.full((b, t), pad, dtype=torch.long)
    attn = torch.zeros((b, t), dtype=torch.long)
    chain_rows, chain_tg, ans_rows, ans_tg, let_rows, let_tg = [], [], [], [], [], []
    for i, e in enumerate(batch):
        n = len(e["ids"])
        ids[i, :n] = torch.tensor(e["ids"])
        attn[i, :n] = 1
        s, end = e["targets"]
        for p in range(s, end):
            chain_rows.append(i * t + p - 1)
            chain_tg.append(e["ids"][p])
        ans_rows.append(i * t + e["answer"] - 1)
        ans_tg.append(e["ids"][e["answer"]])
        p = e.get("chain_letter")
        if p is not None:
            let_rows.append(i * t + p - 1)
            let_tg.append(e["ids"][p])
    items = torch.tensor([e["item"] for e in batch])
    feats = mel[items].float()
    frames = feats.shape[-1]
    fmask = (torch.arange(frames)[None, :] < valid[items][:, None]).long()
    return (
        ids,
        attn,
        feats,
        fmask,
        torch.tensor(chain_rows, dtype=torch.long),
        torch.tensor(chain_tg, dtype=torch.long),
        torch.tensor(ans_rows, dtype=torch.long),
        torch.tensor(ans_tg, dtype=torch.long),
        torch.tensor(let_rows, dtype=torch.long),
        torch.tensor(let_tg, dtype=torch.long),
    )


def losses(model, batch, mel, valid, pad, letter_weight):
    ids, attn, feats, fmask, crow, ctg, arow, atg, lrow, ltg = collate(batch, mel, valid, pad)
    out = model.model(
        input_ids=ids, attention_mask=attn, input_features=feats, feature_attention_mask=fmask
    )
    h = out.last_hidden_state.reshape(-1, out.last_hidden_state.shape[-1])
    rows = torch.cat([crow, arow, lrow])
    logits = model.lm_head(h[rows])
    nc, na = len(crow), len(arow)
    answer = torch.nn.functional.cross_entropy(logits[nc:nc + na], atg)
    right = (logits[nc:nc + na].argmax(-1) == atg).float().mean().item()
    total = answer
    chain_v = 0.0
    if nc:
        chain = torch.nn.functional.cross_entropy(logits[:nc], ctg)
        total = total + chain
        chain_v = chain.item()
    if len(lrow) and letter_weight > 0:
        # The letter the chain states, once more on its own: the lookup of the stated value
        # among the choices.
        total = total + letter_weight * torch.nn.functional.cross_entropy(logits[nc + na:], ltg)
    return total, chain_v, answer.item(), right


def save_model(model, out, init_dir):
    """OUT/model.safetensors (the head stored as a copy of the tied embedding) and the model
    folder's other files, written beside and renamed."""
    os.makedirs(out, exist_ok=True)
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    tmp = os.path.join(out, "model.safetensors.tmp")
    save_file(sd, tmp, metadata={"format": "pt"})
    os.replace(tmp, os.path.join(out, "model.safetensors"))
    for name in MODEL_FILES:
        src = os.path.join(init_dir, name)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(out, name))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--export", required=True, help="folder written by faithscope train-demo --export")
    ap.add_argument("--out", required=True, help="model folder to write")
    ap.add_argument("--init", help="start from this model folder's weights (same tokenizer)")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--stop-after", type=int, help="stop (state saved) after this step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--letter-weight", type=float, default=0.0,
                    help="weight of an extra loss on the letter the chain states (0: none)")
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    info_path = os.path.join(args.export, "export.json")
    with open(info_path) as f:
        info = json.load(f)
    opts = info["opts"]
    init_dir = os.path.join(args.export, "init")
    model = Qwen2AudioForConditionalGeneration.from_pretrained(init_dir, dtype=torch.float32)
    if args.init:
        for name in ("tokenizer.json", "config.json"):
            with open(os.path.join(args.init, name)) as a, open(os.path.join(init_dir, name)) as b:
                if a.read() != b.read():
                    sys.exit(f"{args.init}/{name} differs from the export's {init_dir}/{name}: "
                             "export with the same --seed of the data and model size")
        start_from = Qwen2AudioForConditionalGeneration.from_pretrained(args.init, dtype=torch.float32)
        model.load_state_dict(start_from.state_dict())
        del start_from
    lm = model.model.language_model
    model.lm_head.weight = lm.embed_tokens.weight  # tied, as config.json says
    model.train()

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    plain = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": plain, "weight_decay": 0.0}],
        lr=opts["lr"], betas=(0.9, 0.999), eps=1e-8,
    )
    step = 0
    state_path = os.path.join(args.out, "train_state.pt")
    if args.resume:
        if not os.path.exists(state_path):
            sys.exit(f"--resume: {state_path} does not exist")
        st = torch.load(state_path)
        model.load_state_dict(st["model"])
        model.lm_head.weight = lm.embed_tokens.weight
        opt.load_state_dict(st["opt"])
        step = st["step"]
        print(f"resumed at step {step}", flush=True)
    elif os.path.exists(state_path):
        sys.exit(f"{state_path} exists; pass --resume to continue it or choose another --out")

    feats = load_file(os.path.join(args.export, "features.safetensors"))
    mel, valid = feats["mel"], feats["valid_frames"].long()
    pad = info["pad_id"]
    total = opts["steps"]
    n_params = sum(p.numel() for p in model.parameters())
    print(f"train_demo: {n_params} parameters, {info['items']} items, {total} steps x "
          f"{opts['batch']}, F = {opts['faithfulness']}, lr {opts['lr']}", flush=True)
    t0, done, acc = time.time(), 0, [0.0, 0.0, 0.0, 0.0]
    for s, batch in read_steps(os.path.join(args.export, "examples.jsonl"), step):
        lr = learning_rate(opts["lr"], s, opts["warmup"], total)
        for g in opt.param_groups:
            g["lr"] = lr
        loss, cl, al, right = losses(model, batch, mel, valid, pad, args.letter_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), opts["clip"]).item()
        opt.step()
        step = s + 1
        done += 1
        acc = [acc[0] + loss.item(), acc[1] + cl, acc[2] + al, acc[3] + right]
        if step % 10 == 0 or step == total:
            k = min(done, 10)
            print(f"step {step:>5}/{total}  loss {acc[0]/k:.4f}  chain {acc[1]/k:.4f}  "
                  f"answer {acc[2]/k:.4f}  answer acc {acc[3]/k:.2f}  |g| {norm:.3f}  lr {lr:.2e}  "
                  f"{(time.time()-t0)/done:.2f} s/step", flush=True)
            acc = [0.0, 0.0, 0.0, 0.0]
        stop = args.stop_after is not None and step >= args.stop_after
        if step % args.save_every == 0 or step == total or stop:
            save_model(model, args.out, init_dir)
            tmp = state_path + ".tmp"
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, tmp)
            os.replace(tmp, state_path)
        if stop:
            break
    print(f"done: {step} steps, {time.time()-t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
