"""``sbx export``: a finished recipe run as a folder SpeechBrain's inference classes load."""

from speechbrain_xfer.cli.common import example


def run(args):
    """Exports a finished recipe run to a folder SpeechBrain's inference classes load."""
    from speechbrain_xfer.hub.export import export_experiment
    from speechbrain_xfer.hub.loading import ExportError

    try:
        exported = export_experiment(
            args.experiment_dir,
            args.out_dir,
            repo_id=args.repo_id,
            language=args.language,
            license=args.license,
            dataset=args.dataset,
            example=args.example,
            overwrite=args.overwrite,
        )
    except ExportError as err:
        raise SystemExit(f"sbx export: {err}") from None
    print(
        f"{exported.folder}: loads with {exported.interface} (checked on a test utterance: max |log-prob "
        f"difference| {exported.max_abs_diff:.2g} from the trained run)"
    )
    return 0


def add_parser(commands):
    export = commands.add_parser(
        "export",
        help="export a finished recipe run for SpeechBrain's inference classes",
        epilog=example("sbx export results/curves/runs/kws/finetune/k10/seed1 results/kws_model --repo-id me/kws"),
    )
    export.add_argument("experiment_dir", help="the run's output_folder (hyperparams.yaml, summary.json, save/)")
    export.add_argument("out_dir", help="the folder to write")
    export.add_argument("--repo-id", default=None, help="hub id the model card's usage code loads from (user/name)")
    export.add_argument("--language", default="en", help="model card language (default: en)")
    export.add_argument("--license", default="apache-2.0", help="model card license (default: apache-2.0)")
    export.add_argument("--dataset", default=None, help="model card dataset (default: the recipe's)")
    export.add_argument(
        "--example",
        default=None,
        help="audio file shipped as example.wav (default: a test utterance, SynthSpeech only)",
    )
    export.add_argument("--overwrite", action="store_true", help="replace out_dir if it exists")
    export.set_defaults(func=run)
