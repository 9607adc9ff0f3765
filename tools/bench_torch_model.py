#!/usr/bin/env python3
"""PyTorch eager baseline for `cargo bench --bench model` (benches/model.rs spawns this script).

Two jobs:
  * `write-random`: write a random Qwen2-Audio checkpoint of a named shape ("0.5b" or "7b") in the
    Hugging Face layout into a folder, borrowing tokenizer.json, preprocessor_config.json and the
    special-token ids from a tiny fixture checkpoint. Used at bench time into a temp dir; never commit
    its output.
  * `time`: load a checkpoint with transformers (eager attention) and time the prefill of a given
    prompt and greedy decode steps; prints one JSON object on stdout.

Versions are pinned in tools/requirements.txt (torch, transformers, safetensors).
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import time

SHAPES = {
    # Qwen2-0.5B-shaped decoder, Whisper-base-shaped audio tower (keeps CPU runs short).
    "0.5b": dict(
        text=dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, vocab_size=151936, max_position_embeddings=8192,
                  tie_word_embeddings=True),
        audio=dict(d_model=512, encoder_layers=6, encoder_attention_heads=8, encoder_ffn_dim=2048,
                   num_mel_bins=128, max_source_positions=1500),
    ),
    # Qwen2-Audio-7B-shaped (decoder and Whisper-large-v3-shaped tower).
    "7b": dict(
        text=dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=32, vocab_size=156032, max_position_embeddings=8192,
                  tie_word_embeddings=False),
        audio=dict(d_model=1280, encoder_layers=32, encoder_attention_heads=20, encoder_ffn_dim=5120,
                   num_mel_bins=128, max_source_positions=1500),
    ),
}


def write_random(args):
    import torch
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    tiny_cfg = json.load(open(os.path.join(args.tokenizer_from, "config.json")))
    shape = SHAPES[args.shape]
    text = dict(shape["text"], model_type="qwen2", rope_theta=1000000.0, rms_norm_eps=1e-6)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if key in tiny_cfg.get("text_config", {}):
            text[key] = tiny_cfg["text_config"][key]
    cfg = Qwen2AudioConfig(audio_config=dict(shape["audio"], model_type="qwen2_audio_encoder"),
                           text_config=text, audio_token_index=tiny_cfg["audio_token_index"],
                           tie_word_embeddings=shape["text"]["tie_word_embeddings"])
    torch.manual_seed(0)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[args.dtype]
    # Built in the target dtype: a 7B never exists in f32 (about 33 GB).
    torch.set_default_dtype(dtype)
    with torch.device("cpu"):
        model = Qwen2AudioForConditionalGeneration(cfg)
    torch.set_default_dtype(torch.float32)
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, max_shard_size="2GB")
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json", "chat_template.jinja",
                 "chat_template.json", "special_tokens_map.json"):
        src = os.path.join(args.tokenizer_from, name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(args.out, name))
    n = sum(p.numel() for p in model.parameters())
    print(json.dumps({"written": args.out, "parameters": n}))


def time_model(args):
    import torch
    from transformers import Qwen2AudioForConditionalGeneration

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[args.dtype]
    device = torch.device(args.device)
    model = Qwen2AudioForConditionalGeneration.from_pretrained(
        args.model, dtype=dtype, attn_implementation="eager").to(device)
    model.eval()
    ids = json.load(open(args.ids_file))
    input_ids = torch.tensor([ids], dtype=torch.long, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    prefill, decode = [], []
    with torch.inference_mode():
        for _ in range(args.warmup + args.repeats):
            sync()
            t0 = time.perf_counter()
            out = model(input_ids=input_ids, use_cache=True)
            sync()
            t1 = time.perf_counter()
            past = out.past_key_values
            tok = out.logits[:, -1:].argmax(-1)
            for _ in range(args.decode):
                out = model(input_ids=tok, past_key_values=past, use_cache=True)
                past = out.past_key_values
                tok = out.logits[:, -1:].argmax(-1)
            sync()
            t2 = time.perf_counter()
            prefill.append(t1 - t0)
            decode.append(t2 - t1)
    prefill, decode = prefill[args.warmup:], decode[args.warmup:]
    print(json.dumps({
        "prefill_tok_s": len(ids) / statistics.median(prefill),
        "decode_tok_s": args.decode / statistics.median(decode) if args.decode else None,
        "threads": torch.get_num_threads(),
        "peak_rss_kb": __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss,
        "torch": torch.__version__,
    }))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write-random", help="write a random checkpoint of a named shape")
    w.add_argument("--shape", choices=sorted(SHAPES), required=True)
    w.add_argument("--tokenizer-from", required=True, help="tiny checkpoint folder to borrow the tokenizer from")
    w.add_argument("--out", required=True)
    w.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f16"])
    t = sub.add_parser("time", help="time prefill and decode")
    t.add_argument("--model", required=True)
    t.add_argument("--ids-file", required=True, help="JSON list of prompt token ids")
    t.add_argument("--decode", type=int, default=32)
    t.add_argument("--repeats", type=int, default=3)
    t.add_argument("--warmup", type=int, default=1)
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--device", default="cpu")
    t.add_argument("--dtype", default="f32", choices=["f32", "bf16", "f16"])
    args = ap.parse_args()
    if args.cmd == "write-random":
        write_random(args)
    else:
        time_model(args)


if __name__ == "__main__":
    sys.exit(main())
