"""``sbx classify`` and ``sbx transcribe``: audio files through an exported model."""

import json
import logging

from speechbrain_xfer.cli.common import example

logger = logging.getLogger("speechbrain_xfer")


def _run_on_files(args, command):
    import tempfile

    from speechbrain_xfer.hub.inference import classify_files, format_table, transcribe_files
    from speechbrain_xfer.hub.loading import ExportError, load_export

    with tempfile.TemporaryDirectory() as savedir:
        try:
            model = load_export(
                args.model,
                savedir=savedir,
                trust_remote_code=args.trust_remote_code,
                run_opts={"device": args.device},
            )
        except ExportError as err:
            raise SystemExit(f"sbx {command}: {err}") from None
        if command == "classify":
            rows, columns = classify_files(model, args.files), ["file", "label", "score"]
        else:
            rows, columns = transcribe_files(model, args.files), ["file", "text"]
    print(json.dumps(rows, indent=1) if args.json else format_table(rows, columns))
    failed = sum("error" in row for row in rows)
    if failed:
        logger.error(
            "%d of %d files could not be %s (see above)",
            failed,
            len(rows),
            "classified" if command == "classify" else "transcribed",
        )
    return 1 if failed else 0


def run_classify(args):
    """Classifies audio files with an exported classifier."""
    return _run_on_files(args, "classify")


def run_transcribe(args):
    """Transcribes audio files with an exported CTC model."""
    return _run_on_files(args, "transcribe")


def _add_parser(commands, name, help_text, func, epilog):
    parser = commands.add_parser(name, help=help_text, epilog=epilog)
    parser.add_argument("model", help="an `sbx export` folder or its hub id (user/name)")
    parser.add_argument("files", nargs="+", help="audio files (any sample rate and channel count)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="load a model whose hyperparams.yaml calls code outside torch, speechbrain and speechbrain_xfer "
        "(it runs that code)",
    )
    parser.set_defaults(func=func)


def add_parsers(commands):
    _add_parser(
        commands,
        "classify",
        "classify audio files with an exported model",
        run_classify,
        example("sbx classify results/kws_model clip1.wav clip2.flac"),
    )
    _add_parser(
        commands,
        "transcribe",
        "transcribe audio files with an exported CTC model",
        run_transcribe,
        example("sbx transcribe results/asr_model sentence.wav --json"),
    )
