#!/usr/bin/env python3
"""Builds tiny random Audio Flamingo 3 and Qwen2.5-Omni (thinker) checkpoints in the exact
Hugging Face layout and stores reference outputs of transformers (and peft, for the thinking
adapter) for the Rust parity tests (tests/model_af3_omni.rs).

Pinned versions: tools/requirements.txt (torch, transformers, peft, tokenizers, numpy, soundfile,
safetensors). CPU only, deterministic seeds; re-running rewrites identical files.

    python3 tools/tiny_af3_omni.py [--shared ../shared/data] [--out tests/fixtures/af3_omni]

Writes
  <out>/af3-tiny/            AudioFlamingo3ForConditionalGeneration (4-s windows, 128 mels, a
                             two-layer GELU projector, `<sound>` placeholder) with
    think/                   a peft LoRA adapter (adapter_config.json, adapter_model.safetensors)
                             plus non_lora_trainables.bin (one tensor the model has, one it lacks)
    think-rslora/            the same with use_rslora (scale alpha/sqrt(r))
  <out>/omni-thinker-tiny/   Qwen2_5OmniThinkerForConditionalGeneration saved on its own
                             (chunks of 2*n_window = 50 frames, a 10-s feature window)
  <out>/omni-full-tiny/      the same thinker inside a full Qwen2.5-Omni layout: `thinker.`-prefixed
                             tensors, config.json with thinker_config, and unused talker /
                             token2wav tensors
  <out>/reference/<checkpoint>/<clip>.{json,safetensors}
                             as tools/tiny_qwen2_audio.py writes them (see its docstring), with
                             `input_features` holding one row per feature window
"""

import argparse
import json
import os
import shutil

import numpy as np
import soundfile as sf
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import (
    AudioFlamingo3Config,
    AudioFlamingo3ForConditionalGeneration,
    AudioFlamingo3Processor,
    GenerationConfig,
    Qwen2_5OmniConfig,
    Qwen2_5OmniProcessor,
    Qwen2_5OmniThinkerConfig,
    Qwen2_5OmniThinkerForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
    WhisperFeatureExtractor,
)

from tiny_qwen2_audio import CUE, LETTERS, N_COLS, N_GREEDY, N_LAST, QUESTION, ANSWER, init_weights, train_tokenizer

# The chat template of the published nvidia/audio-flamingo-3-hf processor (written by
# transformers' convert_audioflamingo3_to_hf.py): `<sound>` first, then the turn's text.
AF3_TEMPLATE = (
    "{% if messages[0]['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "{% for m in messages if m['content'] is not none %}"
    "<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}"
    "{{ m['content'] }}"
    "{% else %}"
    "{% set audio = namespace(found=False) %}"
    "{% set text_buf = namespace(v='') %}"
    "{% for c in m['content'] %}"
    "{% if c.get('type') == 'audio' or 'audio' in c %}"
    "{% set audio.found = True %}"
    "{% elif c.get('type') == 'text' or 'text' in c %}"
    "{% set text_buf.v = text_buf.v + c['text'] %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if audio.found %}{{ '<sound>' }}{% endif %}{{ text_buf.v }}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)

# The chat template of the published Qwen/Qwen2.5-Omni-7B processor.
OMNI_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}{% set image_count = namespace(value=0) %}"
    "{% set video_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful "
    "assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture "
    "{{ image_count.value }}: {% endif %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif content['type'] == 'audio' or 'audio' in content or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}{% if add_audio_id %}Audio "
    "{{ audio_count.value }}: {% endif %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video "
    "{{ video_count.value }}: {% endif %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

BASE_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
AF3_SPECIAL = BASE_SPECIAL + ["<sound>"]
OMNI_SPECIAL = BASE_SPECIAL + [
    "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|IMAGE|>", "<|VIDEO|>", "<|vision_bos|>",
    "<|vision_eos|>", "<|vision_pad|>",
]
OMNI_EXTRA = {
    "audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
    "image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>", "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
}

TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=4096, rms_norm_eps=1e-6)

# dog49: 2.76 s (one AF3 window; 5 Omni chunks and a tail); crow9 5 s (two AF3 windows, the last
# partial); cat62 12 s (three AF3 windows; longer than the Omni feature window of 10 s, so cut).
CLIPS = [("Animal", "dog49.wav"), ("Animal", "crow9.wav"), ("Animal", "cat62.wav")]


