"""How congruity's cost grows with work: the forward with batch size (beside TransformerLens on the
same model and tokens) and the paper's main loop on precomputed representations with pool size.
Run by `benches/peers/run --scaling` (after the comparison, in the same environment); the printed
tables are committed in docs/performance.md. Not part of CI."""
import json
import subprocess
import time
from pathlib import Path

import numpy as np
import safetensors.numpy as stnp
import torch

from compare import model_dir, run_with_cache, timed


def forward_scaling(args, work):
    cfg = dict(n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=256, d_vocab=32, n_ctx=16,
               act_fn="relu", normalization_type="LN")
    model, d = model_dir(work, "toy", cfg, seed=0)
    print("forward with every hook TransformerLens caches, in memory (toy model, seq 11): seconds, medians of", args.runs)
    print("| batch | TransformerLens | congruity | ratio | congruity per 1000 sequences |")
    print("| --- | --- | --- | --- | --- |")
    for batch in [125, 250, 500, 1000, 2000, 4000]:
        gen = torch.Generator().manual_seed(1)
        tokens = torch.randint(0, cfg["d_vocab"], (batch, 11), generator=gen)
        tok = work / f"tokens-{batch}.json"
        tok.write_text(json.dumps({"tokens": tokens.tolist()}))
        with torch.no_grad():
            _, cache = model.run_with_cache(tokens)
        hooks = sorted(cache.keys())
        del cache
        cmd = [args.congruity, "run", "--model", str(d), "--tokens", str(tok), "--repeat", str(args.runs + 1)]
        for h in hooks:
            cmd += ["--hooks", h]
        tl = [timed(lambda: run_with_cache(model, tokens)) for _ in range(args.runs)]
        cg = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["forward_seconds"][1:]
        tl_m, cg_m = float(np.median(tl)), float(np.median(cg))
        print(f"| {batch} | {tl_m:.4f} | {cg_m:.4f} | {tl_m / cg_m:.2f}× | {cg_m / batch * 1000:.4f} |")


def main_loop_scaling(args, work):
    print()
    print("main loop on precomputed representations (6 pools × 5 implementations, d 704, 40 bootstraps × 20 draws): whole command, seconds")
    print("| n (rows per representation) | selectivity + transfer, wall | per row |")
    print("| --- | --- | --- |")
    for n in [250, 500, 1000]:
        rng = np.random.default_rng(n)
        tensors = {}
        lat = rng.normal(size=(n, 96))
        for pool in range(6):
            # Pools share part of a latent space, implementations differ by a random map + noise.
            mix = rng.normal(size=(96, 704)) / 10
            for impl in range(5):
                rot = rng.normal(size=(704, 704)) / np.sqrt(704)
                x = np.tanh(lat[:, : 48 + 8 * pool] @ mix[: 48 + 8 * pool]) @ rot + 0.05 * rng.normal(size=(n, 704))
                tensors[f"p{pool}/{impl}"] = x.astype(np.float32)
        f = work / f"pools-{n}.safetensors"
        stnp.save_file(tensors, str(f))
        cmd = [args.congruity, "compare", "--representations", str(f), "--seed", "1",
               "--bootstraps", "40", "--draws", "20", "--json"]
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t
        print(f"| {n} | {wall:.1f} | {wall / n * 1000:.1f} ms per 1000 rows |")
