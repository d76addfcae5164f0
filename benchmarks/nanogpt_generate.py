"""Time nanoGPT's own generation (``GPT.generate``, what its sample.py calls) on the baby-GPT
shape; run by benchmarks/bench_gpt.py with nanoGPT's own Python (the one with torch), never
imported by charlm: ``python nanogpt_generate.py CHECKOUT CHARS ROUNDS`` prints one JSON list,
the seconds of each round of ``CHARS`` characters from a 6-character prefix, one stream. The
weights are random (timing does not depend on them); ``generate`` re-runs the model on the last
``block_size`` characters for every new one.
"""

import json
import sys
import time

import torch


def main() -> None:
    checkout, chars, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sys.path.insert(0, checkout)
    from model import GPT, GPTConfig  # nanoGPT's own model.py

    torch.manual_seed(0)
    shape = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, vocab_size=65, dropout=0.0)
    model = GPT(GPTConfig(**shape, bias=False)).eval()
    prefix = torch.ones((1, 6), dtype=torch.long)
    times = []
    with torch.no_grad():
        model.generate(prefix, 70)  # warm-up past the block size
        for _ in range(rounds):
            t0 = time.perf_counter()
            model.generate(prefix, chars)
            times.append(time.perf_counter() - t0)
    print(json.dumps(times))


if __name__ == "__main__":
    main()