def fe_for(chunk_length):
    return WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160,
                                   chunk_length=chunk_length, n_fft=400, padding_value=0.0,
                                   return_attention_mask=True)


def gen_config(ids):
    return GenerationConfig(bos_token_id=ids["<|endoftext|>"],
                            eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
                            pad_token_id=ids["<|endoftext|>"])


def randomize_lora(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def save_model(model, proc, tok, mdir, template):
    shutil.rmtree(mdir, ignore_errors=True)
    model.save_pretrained(mdir, safe_serialization=True)
    proc.save_pretrained(mdir)
    tok.save_pretrained(mdir)
    proc.feature_extractor.save_pretrained(mdir)
    tpath = os.path.join(mdir, "tokenizer_config.json")
    tconf = json.load(open(tpath))
    tconf["chat_template"] = template
    json.dump(tconf, open(tpath, "w"), indent=2, sort_keys=True)
    st = os.path.join(mdir, "model.safetensors")
    tensors = load_file(st)
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, st, metadata={"format": "pt"})


def build_af3(shared, out):
    torch.manual_seed(11)
    tok = train_tokenizer(400, special=AF3_SPECIAL, chat_template=AF3_TEMPLATE)
    ids = {t: tok.convert_tokens_to_ids(t) for t in AF3_SPECIAL}
    text = dict(TEXT, vocab_size=len(tok), bos_token_id=ids["<|endoftext|>"],
                eos_token_id=ids["<|im_end|>"], model_type="qwen2", tie_word_embeddings=False,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    audio = dict(model_type="audioflamingo3_encoder", hidden_size=64, num_hidden_layers=2,
                 num_attention_heads=4, intermediate_size=128, num_mel_bins=128,
                 max_source_positions=200)
    cfg = AudioFlamingo3Config(audio_config=audio, text_config=text, audio_token_id=ids["<sound>"])
    model = AudioFlamingo3ForConditionalGeneration(cfg).eval()
    model.set_attn_implementation("eager")
    init_weights(model, 11, 4.0)
    model.generation_config = gen_config(ids)
    proc = AudioFlamingo3Processor(feature_extractor=fe_for(4), tokenizer=tok,
                                   chat_template=AF3_TEMPLATE, max_audio_len=600)
    mdir = os.path.join(out, "af3-tiny")
    save_model(model, proc, tok, mdir, AF3_TEMPLATE)
    refs = os.path.join(out, "reference", "af3-tiny")
    run_refs(model, proc, tok, ids, "<sound>", shared, refs, af3=True)

    for sub, rslora, seed in (("think", False, 12), ("think-rslora", True, 13)):
        base = AudioFlamingo3ForConditionalGeneration.from_pretrained(mdir, attn_implementation="eager").eval()
        # non_lora_trainables.bin: state-dict tensors loaded before the adapter, as the paper's
        # code does (load_state_dict(strict=False)); one name the model lacks is ignored there.
        g = torch.Generator().manual_seed(seed)
        sd = base.state_dict()
        key = "model.multi_modal_projector.linear_2.bias"
        non_lora = {key: torch.randn(sd[key].shape, generator=g) * 0.05,
                    "model.sound_mm_projector.layers.9.weight": torch.randn(4, 4, generator=g)}
        base.load_state_dict(non_lora, strict=False)
        lcfg = LoraConfig(r=4, lora_alpha=8, use_rslora=rslora, lora_dropout=0.0,
                          target_modules=["q_proj", "v_proj", "o_proj", "down_proj", "linear_1"])
        peft_model = get_peft_model(base, lcfg)
        randomize_lora(peft_model, seed)
        adir = os.path.join(mdir, sub)
        shutil.rmtree(adir, ignore_errors=True)
        peft_model.save_pretrained(adir)
        # peft writes target_modules in set order; sorted, re-running gives the same bytes
        apath = os.path.join(adir, "adapter_config.json")
        aconf = json.load(open(apath))
        aconf["target_modules"] = sorted(aconf["target_modules"])
        json.dump(aconf, open(apath, "w"), indent=2, sort_keys=True)
        torch.save(non_lora, os.path.join(adir, "non_lora_trainables.bin"))
        # The reference: reload as the paper does, then peft's merge_and_unload.
        again = AudioFlamingo3ForConditionalGeneration.from_pretrained(mdir, attn_implementation="eager").eval()
        again.load_state_dict(torch.load(os.path.join(adir, "non_lora_trainables.bin")), strict=False)
        merged = PeftModel.from_pretrained(again, adir).merge_and_unload().eval()
        merged.generation_config = gen_config(ids)
        run_refs(merged, proc, tok, ids, "<sound>", shared,
                 os.path.join(out, "reference", f"af3-tiny-{sub}"), af3=True)


def omni_thinker_config(tok, ids):
    text = dict(TEXT, vocab_size=len(tok), bos_token_id=ids["<|endoftext|>"],
                eos_token_id=ids["<|im_end|>"], tie_word_embeddings=False,
                rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                 "mrope_section": [2, 3, 3]})
    audio = dict(d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=128,
                 num_mel_bins=128, max_source_positions=1500, n_window=25, output_dim=64)
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                  fullatt_block_indexes=[0], window_size=28)
    return Qwen2_5OmniThinkerConfig(
        audio_config=audio, vision_config=vision, text_config=text,
        audio_token_index=ids["<|AUDIO|>"], image_token_index=ids["<|IMAGE|>"],
        video_token_index=ids["<|VIDEO|>"], audio_start_token_id=ids["<|audio_bos|>"],
        audio_end_token_id=ids["<|audio_eos|>"], vision_start_token_id=ids["<|vision_bos|>"],
        vision_end_token_id=ids["<|vision_eos|>"])


