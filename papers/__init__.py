"""papers: the paper's figures and tables (arXiv 2506.15707, NeurIPS 2025) beside our results.

- `papers.data`: the paper's numbers, checked on load — `fig3()` (Fig. 3, p.7: accuracy and pass
  rate), `fig4()` (Fig. 4, p.9: MATH500 accuracy by level), `table1()` (Table 1, p.8: FLOPs,
  latency, accuracy) and `findings()` (its stated findings); provenance in papers/data/README.md.
- `papers.compare`: our summary rows against them — `differences`, `overlay`, `overlay_levels`
  and `verdicts` (holds / holds-approximately / fails / inconclusive, with declared tolerances).
- `papers.table1`: Table 1's FLOPs and latency ratios (REBASE@256 / DORA@64) from the tokens a
  simulated search counts, under a stated latency model.
- `papers.reproduce`: what `dora paper` runs and writes (each cell's search in its own fitted
  world, or a text backend's one cell; reuse of --out, Fig. 4's levels as difficulty strata of
  p(root), the rows, differences and verdicts per part).
- `papers.fit`: a first fitted world: the difficulty prior fitted to one cell's baseline curves
  by importance-weighted simulation, and DORA's curve predicted, held out
  (`python -m papers.fit`).
- `papers.traps`: whether PRM traps (`dora_jax.world`'s trap_rate) explain the flattening of the
  paper's guided searches on MATH500, on one cell with (a, b) refitted (`python -m papers.traps`).
"""
