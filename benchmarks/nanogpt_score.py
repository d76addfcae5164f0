"""Score a nanoGPT checkpoint as benchmarks/_scoring.windows_loss scores charlm's models.

Run by benchmarks/nanogpt.py with nanoGPT's own Python (the one with torch), never imported by
charlm: ``python nanogpt_score.py CHECKOUT OUT_DIR META_PKL < val.txt`` prints one JSON object,
the mean nats per character over non-overlapping 64-character windows of the text on stdin,
each window its own context, every character after its first scored (the last, shorter window
too), and how many characters the vocabulary did not hold.
"""

import json
import math
import pickle
import sys

import torch
import torch.nn.functional as F

WINDOW, BATCH = 64, 256


def main() -> None:
    checkout, out_dir, meta_path = sys.argv[1:4]
    sys.path.insert(0, checkout)
    from model import GPT, GPTConfig  # nanoGPT's own model.py

    ckpt = torch.load(f"{out_dir}/ckpt.pt", map_location="cpu")
    model = GPT(GPTConfig(**ckpt["model_args"]))
    state = {k.removeprefix("_orig_mod."): v for k, v in ckpt["model"].items()}
    model.load_state_dict(state)
    model.eval()
    with open(meta_path, "rb") as f:
        stoi = pickle.load(f)["stoi"]
    text = sys.stdin.read()
    unknown = sum(c not in stoi for c in text)
    ids = torch.tensor([stoi.get(c, 0) for c in text], dtype=torch.long)
    n_full = len(ids) // WINDOW
    windows = list(ids[: n_full * WINDOW].view(n_full, WINDOW).split(BATCH))
    if len(ids) - n_full * WINDOW >= 2:
        windows.append(ids[n_full * WINDOW :][None])
    total, count = 0.0, 0
    with torch.no_grad():
        for w in windows:
            x, y = w[:, :-1].contiguous(), w[:, 1:].contiguous()
            logits, _ = model(x, y)  # targets given: logits at every position
            nats = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"
            )
            total += float(nats)
            count += y.numel()
    print(
        json.dumps(
            {
                "nats_per_char": total / count,
                "bits_per_char": total / count / math.log(2),
                "chars": count,
                "windows": len(ids) // WINDOW + (len(ids) % WINDOW >= 2),
                "iter_num": int(ckpt["iter_num"]),
                "unknown": unknown,
            }
        )
    )


if __name__ == "__main__":
    main()
