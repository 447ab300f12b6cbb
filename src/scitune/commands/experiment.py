"""`scitune experiment ablation`: does stage 1 help stage 2, and when? Both arms over seeds and
stage-2 data fractions (and presets), each cell an ordinary run, resumable; intervals, paired
tests, a plot and a report."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from scitune.cli import add_command, positive_int


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "experiment", help="Experiments over many runs (the stage-1 ablation with seeds and intervals).",
        description="Experiments over many runs (the stage-1 ablation with seeds and intervals).",
    )
    commands = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    ablation = add_command(
        commands, "ablation",
        "Stage 2 with and without stage 1 over seeds and stage-2 data fractions: paired tests, intervals, a plot.",
        "scitune experiment ablation --quick --out runs/ablation-quick   (about 10 minutes on 2 cores)\n"
        "  scitune experiment ablation --out runs/ablation --seeds 0,1,2 --fractions 0.1,0.3,1\n"
        "  scitune experiment ablation --quick --out runs/mine --stage1 my-scicap --stage2 my-scienceqa\n"
        "  scitune experiment ablation --out runs/sizes --recipes a.yaml,b.yaml --stage2-test sqa_test.json\n"
        "  (rerun the same command to continue a stopped grid; done cells are kept)",
    )
    ablation.add_argument("--out", required=True, help="the experiment folder (a rerun resumes it)")
    ablation.add_argument("--quick", action="store_true",
                          help="small corpus, seeds 0,1, fractions 0.3,1 (about 10 minutes on 2 cores)")
    ablation.add_argument("--seeds", help="comma-separated training seeds (default: 0,1 quick, 0,1,2 full)")
    ablation.add_argument("--fractions", help="comma-separated stage-2 data fractions in (0, 1] (default: 0.3,1 quick, 0.1,0.3,1 full)")
    ablation.add_argument("--recipes", help="comma-separated training recipes instead of presets, each with an align and an "
                          "instruct stage: their model and settings, their stages' data, scored on --stage2-test")
    ablation.add_argument("--presets", default=None,
                          help="comma-separated model presets: tiny, smollm2-135m, the tiny families (tiny-qwen2.5-vl, "
                          "tiny-gemma3, ...: scitune.model.presets.PRESETS; another name is refused with the list) (default tiny)")
    ablation.add_argument("--corpus", help="an existing corpus folder in the built-in layout (scicap/ + scienceqa/) instead of building one")
    ablation.add_argument("--stage1", help="your own stage-1 data instead of the corpus' (with --stage2): a SciCap folder "
                          "(train.json + images/) or LLaVA conversations (.json/.jsonl)")
    ablation.add_argument("--stage1-images", help="with a --stage1 conversation file: its image folder (default: the file's folder)")
    ablation.add_argument("--stage2", help="your own stage-2 data (with --stage1): a ScienceQA release folder (problems.json, "
                          "pid_splits.json, images/; its test split is the test) or LLaVA conversations with --stage2-test")
    ablation.add_argument("--stage2-test", help="with a --stage2 conversation file or --recipes: the test, an answer key with "
                          "lettered options (as scitune eval scienceqa --answer-key reads)")
    ablation.add_argument("--stage2-images", help="with a --stage2 conversation file: its image folder (default: the file's folder)")
    ablation.add_argument("--stage2-test-images", help="the image folder of --stage2-test (default: the stage-2 training images' "
                          "folder: --stage2-images, or with --recipes the instruct stage's images)")
    ablation.add_argument("--data-seed", type=int, default=0, help="corpus, instruction files and subsets (default 0)")
    ablation.add_argument("--resamples", type=positive_int, default=2000, help="paired bootstrap resamples (default 2000)")
    ablation.add_argument("--report-only", action="store_true",
                          help="run no cell: analyse the cells done so far (a stopped or running grid) and write the report")
    ablation.set_defaults(func=run_ablation)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_ablation(args: argparse.Namespace) -> int:
    from scitune.errors import ScituneError
    from scitune.experiment.grid import MODES, Plan, claim_experiment, parse_list, read_results, run_grid
    from scitune.experiment.report import write_outputs
    from scitune.experiment.sources import UserData, read_user_data, recipe_label, recipes_data

    mode = MODES["quick" if args.quick else "full"]
    user_data, recipes = None, ()
    if args.recipes:
        if args.presets or args.corpus or args.stage1 or args.stage2 or args.stage1_images or args.stage2_images:
            raise ScituneError("--recipes: the recipes give the model and the data; leave out --presets, --corpus, --stage1, "
                               "--stage1-images, --stage2 and --stage2-images")
        recipes = parse_list(args.recipes, str, "--recipes")
        user_data = recipes_data(recipes, args.stage2_test, args.stage2_test_images)
        user_data.check()
    elif args.stage1 or args.stage2:
        if not (args.stage1 and args.stage2):
            raise ScituneError("--stage1 and --stage2 go together: give both (or neither, for the built-in corpus or --corpus)")
        user_data = UserData(args.stage1, args.stage2, args.stage2_test, args.stage1_images, args.stage2_images,
                             args.stage2_test_images)
        user_data.check()
    elif args.stage1_images or args.stage2_images or args.stage2_test or args.stage2_test_images:
        raise ScituneError("--stage1-images/--stage2-images/--stage2-test/--stage2-test-images: only with --stage1 and --stage2 "
                           "(or --recipes)")
    plan = Plan(
        presets=tuple(map(recipe_label, recipes)) or parse_list(args.presets or "tiny", str, "--presets"),
        seeds=parse_list(args.seeds, int, "--seeds") if args.seeds else mode["seeds"],
        fractions=parse_list(args.fractions, float, "--fractions") if args.fractions else mode["fractions"],
        size=mode["size"], data_seed=args.data_seed, corpus=args.corpus, user_data=user_data, recipes=recipes,
    )
    if args.report_only:
        root = Path(args.out)
        if not (root / "plan.json").is_file():
            raise ScituneError(f"--out {root}: holds no experiment to report on")
        if json.loads((root / "plan.json").read_text(encoding="utf-8")) != plan.identity():
            raise ScituneError(f"--out {root}: was run with other settings (see its plan.json); give the same "
                               "--quick/--corpus/--stage1/--stage2/--recipes/--data-seed")
        results = read_results(root, plan.cells())
        start = None
    else:
        if user_data is not None:  # every record checked before the folder is made
            read_user_data(user_data, plan.data_seed, plan.size.choice_orders)
        root = claim_experiment(Path(args.out), plan)
        start = time.perf_counter()
        results = run_grid(root, plan)
    seconds = None if start is None else time.perf_counter() - start
    text = write_outputs(root, plan, results, resamples=args.resamples, seconds=seconds)
    print()
    print(text)
    print(f"\nreport: {root / 'report.html'}\nplot: {root / 'ablation.png'}\nsummary: {root / 'summary.json'}")
    return 0