def build_omni(shared, out):
    torch.manual_seed(21)
    tok = train_tokenizer(440, special=OMNI_SPECIAL, chat_template=OMNI_TEMPLATE, extra=OMNI_EXTRA)
    ids = {t: tok.convert_tokens_to_ids(t) for t in OMNI_SPECIAL}
    cfg = omni_thinker_config(tok, ids)
    model = Qwen2_5OmniThinkerForConditionalGeneration(cfg).eval()
    model.set_attn_implementation("eager")
    init_weights(model, 21, 4.0)
    model.generation_config = gen_config(ids)
    proc = Qwen2_5OmniProcessor(image_processor=Qwen2VLImageProcessor(),
                                video_processor=Qwen2VLVideoProcessor(), feature_extractor=fe_for(10),
                                tokenizer=tok, chat_template=OMNI_TEMPLATE)
    mdir = os.path.join(out, "omni-thinker-tiny")
    save_model(model, proc, tok, mdir, OMNI_TEMPLATE)
    run_refs(model, proc, tok, ids, "<|AUDIO|>", shared, os.path.join(out, "reference", "omni-thinker-tiny"))

    # The full layout: the same tensors under `thinker.`, plus talker and token2wav tensors that
    # a thinker-only reader must skip.
    fdir = os.path.join(out, "omni-full-tiny")
    shutil.rmtree(fdir, ignore_errors=True)
    shutil.copytree(mdir, fdir)
    thinker = load_file(os.path.join(mdir, "model.safetensors"))
    g = torch.Generator().manual_seed(22)
    full = {f"thinker.{k}": v for k, v in thinker.items()}
    full["talker.model.layers.0.mlp.up_proj.weight"] = torch.randn(32, 16, generator=g)
    full["talker.codec_head.weight"] = torch.randn(8, 16, generator=g)
    full["token2wav.code2wav_dit_model.input_embed.proj.weight"] = torch.randn(16, 8, generator=g)
    os.remove(os.path.join(fdir, "model.safetensors"))
    # Sharded, as the published checkpoint is: thinker in one file, the rest in another.
    shards = {"model-00001-of-00002.safetensors": {k: v for k, v in full.items() if k.startswith("thinker.")},
              "model-00002-of-00002.safetensors": {k: v for k, v in full.items() if not k.startswith("thinker.")}}
    weight_map = {}
    for fname, part in shards.items():
        save_file({k: v.contiguous() for k, v in sorted(part.items())}, os.path.join(fdir, fname),
                  metadata={"format": "pt"})
        weight_map.update({k: fname for k in part})
    json.dump({"metadata": {}, "weight_map": dict(sorted(weight_map.items()))},
              open(os.path.join(fdir, "model.safetensors.index.json"), "w"), indent=2)
    fcfg = Qwen2_5OmniConfig(thinker_config=cfg.to_dict())
    fcfg.save_pretrained(fdir)
    # The reference outputs are the thinker's: the Rust test reads omni-thinker-tiny's.


