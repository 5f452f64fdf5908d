"""congruity against the tools a researcher would otherwise use, side by side on the same data
and the same machine: TransformerLens (forward with a cache of every hook) and scikit-learn
(ridge predictivity). Run by `benches/peers/run` (which makes the Python environment); not part of
CI. Prints a table of min / median / max wall time over the runs and the peak memory of each side,
and checks that the results agree before timing anything.

    python benches/peers/compare.py --congruity target/release/congruity --work DIR [--runs N]

Timing: congruity as a whole process (start, load, compute, write), each run a fresh process;
the peers in-process (their import time is not counted). Runs alternate between the two sides.
Peak memory: congruity's maximum resident set (getrusage of the child); the peer's, the Python
process's after the runs (it includes torch's own libraries).
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import safetensors.numpy as stnp
import sklearn
import torch
import transformer_lens
from safetensors.torch import save_file
from sklearn.linear_model import RidgeCV
from sklearn.metrics import r2_score
from transformer_lens import HookedTransformer, HookedTransformerConfig

ALPHAS = [0.1, 1.0, 10.0]


def summary(xs):
    return min(xs), statistics.median(xs), max(xs)


def child_run(cmd):
    """Wall time and peak RSS (MiB, from GNU time) of one child process; raises on failure."""
    t = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "peak-kib %M"] + cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    kib = [l for l in out.stderr.splitlines() if l.startswith("peak-kib ")]
    peak = int(kib[-1].split()[1]) / 1024 if kib else float("nan")
    return wall, peak


def timed(f):
    """Seconds one call of `f` takes, in this process."""
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def repeat_run(cmd):
    """The last in-process forward time (`run --repeat`) and peak RSS (MiB) of one child."""
    r = subprocess.run(["/usr/bin/time", "-f", "peak-kib %M"] + cmd, capture_output=True, text=True, check=True)
    kib = [l for l in r.stderr.splitlines() if l.startswith("peak-kib ")]
    return json.loads(r.stdout)["forward_seconds"][-1], int(kib[-1].split()[1]) / 1024


def alternate(runs, peer, ours):
    """`runs` rounds of the peer (timed here) then congruity (`ours()` -> seconds, peak MiB):
    the peer's times, congruity's times, congruity's largest peak."""
    tl, cg, cg_peak = [], [], 0.0
    for _ in range(runs):
        tl.append(timed(peer))
        seconds, peak = ours()
        cg.append(seconds)
        cg_peak = max(cg_peak, peak)
    return tl, cg, cg_peak


def run_with_cache(model, tokens, **kwargs):
    with torch.no_grad():
        model.run_with_cache(tokens, **kwargs)


def model_dir(work, name, cfg_kwargs, seed):
    torch.manual_seed(seed)
    cfg = HookedTransformerConfig(**cfg_kwargs)
    model = HookedTransformer(cfg)
    model.eval()
    d = work / name
    d.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.named_parameters()}, str(d / "model.safetensors"))
    cfg_dict = {k: (str(v) if isinstance(v, torch.dtype) else v) for k, v in cfg.to_dict().items()}
    (d / "config.json").write_text(json.dumps(cfg_dict, default=str))
    return model, d


def forward_case(args, work, name, cfg_kwargs, batch, seq, rows):
    model, d = model_dir(work, name, cfg_kwargs, seed=0)
    gen = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, cfg_kwargs["d_vocab"], (batch, seq), generator=gen)
    (d / "tokens.json").write_text(json.dumps({"tokens": tokens.tolist()}))
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens)
    hooks = sorted(cache.keys())
    del cache
    out = work / f"{name}.safetensors"
    cmd = [args.congruity, "run", "--model", str(d), "--tokens", str(d / "tokens.json"), "--cache", str(out)]
    for h in hooks:
        cmd += ["--hooks", h]
    # Agreement first: the logits and every hook TransformerLens caches.
    child_run(cmd)
    got = stnp.load_file(str(out))
    diff = float(np.abs(got["logits"] - logits.numpy()).max())
    missing = [h for h in hooks if h not in got]
    if diff > 1e-4 or missing:
        raise SystemExit(f"{name}: logits differ by {diff} / missing hooks {missing}")
    # In memory on both sides: TL's run_with_cache in this process (warm: it ran above);
    # congruity's forward timed inside its own process (`run --repeat 2`, the second pass: the
    # model loaded once and the first pass run, as here), alternating.
    repeat = [args.congruity, "run", "--model", str(d), "--tokens", str(d / "tokens.json"), "--repeat", "2"]
    for h in hooks:
        repeat += ["--hooks", h]
    tl, cg, cg_peak = alternate(args.runs, lambda: run_with_cache(model, tokens), lambda: repeat_run(repeat))
    rows.append((f"{name}: forward + in-memory cache of all {len(hooks)} hooks TL caches (run_with_cache; congruity run --repeat)",
                 summary(tl), summary(cg), cg_peak, f"logits max |diff| {diff:.1e}"))
    tl, cg, cg_peak = alternate(args.runs, lambda: run_with_cache(model, tokens), lambda: child_run(cmd))
    rows.append((f"{name}: the same, congruity as a whole process (load, forward, write the cache to disk: run --cache)",
                 summary(tl), summary(cg), cg_peak, ""))
    if name == "gpt2":
        # Logits only.
        cmd_logits = [args.congruity, "run", "--model", str(d), "--tokens", str(d / "tokens.json"), "--repeat", "2"]

        def logits():
            with torch.no_grad():
                model(tokens)

        tl, cg, cg_peak = alternate(args.runs, logits, lambda: repeat_run(cmd_logits))
        rows.append((f"{name}: forward with logits, in memory (model(tokens); congruity run --repeat)", summary(tl), summary(cg), cg_peak, ""))
        # Hooks before the last layer, no logits: congruity stops early (TL: stop_at_layer).
        mid = cfg_kwargs["n_layers"] // 2
        hook = f"blocks.{mid - 1}.hook_resid_post"
        cmd_stop = [args.congruity, "run", "--model", str(d), "--tokens", str(d / "tokens.json"), "--repeat", "2", "--hooks", hook, "--no-logits"]
        tl, cg, cg_peak = alternate(args.runs, lambda: run_with_cache(model, tokens, names_filter=hook, stop_at_layer=mid),
                                    lambda: repeat_run(cmd_stop))
        rows.append((f"{name}: {hook} only, no logits, in memory (TL stop_at_layer={mid}; congruity run --repeat --no-logits)", summary(tl), summary(cg), cg_peak, ""))


