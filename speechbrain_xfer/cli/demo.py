"""``sbx demo``: the offline SynthSpeech demo, corpus to learning curves."""

from speechbrain_xfer.cli.common import example, recipes_root
from speechbrain_xfer.cli.synth import add_synth_options, synth_options


def run(args):
    """Runs the offline demo: corpus, source pretraining, then learning curves."""
    from speechbrain_xfer.curves.demo import run_demo

    return run_demo(args.out, synth_options(args), recipes_root(args), jobs=args.jobs, encoder=args.encoder)


def add_parser(commands):
    demo = commands.add_parser(
        "demo", help="run the offline SynthSpeech demo", epilog=example("sbx demo --out results/demo")
    )
    demo.add_argument("--out", default="results/demo", help="output folder (default: results/demo)")
    demo.add_argument(
        "--recipes",
        default=None,
        help="recipes/SynthSpeech folder (default: the repository's, else the installed package's)",
    )
    demo.add_argument(
        "--encoder",
        choices=("conv", "hf"),
        default="conv",
        help="conv: the ConvEncoder demo; hf: the hub-format transformer encoder's source stage and hf_* recipes "
        "(report in <out>/hf; corpus and CTC stage shared) (default: conv)",
    )
    add_synth_options(demo)
    demo.set_defaults(func=run)