def run_refs(model, proc, tok, ids, placeholder, shared, rdir, af3=False):
    shutil.rmtree(rdir, ignore_errors=True)
    os.makedirs(rdir)
    for track, clip in CLIPS:
        rel = f"sakura-mini/data/{track}/audio/{clip}"
        wav, sr = sf.read(os.path.join(shared, rel), dtype="float32")
        assert sr == 16000, (rel, sr)
        stem = os.path.join(rdir, os.path.splitext(clip)[0])
        reference(model, proc, tok, ids, placeholder, wav, rel, stem, af3)


def render(proc, messages, gen_prompt):
    return proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen_prompt)


def reference(model, proc, tok, ids, placeholder, wav, rel, stem, af3):
    parts = [{"type": "audio", "audio_url": "clip.wav"}, {"type": "text", "text": QUESTION}]
    # Omni: the clip after the text, as the paper's code gives it (AF3's template puts <sound>
    # first either way)
    user = {"role": "user", "content": parts if af3 else parts[::-1]}
    full_text = render(proc, [user, {"role": "assistant", "content": ANSWER}], False)
    open_text = render(proc, [user], True)
    cue_text = open_text + CUE
    mask_key = "input_features_mask" if af3 else "feature_attention_mask"

    def inputs(text):
        x = proc(text=text, audio=wav, sampling_rate=16000, return_tensors="pt")
        x["input_features"] = x["input_features"].half().float()
        x.pop("num_audio_tokens", None)
        return x

    with torch.no_grad():
        full = inputs(full_text)
        feats, mask = full["input_features"], full[mask_key]
        if af3:
            audio_embeds = model.model.get_audio_features(feats, mask).pooler_output.float()
        else:
            audio_embeds = model.get_audio_features(feats, mask).last_hidden_state.float()
        out = model(**full)
    logits = out.logits[0].float()
    ids_full = full["input_ids"][0]
    audio_id = ids[placeholder]
    n_audio = int((ids_full == audio_id).sum())
    assert audio_embeds.shape[0] == n_audio, (audio_embeds.shape, n_audio)

    with torch.no_grad():
        g_in = inputs(open_text)
        gen = model.generate(**g_in, max_new_tokens=N_GREEDY, do_sample=False)
        greedy = gen[0, g_in["input_ids"].shape[1]:].tolist()
        c_in = inputs(cue_text)
        c_logits = model(**c_in).logits[0, -1].float()
    c_logprobs = torch.log_softmax(c_logits, dim=-1)
    letter_ids = [tok.convert_tokens_to_ids(l) for l in LETTERS]
    eos = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    vocab = logits.shape[1]
    cols = torch.linspace(0, vocab - 1, N_COLS).round().long()
    save_file(
        {
            "input_features": feats.half().contiguous(),
            "feature_attention_mask": mask.long().contiguous(),
            "audio_embeds": audio_embeds.contiguous(),
            "full_logits_cols": logits[:, cols].contiguous(),
            "full_logits_last": logits[-N_LAST:].contiguous(),
            "choice_logprobs": c_logprobs.contiguous(),
        },
        stem + ".safetensors",
    )
    meta = {
        "clip": rel,
        "repeat": 1,
        "clip_seconds": round(len(wav) / 16000, 4),
        "windows": int(feats.shape[0]),
        "valid_frames": int(mask.sum()),
        "window_valid_frames": mask.sum(-1).tolist(),
        "n_audio_tokens": n_audio,
        "audio_token_id": audio_id,
        "question": QUESTION,
        "full": {"assistant": ANSWER, "text": full_text, "input_ids": ids_full.tolist(),
                 "logit_cols": cols.tolist(), "last_positions": N_LAST},
        "greedy": {"text": open_text, "input_ids": g_in["input_ids"][0].tolist(),
                   "tokens": greedy, "eos_token_ids": eos,
                   "stopped_at_eos": len(greedy) < N_GREEDY, "max_new_tokens": N_GREEDY},
        "choice": {"prefill": CUE, "text": cue_text, "input_ids": c_in["input_ids"][0].tolist(),
                   "letters": LETTERS, "letter_ids": letter_ids,
                   "logprobs": [float(c_logprobs[i]) for i in letter_ids]},
    }
    json.dump(meta, open(stem + ".json", "w"), indent=1)
    print(f"{stem}: {len(wav)/16000:.2f} s, {feats.shape[0]} window(s), {int(mask.sum())} frames, "
          f"{n_audio} audio tokens, {len(ids_full)} prompt tokens, greedy {greedy}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.path.join("..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join("tests", "fixtures", "af3_omni"))
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    build_af3(args.shared, args.out)
    build_omni(args.shared, args.out)


if __name__ == "__main__":
    main()
