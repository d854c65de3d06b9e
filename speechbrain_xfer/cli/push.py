"""``sbx push``: uploads an exported folder to the Hugging Face Hub."""

from speechbrain_xfer.cli.common import example


def run(args):
    """Uploads an exported folder to the Hugging Face Hub."""
    from speechbrain_xfer.hub.push import PushError, push_export

    try:
        url = push_export(args.folder, args.repo_id, private=args.private, token=args.token)
    except PushError as err:
        raise SystemExit(f"sbx push: {err}") from None
    print(url)
    return 0


def add_parser(commands):
    push = commands.add_parser(
        "push",
        help="upload an exported folder to the Hugging Face Hub",
        epilog=example("sbx push results/kws_model me/kws --private"),
    )
    push.add_argument("folder", help="an `sbx export` folder")
    push.add_argument("repo_id", help="user/name")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--token", default=None, help="hub token (default: HF_TOKEN, then the cached login)")
    push.set_defaults(func=run)
