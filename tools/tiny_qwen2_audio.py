#!/usr/bin/env python3
"""Builds tiny random Qwen2-Audio checkpoints in the exact Hugging Face layout and stores
reference outputs of transformers for the Rust parity tests (tests/model_parity.rs).

Pinned versions: tools/requirements.txt (torch, transformers, tokenizers, numpy, soundfile,
safetensors). CPU only, deterministic seeds; re-running rewrites identical files.

    python3 tools/tiny_qwen2_audio.py [--shared ../shared/data] [--out tests/fixtures/qwen2_audio]

Writes, per checkpoint (tiny-a, tiny-b):
  <out>/<name>/  config.json, model.safetensors, generation_config.json,
                 preprocessor_config.json, tokenizer.json, tokenizer_config.json, chat template
  <out>/reference/<name>/<clip>.json and .safetensors  (inputs and reference outputs)

tiny-a: grouped-query attention (4 heads / 2 kv heads), a 4-s audio window (200 encoder
        positions, 80 mel bins), tied embeddings, RoPE base written as transformers 5 does
        (`rope_parameters`).
tiny-b: the full 3000-frame (30 s) window with 128 mel bins, untied embeddings, plain
        multi-head attention, RoPE base written at the top level of text_config as the published
        Qwen2-Audio checkpoints do.

With --demo DIR..., only reference outputs of trained model folders (samples/models/demo-faithful
and demo-posthoc) on two clips of samples/synth-test, into <out>/reference/<folder name>/:

    python3 tools/tiny_qwen2_audio.py --demo samples/models/demo-faithful samples/models/demo-posthoc
"""

import argparse
import json
import os
import shutil

import numpy as np
import soundfile as sf
import torch
from safetensors.torch import load_file, save_file
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    AutoProcessor,
    GenerationConfig,
    PreTrainedTokenizerFast,
    Qwen2AudioConfig,
    Qwen2AudioForConditionalGeneration,
    Qwen2AudioProcessor,
    WhisperFeatureExtractor,
)

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"]

# Qwen2's pre-tokenizer split pattern (from Qwen2's tokenizer.json).
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# The Qwen2-Audio processor's chat template (transformers' default_chat_template).
CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if 'audio' in content or 'audio_url' in content or message['type'] == 'audio' or content['type'] == 'audio' %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)

# English text the tokenizer is trained on: questions and reasoning about sounds.
CORPUS = """
You are a helpful assistant. Listen to the audio and answer the question.
Based on the options, which animal do you think is associated with the sound you hear?
(a) cow (b) dog (c) sheep (d) crow. The answer is (d) crow.
Considering the animal in the audio, what is its most typical behavior from the given list?
What emotion does the speaker express? (a) happy (b) sad (c) angry (d) neutral.
Is the speaker male or female? Which language is spoken in the recording?
Let me think step by step. The sound starts with a short sharp bark, then a second bark.
The pitch is high and the sound repeats about twice per second, which suggests a small dog.
A cow makes a long low moo, a sheep bleats, and a crow caws loudly with a harsh tone.
The recording lasts about three seconds. There is some background noise, maybe wind or traffic.
The voice sounds slow and quiet, with a falling tone at the end of each sentence, so the speaker seems sad.
A happy voice is usually faster and higher, with a rising pitch and more energy.
The speaker pronounces the words with an English accent; the question asks about the language.
Given all of the above, what's the single, most likely answer? The single, most likely answer is (B).
Given the reasoning above, what is the single, most likely answer? Please respond with only the letter.
The answer is (A). The answer is (B). The answer is (C). The answer is (D).
First, I hear a rooster crowing in the morning. Second, a hen clucks softly near the farm.
The cat meows twice; the meow is short and then it purrs. The frequency is around 500 Hz.
Counting the beeps: one, two, three, four, five. There are 5 beeps in 2.5 seconds, e.g. 2 per second.
The sound is loud at first and then fades out. I think the answer is the dog, because of the bark.
Dr. Smith said the clip is 0.4 s long. That is too short for a full word, so it must be a noise.
What is the most likely source of this sound? Which option best describes the audio?
The tone is calm, the rhythm is steady, and the words are clear. Therefore the emotion is neutral.
Audio 1: the speaker says hello and asks a question about the weather today.
"""


