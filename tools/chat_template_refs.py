#!/usr/bin/env python3
"""Renders conversations with transformers' apply_chat_template for model folders and stores the
texts for the Rust chat-template tests (tests/chat_templates.rs).

Pinned versions: tools/requirements.txt. CPU only; re-running rewrites identical files.

    python3 tools/chat_template_refs.py samples/models/demo-faithful tests/fixtures/qwen2_audio/tiny-a

Writes tests/fixtures/chat_templates/<folder name>.json: a list of cases, each
{"conversation": {"audio": bool, "messages": [{"role", "text"}], "prefill": str|null},
 "text": the rendered prompt}. The conversation is faithscope's shape (the clip, if any, in the
first user turn); the messages given to transformers put the clip first in that turn's content (after the text for Qwen2.5-Omni, as the paper's code does),
as faithscope's Qwen2-Audio prompt does.
"""

import json
import os
import sys

from transformers import AutoProcessor

CASES = [
    {"audio": True, "messages": [{"role": "user", "text": "Which animal?\n(A) cat\n(B) dog"}], "prefill": None},
    {"audio": True, "messages": [{"role": "user", "text": "Which animal?"}], "prefill": "Let's think step by step: I hear"},
    {"audio": True, "messages": [{"role": "system", "text": "Answer briefly."}, {"role": "user", "text": "Count the beeps."}], "prefill": "The answer is ("},
    {"audio": False, "messages": [{"role": "user", "text": "Add a mistake to: I hear two beeps."}], "prefill": None},
    {"audio": True, "messages": [
        {"role": "user", "text": "How many beeps?"},
        {"role": "assistant", "text": "Let's think step by step: I count two beeps."},
        {"role": "user", "text": "Given all of the above, what's the single, most likely answer?"}],
     "prefill": "The single, most likely answer is ("},
    {"audio": True, "messages": [{"role": "user", "text": "Q"}, {"role": "assistant", "text": "A finished turn."}], "prefill": None},
]


def hf_messages(case, audio_last):
    out, audio = [], case["audio"]
    for m in case["messages"]:
        if m["role"] == "user" and audio:
            parts = [{"type": "audio", "audio_url": "clip.wav"}, {"type": "text", "text": m["text"]}]
            out.append({"role": "user", "content": parts[::-1] if audio_last else parts})
            audio = False
        else:
            out.append({"role": m["role"], "content": m["text"]})
    if case["prefill"] is not None:
        out.append({"role": "assistant", "content": case["prefill"]})
    return out


def main():
    out_dir = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "chat_templates")
    os.makedirs(out_dir, exist_ok=True)
    for folder in sys.argv[1:]:
        proc = AutoProcessor.from_pretrained(folder)
        # Qwen2.5-Omni's prompts put the clip after the text, as the paper's code does
        audio_last = type(proc).__name__ == "Qwen2_5OmniProcessor"
        cases = []
        for case in CASES:
            cont = case["prefill"] is not None
            text = proc.apply_chat_template(
                hf_messages(case, audio_last), tokenize=False,
                add_generation_prompt=not cont, continue_final_message=cont)
            cases.append({"conversation": case, "text": text})
        name = os.path.basename(os.path.normpath(folder))
        with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
            json.dump(cases, f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(f"{name}: {len(cases)} cases")


if __name__ == "__main__":
    main()
