"""Known answers for faithscope's audio masks: the sample ranges the paper's own masking script
computes (lovenya/Measuring-Faithfulness-of-CoT-Reasoning-LALMs,
data_processing/mask_audio_dataset.py: get_mask_range and get_scattered_mask_ranges).

The paper's repository is not part of faithscope; give the folder that holds
mask_audio_dataset.py (it imports numpy and soundfile):

    python tools/audio_mask_fixtures.py PATH/TO/data_processing > tests/fixtures/audio_masks.json
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
import mask_audio_dataset as paper  # noqa: E402

cases = []
for length in (16000, 16000 * 3 + 7, 16000 * 11 + 123, 4321):
    for item in ("sakura_animal_0001", "mmar-42", "x"):
        for seed in (42, 0, 7):
            for level in (10, 20, 30, 50, 70, 90, 100):
                for mode in ("start", "end", "random", "scattered"):
                    if mode == "scattered":
                        ranges = paper.get_scattered_mask_ranges(length, level, seed, item, sample_rate=16000)
                    else:
                        r = paper.get_mask_range(length, level, mode, seed, item)
                        ranges = [] if r == (0, 0) else [r]
                    cases.append({"len": length, "id": item, "seed": seed, "percent": level,
                                  "mode": mode, "ranges": [list(r) for r in ranges]})
json.dump({"source": "get_mask_range / get_scattered_mask_ranges of the paper's mask_audio_dataset.py",
           "rate": 16000, "cases": cases}, sys.stdout, indent=None)
print()