def ridge_case(args, work, rows):
    rng = np.random.default_rng(0)
    n, d = 900, 704
    lat = rng.normal(size=(n, 64))
    x = np.tanh(lat @ rng.normal(size=(64, d)) / 8) + 0.05 * rng.normal(size=(n, d))
    y = np.tanh(lat @ rng.normal(size=(64, d)) / 8) + 0.05 * rng.normal(size=(n, d))
    perm = rng.permutation(n)
    test, train = np.sort(perm[: n // 10]), np.sort(perm[n // 10:])
    f = work / "ridge.safetensors"
    stnp.save_file({"x": x, "y": y, "train_idx": train.astype(np.int64), "test_idx": test.astype(np.int64)}, str(f))

    def sk():
        out = {}
        for name, a, b in [("x->y", x, y), ("y->x", y, x)]:
            m = RidgeCV(alphas=ALPHAS, fit_intercept=True).fit(a[train], b[train])
            out[name] = r2_score(b[test], m.predict(a[test]), multioutput="uniform_average")
        return out

    cmd = [args.congruity, "similarity", str(f), "--measure", "ridge-r2", "--json"]
    want = sk()
    got = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    for k in want:
        diff = abs(got[f"ridge-r2({k})"]["r2_test_uniform_average"] - want[k])
        if diff > 1e-8:
            raise SystemExit(f"ridge {k}: R² differs by {diff}")
    sk_t, cg, peak = alternate(args.runs, sk, lambda: child_run(cmd))
    rows.append(("ridge predictivity 900 × 704 → 704, both directions (scikit-learn RidgeCV in memory; congruity similarity, whole process)",
                 summary(sk_t), summary(cg), peak, "R² equal to 1e-8"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--congruity", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--only", action="append", choices=["toy", "gpt2", "ridge"],
                   help="run only these cases (repeatable); all by default")
    p.add_argument("--scaling", action="store_true",
                   help="instead of the comparison, how cost grows with batch size and pool size (scaling.py)")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.scaling:
        import scaling
        scaling.forward_scaling(args, work)
        scaling.main_loop_scaling(args, work)
        return 0
    rows = []
    only = set(args.only or ["toy", "gpt2", "ridge"])
    if "toy" in only:
        forward_case(args, work, "toy", dict(n_layers=2, d_model=64, n_heads=4, d_head=16, d_mlp=256, d_vocab=32, n_ctx=16, act_fn="relu", normalization_type="LN"), 1000, 11, rows)
    if "gpt2" in only:
        forward_case(args, work, "gpt2", dict(n_layers=12, d_model=768, n_heads=12, d_head=64, d_mlp=3072, d_vocab=50257, n_ctx=1024, act_fn="gelu_new", normalization_type="LN"), 8, 128, rows)
    if "ridge" in only:
        ridge_case(args, work, rows)
    peer_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), transformer-lens {transformer_lens.__version__ if hasattr(transformer_lens, '__version__') else '3.9.0'}, scikit-learn {sklearn.__version__}, numpy {np.__version__}")
    print(f"{args.runs} runs each, alternating; seconds min / median / max; peer process peak RSS {peer_peak:.0f} MiB")
    print()
    print("| case | peer | congruity | ratio (peer / congruity, medians) | congruity peak RSS | check |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, peer, cg, peak, check in rows:
        fmt = lambda s: f"{s[0]:.3f} / {s[1]:.3f} / {s[2]:.3f}"
        print(f"| {name} | {fmt(peer)} | {fmt(cg)} | {peer[1] / cg[1]:.2f}× | {peak:.0f} MiB | {check} |")


if __name__ == "__main__":
    sys.exit(main())
