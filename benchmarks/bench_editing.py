#!/usr/bin/env python
"""Text-guided molecule editing benchmark (MoleculeSTM / FineMolTex protocol, motif-level editor).

N molecules (default 200) drawn with a fixed seed from ZINC250k (PS-VAE test split) are edited towards every prompt
of ``prompts.json`` by the same motif-level search with three scorers, in one run:

(a) ``random``: a seeded random number per molecule, ignoring the text (what the search alone achieves);
(b) ``contrastive``: a model pre-trained with the contrastive loss only;
(c) ``full``: a model pre-trained with all FineMolTex losses.

All three share one generator (same motif library, from the full model's vocabulary, and the same seeded draw of
edits per molecule) and the same lambdas, beam width and steps. Text scores are standardised per source
(``--text_scores zscore``, the default here) so that lambda weighs the Tanimoto term equally for every scorer: with
raw scores a random number in [-1, 1] would swamp the Tanimoto term that decides among a weak model's candidates
(cosine similarities a few hundredths apart), and the comparison would measure scales rather than text. Reported per prompt: hit ratio (%) loose
(strict inequality) and strict (ChatDrug thresholds, where defined); a source is a hit if any lambda succeeds;
for 501-504 sources already satisfying the prompt are excluded. Prompts without an offline oracle (109-111,
401-406) are listed as not evaluable and not run. Also: validity of the edits (re-parsed by RDKit), uniqueness
(distinct edited molecules among the sources' edits, per prompt and lambda, averaged), mean Tanimoto to the source,
and wall time per molecule (all evaluable prompts and lambdas; the generator's proposals are cached across
prompts and scorers, so the first scorer run pays for most of them: its share is reported separately).
"One λ at a time" rows give each lambda's hit ratio on its own, averaged over the lambdas, next to the number of
distinct edits per source: the any-lambda rule rewards a scorer whose edits differ between lambdas (a random
scorer's near-equal top scores are easily reordered by the Tanimoto term; a model's are not), so these rows show
what the text does at equal chances. Whether one scorer beats another is judged by a paired bootstrap over the
sources: the difference of group-mean loose hit ratios with a 95% interval (200 sources give intervals of several
points on a 4-prompt group).

    python benchmarks/bench_editing.py --full /path/full --contrastive /path/contrastive --output_json out.json

Defaults (one step with 96 candidate edits per source, lambdas 0, 0.5, 1) are sized to finish in about half an
hour on 2 shared CPU cores: there the small-preset graph tower embeds roughly 70-150 molecules per second, and the
one-step candidates are shared by all prompts and lambdas (each is embedded once per model), whereas every
molecule reached in a second step is new for each prompt (measured: about 12k embeddings per prompt for 50 sources
with beam 2), which would take hours for 200 sources x 24 prompts x 2 models. Use ``--num_steps 2`` on a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _fmt(x, digits=1):
    return "—" if x is None else f"{x:.{digits}f}"


OPPOSITE_PROMPTS = ((101, 102, "MolLogP"), (104, 103, "qed"), (105, 106, "TPSA"))  # (lowers it, raises it, property)
MOTIF_PROMPTS = (501, 502, 503, 504)


def text_sensitivity(edits_by, sources, criteria, prompts, names) -> dict:
    """Does the text change the edit? Two paired tests on the same sources, lambdas and candidates.

    * Opposite prompts (soluble / insoluble, ...): share of (source, lambda) whose edit for the "lower" prompt has a
      lower property than its edit for the "raise" prompt (right), higher (wrong), or equal (same: mostly the same
      edit). A scorer that ignores the text makes the same edit for both: 100% same.
    * Motif prompts (501-504): share of edits that have the asked motif when it is asked for, against the mean share
      when one of the other three motifs is asked for (same sources, those without the motif).
    """
    from modeling_finemoltex.editing_finemoltex import find_criterion
    from modeling_finemoltex.chemistry_finemoltex import molecule_descriptors

    text_of = {p["id"]: p["text"] for p in prompts}
    rows, data = [], {}
    for low, high, prop in OPPOSITE_PROMPTS:
        if low not in text_of or high not in text_of:
            continue
        cells = {}
        for n in names:
            right = wrong = same = 0
            a, b = edits_by.get(n, {}).get(low, {}), edits_by.get(n, {}).get(high, {})
            for i in a:
                for lam, edit_low in a[i].items():
                    edit_high = b.get(i, {}).get(lam)
                    if edit_high is None:
                        continue
                    x = molecule_descriptors(edit_low, [prop])[prop]
                    y = molecule_descriptors(edit_high, [prop])[prop]
                    right, wrong, same = right + (x < y), wrong + (x > y), same + (x == y)
            total = max(right + wrong + same, 1)
            data[f"{low}_vs_{high}"] = data.get(f"{low}_vs_{high}", {})
            data[f"{low}_vs_{high}"][n] = {"right": 100 * right / total, "wrong": 100 * wrong / total, "same": 100 * same / total}
            cells[n] = f"{100 * right / total:.0f} / {100 * wrong / total:.0f} / {100 * same / total:.0f}"
        rows.append((f"text: {prop} of edits, {low} vs {high} (% right / wrong / same)", cells))
    motif = [m for m in MOTIF_PROMPTS if m in text_of]
    if len(motif) > 1:
        cells = {}
        for n in names:
            own_rate, other_rate = [], []
            for m in motif:
                criterion = find_criterion(text_of[m], criteria)
                eligible = [i for i, s in enumerate(sources) if not criterion.satisfied_by(s)]

                def rate(prompt_id):
                    edits = [e for i in eligible for e in edits_by[n][prompt_id].get(i, {}).values()]
                    return 100.0 * sum(criterion.satisfied_by(e) for e in edits) / max(len(edits), 1)

                own_rate.append(rate(m))
                other_rate.append(sum(rate(o) for o in motif if o != m) / (len(motif) - 1))
            own, other = sum(own_rate) / len(own_rate), sum(other_rate) / len(other_rate)
            data.setdefault("motif_specificity", {})[n] = {"asked": own, "other_motif_asked": other,
                                                           "per_prompt_asked": own_rate, "per_prompt_other": other_rate}
            cells[n] = f"{own:.1f} / {other:.1f}"
        rows.append(("text: edits with the motif, asked / another motif asked (%, 501–504)", cells))
    return {"rows": rows, "data": data}


def paired_bootstrap(hits: dict, pairs, groups, num_samples: int = 2000, seed: int = 0) -> dict:
    """Confidence intervals for differences of mean loose hit ratios between scorers, resampling the sources.

    Args:
        hits: scorer -> prompt id -> (num_sources,) float array, 1.0 hit, 0.0 miss, NaN for a source not counted
            (invalid, or excluded because it already satisfies the prompt).
        pairs: (a, b) scorer names; the difference reported is a - b.
        groups: label -> prompt ids averaged (the mean of per-prompt hit ratios, as in the table).
    The same draw of sources (with replacement) serves every prompt, group and pair, so that the differences are
    paired and correlations between prompts are kept.
    -> label -> "a - b" -> {"difference", "low", "high"} (percentage points; 95% percentile interval).
    """
    first = next(iter(next(iter(hits.values())).values()))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(first), size=(num_samples, len(first)))
    weights = np.stack([np.bincount(d, minlength=len(first)) for d in draws]).astype(np.float64)  # (S, N)
    weights = np.vstack([np.ones(len(first)), weights])  # row 0: the observed sample

    def group_means(name, ids):
        ratios = []
        for i in ids:
            h = hits[name][i]
            counted = ~np.isnan(h)
            with np.errstate(invalid="ignore", divide="ignore"):
                ratios.append(100.0 * (weights @ np.where(counted, h, 0.0)) / (weights @ counted))
        return np.nanmean(np.stack(ratios), axis=0)  # (1 + S,)

    out = {}
    for label, ids in groups.items():
        ids = [i for i in ids if all(i in hits[n] for n in hits)]
        if not ids:
            continue
        for a, b in pairs:
            if a not in hits or b not in hits:
                continue
            diff = group_means(a, ids) - group_means(b, ids)
            low, high = np.nanpercentile(diff[1:], [2.5, 97.5])
            out.setdefault(label, {})[f"{a} - {b}"] = {"difference": float(diff[0]), "low": float(low), "high": float(high)}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = REPO.parent / "shared" / "data"
    parser.add_argument("--full", required=True, help="full FineMolTex checkpoint folder")
    parser.add_argument("--contrastive", default=None, help="contrastive-only checkpoint folder (row left out if absent)")
    parser.add_argument("--prompts", default=str(data / "molecule_editing" / "prompts.json"))
    parser.add_argument("--molecules", default=str(data / "zinc" / "zinc250k_psvae_test.txt"))
    parser.add_argument("--num_molecules", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="seed of the molecule draw, the edit draw and the random scorer")
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--beam_width", type=int, default=2)
    parser.add_argument("--num_steps", type=int, default=1)
    parser.add_argument("--max_candidates", type=int, default=96)
    parser.add_argument("--library_size", type=int, default=48)
    parser.add_argument("--attachment", default="brics", choices=["brics", "valence"])
    parser.add_argument("--text_scores", default="zscore", choices=["raw", "zscore"],
                        help="zscore (default): each scorer's similarities standardised per source, so that lambda weighs "
                             "Tanimoto the same for the random scorer (spread 1) and a weak model (spread ~0.07)")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None)
    parser.add_argument("--prompt_ids", type=int, nargs="*", default=None, help="run only these prompts (development)")
    parser.add_argument("--output_json", default=None)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    import modeling_finemoltex  # noqa: F401
    from modeling_finemoltex.editing_finemoltex import (
        FineMolTexModelScorer,
        FineMolTexMoleculeEditor,
        FineMolTexMotifEditGenerator,
        FineMolTexMotifLibrary,
        FineMolTexRandomScorer,
        evaluate_edits,
        find_criterion,
        load_edit_criteria,
        read_smiles_file,
    )
    from modeling_finemoltex.chemistry_finemoltex import is_valid_smiles

    pool = read_smiles_file(args.molecules)
    sources = random.Random(args.seed).sample(pool, args.num_molecules)
    prompts = json.loads(Path(args.prompts).read_text())["prompts"]
    criteria = load_edit_criteria(args.prompts)
    if args.prompt_ids:
        prompts = [p for p in prompts if p["id"] in set(args.prompt_ids)]

    scorers = {"random": FineMolTexRandomScorer(seed=args.seed)}
    load_start = time.perf_counter()
    if args.contrastive and Path(args.contrastive).is_dir():
        scorers["contrastive"] = FineMolTexModelScorer.from_pretrained(args.contrastive, batch_size=args.batch_size, device=args.device)
    elif args.contrastive:
        print(f"WARNING: contrastive checkpoint {args.contrastive} not found; its column is left out", file=sys.stderr)
    scorers["full"] = FineMolTexModelScorer.from_pretrained(args.full, batch_size=args.batch_size, device=args.device)
    print(f"loaded models in {time.perf_counter() - load_start:.1f}s", file=sys.stderr)
    vocab = scorers["full"].processor.graph_tokenizer.motif_vocab
    library = FineMolTexMotifLibrary.from_vocab(vocab, max_size=args.library_size)
    generator = FineMolTexMotifEditGenerator(library, max_candidates=args.max_candidates, attachment=args.attachment, seed=args.seed)

    table: dict[int, dict] = {}
    quality: dict[str, dict] = {}
    edits_by: dict[str, dict[int, dict[int, dict[float, str]]]] = {}  # scorer -> prompt -> source -> lambda -> edit
    per_source_hits: dict[str, dict[int, list[float]]] = {}  # scorer -> prompt -> source -> 1 hit / 0 / NaN not counted
    for name, scorer in scorers.items():
        editor = FineMolTexMoleculeEditor(generator, scorer, lambdas=args.lambdas, beam_width=args.beam_width,
                                          num_steps=args.num_steps, text_scores=args.text_scores)
        wall, generation_before = 0.0, generator.stats["seconds"]
        valid = returned = 0
        tanimoto_sum = 0.0
        uniqueness: list[float] = []
        no_edit = invalid = 0
        for p in prompts:
            criterion = find_criterion(p["text"], criteria)
            row = table.setdefault(p["id"], {"id": p["id"], "text": p["text"], "group": p["group"]})
            if criterion is None or not criterion.evaluable:
                row["evaluable"] = False
                continue
            row["evaluable"] = True
            start = time.perf_counter()
            output = editor.edit(sources, p["text"])
            wall += time.perf_counter() - start
            ev = evaluate_edits(output, criterion)
            row[name] = {
                "loose": ev.hit_ratio_loose, "strict": ev.hit_ratio_strict, "hits_loose": ev.hits_loose,
                "hits_strict": ev.hits_strict, "num_sources": ev.num_sources, "num_excluded": ev.num_excluded,
            }
            row["num_sources"] = ev.num_sources
            per_source_hits.setdefault(name, {})[p["id"]] = [
                float(ev.per_source[i]["loose"]) if i in ev.per_source else float("nan") for i in range(len(sources))
            ]
            # diagnostics of the any-lambda rule: loose hit ratio of each lambda alone, distinct edits per source
            counted = [r for r in output.results if r.index in ev.per_source]
            row[name]["loose_per_lambda"] = [
                100.0 * sum(bool(r.edits.get(lam)) and bool(criterion.holds(r.canonical_source, r.edits[lam].smiles, "loose"))
                            for r in counted) / max(len(counted), 1)
                for lam in editor.lambdas
            ]
            row[name]["distinct_edits"] = [len({e.smiles for e in r.edits.values() if e is not None}) for r in counted]
            no_edit, invalid = output.num_no_edit, output.num_invalid_sources
            edits_by.setdefault(name, {})[p["id"]] = {
                r.index: {lam: e.smiles for lam, e in r.edits.items() if e is not None} for r in output.results
            }
            for lam in editor.lambdas:
                edits = [r.edits.get(lam) for r in output.results if r.status == "edited"]
                edits = [e for e in edits if e is not None]
                if edits:
                    uniqueness.append(100.0 * len({e.smiles for e in edits}) / len(edits))
                for e in edits:
                    returned += 1
                    valid += is_valid_smiles(e.smiles)
                    tanimoto_sum += e.source_similarity
            print(f"[{name}] {p['id']} loose {_fmt(ev.hit_ratio_loose)} strict {_fmt(ev.hit_ratio_strict)} "
                  f"({output.seconds:.1f}s)", file=sys.stderr, flush=True)
        generation = generator.stats["seconds"] - generation_before
        quality[name] = {
            "validity": 100.0 * valid / max(returned, 1),
            "num_edits": returned,
            "uniqueness": sum(uniqueness) / max(len(uniqueness), 1),
            "mean_tanimoto_to_source": tanimoto_sum / max(returned, 1),
            "seconds": wall,
            "seconds_per_molecule": wall / len(sources),
            "generation_seconds": generation,
            "sources_without_edit": no_edit,
            "invalid_sources": invalid,
            "molecules_embedded": getattr(scorer, "num_embedded", None),
        }

    names = list(scorers)
    header = "| id | prompt | n | " + " | ".join(f"{n} loose | {n} strict" for n in names) + " |"
    lines = [header, "|" + "---|" * (3 + 2 * len(names))]
    evaluable = [r for r in table.values() if r.get("evaluable")]
    for r in table.values():
        if not r.get("evaluable"):
            lines.append(f"| {r['id']} | {r['text'][:60]} | – | " + " | ".join("n/e | n/e" for _ in names) + " |")
            continue
        cells = " | ".join(f"{_fmt(r[n]['loose'])} | {_fmt(r[n]['strict'])}" for n in names)
        lines.append(f"| {r['id']} | {r['text'][:60]} | {r['num_sources']} | {cells} |")

    def mean(rows, n, key):
        vals = [r[n][key] for r in rows if r[n][key] is not None]
        return sum(vals) / len(vals) if vals else None

    groups = [("mean, all evaluable", evaluable),
              ("mean, 101–108", [r for r in evaluable if 101 <= r["id"] <= 108]),
              ("mean, 201–206", [r for r in evaluable if 201 <= r["id"] <= 206]),
              ("mean, 301–307", [r for r in evaluable if 301 <= r["id"] <= 307]),
              ("mean, 501–504", [r for r in evaluable if 501 <= r["id"] <= 504])]
    summary = {}
    for label, rows in groups:
        if not rows:
            continue
        summary[label] = {n: {"loose": mean(rows, n, "loose"), "strict": mean(rows, n, "strict")} for n in names}
        cells = " | ".join(f"**{_fmt(summary[label][n]['loose'])}** | **{_fmt(summary[label][n]['strict'])}**" for n in names)
        lines.append(f"| | {label} | | {cells} |")
    for label, rows in groups:  # the same means, each lambda on its own (no any-lambda rule), averaged over lambdas
        if rows:
            for n in names:
                per_lambda = [sum(r[n]["loose_per_lambda"][k] for r in rows) / len(rows) for k in range(len(args.lambdas))]
                summary[label][n]["loose_one_lambda"] = sum(per_lambda) / len(per_lambda)
            cells = " | ".join(f"{_fmt(summary[label][n]['loose_one_lambda'])} | " for n in names)
            lines.append(f"| | {label.replace('mean', 'one λ at a time: mean loose')} | | {cells}|")
    for n in names:
        counts = [c for r in evaluable for c in r[n]["distinct_edits"]]
        quality[n]["distinct_edits_per_source"] = sum(counts) / max(len(counts), 1)
    for key, label, digits in [("validity", "validity of edits (%)", 1), ("uniqueness", "uniqueness (%)", 1),
                               ("mean_tanimoto_to_source", "mean Tanimoto to source", 3),
                               ("distinct_edits_per_source", f"distinct edits per source over the {len(args.lambdas)} λ", 2),
                               ("seconds_per_molecule", "time per molecule (s, all prompts & λ)", 2),
                               ("generation_seconds", "of which generating edits (s, total)", 1)]:
        cells = " | ".join(f"{_fmt(quality[n][key], digits)} | " for n in names)
        lines.append(f"| | {label} | | {cells}|")
    sensitivity = text_sensitivity(edits_by, sources, criteria, prompts, names)
    for label, cells in sensitivity["rows"]:
        lines.append(f"| | {label} | | " + " | ".join(f"{cells[n]} | " for n in names) + "|")
    pairs = [(a, b) for a, b in (("full", "contrastive"), ("full", "random"), ("contrastive", "random")) if a in names and b in names]
    bootstrap = paired_bootstrap(
        {n: {i: np.array(v) for i, v in per_source_hits[n].items()} for n in names},
        pairs, {label: [r["id"] for r in rows] for label, rows in groups if rows}, seed=args.seed,
    )
    lines += ["", "Differences of mean loose hit ratio (percentage points), 95% paired bootstrap interval over the "
              "sources (2,000 resamples):", "", "| group | " + " | ".join(f"{a} − {b}" for a, b in pairs) + " |",
              "|---|" + "---|" * len(pairs)]
    for label, cells in bootstrap.items():
        lines.append(f"| {label.removeprefix('mean, ')} | " + " | ".join(
            f"{c['difference']:+.1f} [{c['low']:+.1f}, {c['high']:+.1f}]" for c in cells.values()) + " |")
    markdown = "\n".join(lines)
    settings = {k: v for k, v in vars(args).items()}
    settings.update(num_sources=len(sources), library=library.smiles, torch_threads=torch.get_num_threads())
    print(markdown)
    print(f"\nsettings: {json.dumps({k: settings[k] for k in ('num_molecules', 'seed', 'lambdas', 'beam_width', 'num_steps', 'max_candidates', 'library_size', 'attachment', 'text_scores')})}")
    print(f"generator: {generator.stats}")
    if args.output_json:
        Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output_json).write_text(json.dumps(
            {"settings": settings, "prompts": list(table.values()), "summary": summary, "quality": quality,
             "text_sensitivity": sensitivity["data"], "bootstrap": bootstrap, "edits": edits_by,
             "generator": generator.stats, "markdown": markdown}, indent=1, default=str) + "\n")
    return {"prompts": table, "summary": summary, "quality": quality, "bootstrap": bootstrap, "markdown": markdown}


if __name__ == "__main__":
    main()