def train_tokenizer(vocab_size, special=SPECIAL, chat_template=CHAT_TEMPLATE, extra=None):
    """A small byte-level BPE with Qwen2's normalizer, pre-tokenizer and special tokens
    (`special`, the first one the end-of-text token; `extra`: named special tokens such as
    `audio_token`, as transformers 5 tokenizers carry them)."""
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    lines = [l for l in CORPUS.strip().splitlines() if l.strip()]
    tok.train_from_iterator(lines * 4, trainer=trainer)
    tok.add_special_tokens(special)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        errors="replace",
        clean_up_tokenization_spaces=False,
        model_max_length=32768,
        additional_special_tokens=special[1:],
        **({"extra_special_tokens": extra} if extra else {}),
    )
    fast.chat_template = chat_template
    return fast


def init_weights(model, seed, branch_gain):
    """Re-randomises every parameter with scales that give lively (non-uniform) logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.ndim == 1:
                if name.endswith("bias"):
                    p.copy_(torch.randn(p.shape, generator=g) * 0.05)
                else:  # norm weights
                    p.copy_(1.0 + torch.randn(p.shape, generator=g) * 0.1)
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            elif "embed_positions" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
            else:
                fan_in = int(np.prod(p.shape[1:]))
                # Stronger residual branches in the decoder, so that the last hidden state is
                # not just the input embedding (with tied embeddings that would make greedy
                # decoding repeat the last token forever).
                gain = branch_gain if ("o_proj" in name or "down_proj" in name) else 1.0
                p.copy_(torch.randn(p.shape, generator=g) * gain / np.sqrt(fan_in))


CONFIGS = {
    "tiny-a": dict(
        seed=1,
        branch_gain=4.0,
        vocab=420,
        audio=dict(
            d_model=64, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=128,
            num_mel_bins=80, max_source_positions=200,
        ),
        text=dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            tie_word_embeddings=True,
        ),
        chunk_length=4,
        legacy_rope=False,
        clips=[("Animal", "dog49.wav", 1), ("Animal", "crow9.wav", 1)],
    ),
    "tiny-b": dict(
        seed=2,
        branch_gain=1.0,
        vocab=480,
        audio=dict(
            d_model=64, encoder_layers=2, encoder_attention_heads=2, encoder_ffn_dim=128,
            num_mel_bins=128, max_source_positions=1500,
        ),
        text=dict(
            hidden_size=96, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, max_position_embeddings=4096, rms_norm_eps=1e-5,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
            tie_word_embeddings=False,
        ),
        chunk_length=30,
        legacy_rope=True,
        # cat62 (12 s) three times over: 36 s, longer than the 30-s window.
        clips=[("Animal", "dog49.wav", 1), ("Animal", "cat62.wav", 3)],
    ),
}

QUESTION = (
    "Based on the options, which animal do you think is associated with the sound you hear? "
    "(a) cow (b) dog (c) sheep (d) crow"
)
ANSWER = "Let me think step by step. The sound is a short sharp bark. The answer is (b) dog."
CUE = "The sound starts with a short sharp bark, so it is a small dog. The answer is ("
LETTERS = ["A", "B", "C", "D"]
N_LAST = 8  # full logit rows stored at the last positions
N_COLS = 16  # vocab columns stored at every position
N_GREEDY = 20


def build(name, spec, shared, out):
    torch.manual_seed(spec["seed"])
    tok = train_tokenizer(spec["vocab"])
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL}
    vocab_size = len(tok)
    text = dict(spec["text"], vocab_size=vocab_size, bos_token_id=ids["<|endoftext|>"],
                eos_token_id=ids["<|im_end|>"], model_type="qwen2")
    cfg = Qwen2AudioConfig(audio_config=dict(spec["audio"], model_type="qwen2_audio_encoder"),
                           text_config=text, audio_token_index=ids["<|AUDIO|>"])
    cfg._attn_implementation = "eager"
    model = Qwen2AudioForConditionalGeneration(cfg).eval()
    model.set_attn_implementation("eager")
    init_weights(model, spec["seed"], spec["branch_gain"])
    tied = spec["text"]["tie_word_embeddings"]
    if tied:
        # Same values as the embedding; the saved file then drops lm_head (tied layout).
        with torch.no_grad():
            model.lm_head.weight.copy_(model.model.language_model.embed_tokens.weight)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
    )

    fe = WhisperFeatureExtractor(feature_size=spec["audio"]["num_mel_bins"], sampling_rate=16000,
                                 hop_length=160, chunk_length=spec["chunk_length"], n_fft=400,
                                 padding_value=0.0, return_attention_mask=True)
    proc = Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tok, chat_template=CHAT_TEMPLATE)

    mdir = os.path.join(out, name)
    shutil.rmtree(mdir, ignore_errors=True)
    model.save_pretrained(mdir, safe_serialization=True)
    proc.save_pretrained(mdir)
    tok.save_pretrained(mdir)
    fe.save_pretrained(mdir)  # preprocessor_config.json, as the published checkpoints have
    tpath = os.path.join(mdir, "tokenizer_config.json")
    tconf = json.load(open(tpath))
    tconf["chat_template"] = CHAT_TEMPLATE  # the older layout keeps the template here too
    tconf["tokenizer_class"] = "Qwen2Tokenizer"
    json.dump(tconf, open(tpath, "w"), indent=2, sort_keys=True)
    st = os.path.join(mdir, "model.safetensors")
    tensors = load_file(st)
    if tied:
        tensors.pop("language_model.lm_head.weight", None)
    save_file({k: v.contiguous() for k, v in sorted(tensors.items())}, st, metadata={"format": "pt"})
    cpath = os.path.join(mdir, "config.json")
    conf = json.load(open(cpath))
    conf["text_config"]["tie_word_embeddings"] = tied
    if spec["legacy_rope"]:
        rp = conf["text_config"].pop("rope_parameters")
        conf["text_config"]["rope_theta"] = rp["rope_theta"]
    json.dump(conf, open(cpath, "w"), indent=2, sort_keys=True)

    rdir = os.path.join(out, "reference", name)
    os.makedirs(rdir, exist_ok=True)
    for track, clip, repeat in spec["clips"]:
        rel = f"sakura-mini/data/{track}/audio/{clip}"
        wav, sr = sf.read(os.path.join(shared, rel), dtype="float32")
        assert sr == 16000, (rel, sr)
        wav = np.tile(wav, repeat)
        stem = os.path.splitext(clip)[0] + (f"x{repeat}" if repeat > 1 else "")
        reference(model, proc, tok, ids, wav, rel, repeat, os.path.join(rdir, stem))

    # The saved folder must reproduce the prompt ids through transformers' own loaders.
    again = AutoProcessor.from_pretrained(mdir)
    meta = json.load(open(os.path.join(rdir, stem + ".json")))
    x = again(text=meta["greedy"]["text"], audio=wav, sampling_rate=16000, return_tensors="pt")
    assert x["input_ids"][0].tolist() == meta["greedy"]["input_ids"], "reloaded processor differs"


def render(proc, messages, gen_prompt):
    return proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen_prompt)


def reference(model, proc, tok, ids, wav, rel, repeat, stem):
    user = {"role": "user", "content": [{"type": "audio", "audio_url": "clip.wav"},
                                        {"type": "text", "text": QUESTION}]}
    full_text = render(proc, [user, {"role": "assistant", "content": ANSWER}], False)
    open_text = render(proc, [user], True)
    cue_text = open_text + CUE

    def inputs(text):
        x = proc(text=text, audio=wav, sampling_rate=16000, return_tensors="pt")
        # Features are stored in f16 to keep fixtures small; the reference sees the same values.
        x["input_features"] = x["input_features"].half().float()
        return x

    captured = {}
    hook = model.model.multi_modal_projector.register_forward_hook(
        lambda m, i, o: captured.__setitem__("proj", o.detach().clone()))
    with torch.no_grad():
        full = inputs(full_text)
        out = model(**full)
    hook.remove()
    logits = out.logits[0].float()  # [T, V]
    ids_full = full["input_ids"][0]
    n_audio = int((ids_full == ids["<|AUDIO|>"]).sum())
    audio_embeds = captured["proj"][0, :n_audio].float()
    valid_frames = int(full["feature_attention_mask"].sum())

    with torch.no_grad():
        g_in = inputs(open_text)
        gen = model.generate(**g_in, max_new_tokens=N_GREEDY, do_sample=False)
        greedy = gen[0, g_in["input_ids"].shape[1]:].tolist()
        c_in = inputs(cue_text)
        c_logits = model(**c_in).logits[0, -1].float()
    c_logprobs = torch.log_softmax(c_logits, dim=-1)
    letter_ids = [tok.convert_tokens_to_ids(l) for l in LETTERS]
    assert all(isinstance(i, int) and i >= 0 for i in letter_ids), letter_ids
    eos = [ids["<|im_end|>"], ids["<|endoftext|>"]]

    vocab = logits.shape[1]
    cols = torch.linspace(0, vocab - 1, N_COLS).round().long()
    save_file(
        {
            "input_features": full["input_features"].half().contiguous(),
            "feature_attention_mask": full["feature_attention_mask"].long().contiguous(),
            "audio_embeds": audio_embeds.contiguous(),
            "full_logits_cols": logits[:, cols].contiguous(),
            "full_logits_last": logits[-N_LAST:].contiguous(),
            "choice_logprobs": c_logprobs.contiguous(),
        },
        stem + ".safetensors",
    )
    meta = {
        "clip": rel,
        "repeat": repeat,
        "clip_seconds": round(len(wav) / 16000, 4),
        "valid_frames": valid_frames,
        "n_audio_tokens": n_audio,
        "audio_token_id": ids["<|AUDIO|>"],
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
    print(f"{stem}: {len(wav)/16000:.2f} s, {valid_frames} frames, {n_audio} audio tokens, "
          f"{len(ids_full)} prompt tokens, greedy {greedy}")


# Clips of the synthetic test split the trained demo models are checked on.
DEMO_CLIPS = ["synth-test-count-0000.flac", "synth-test-louder-0000.flac"]


def demo_reference(mdir, out):
    """Reference outputs of a trained model folder (samples/models/demo-*), loaded through
    transformers' own loaders, on two clips of samples/synth-test."""
    name = os.path.basename(os.path.normpath(mdir))
    model = Qwen2AudioForConditionalGeneration.from_pretrained(mdir, attn_implementation="eager").eval()
    proc = AutoProcessor.from_pretrained(mdir)
    tok = proc.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL}
    rdir = os.path.join(out, "reference", name)
    shutil.rmtree(rdir, ignore_errors=True)
    os.makedirs(rdir)
    for clip in DEMO_CLIPS:
        rel = f"samples/synth-test/audio/{clip}"
        wav, sr = sf.read(rel, dtype="float32")
        assert sr == 16000, (rel, sr)
        stem = clip.split(".")[0].replace("synth-test-", "")
        reference(model, proc, tok, ids, wav, rel, 1, os.path.join(rdir, stem))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.path.join("..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join("tests", "fixtures", "qwen2_audio"))
    ap.add_argument("--demo", nargs="*", default=None,
                    help="only write reference outputs of these trained model folders")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    if args.demo is not None:
        for mdir in args.demo:
            demo_reference(mdir, args.out)
        return
    for name, spec in CONFIGS.items():
        build(name, spec, args.shared, args.out)


if __name__ == "__main__":
    main()
