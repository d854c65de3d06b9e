"""``sbx push``: an exported folder to a Hugging Face Hub model repository."""

import os
import shutil
import tempfile

SOURCE_MARK = 'source="{}"'


class PushError(RuntimeError):
    """The upload cannot start or did not finish; the export folder is unchanged."""


def hub_token(token=None):
    """The token to use: ``token``, else ``HF_TOKEN``, else the cached ``huggingface-cli login``; None if none."""
    from huggingface_hub import get_token

    return token or os.environ.get("HF_TOKEN") or get_token()


def push_export(folder, repo_id, private=False, token=None, api=None):
    """Uploads an exported folder to ``repo_id``; returns the repository's URL.

    The model card's usage code loads from the local folder until the model
    is pushed; the uploaded copy loads from ``repo_id``. ``folder`` itself is
    never modified: the card is rewritten in a temporary copy.

    Arguments
    ---------
    folder : str
        An ``sbx export`` folder.
    repo_id : str
        ``user/name`` (created if missing).
    private : bool
        Create the repository private.
    token : str, optional
        Hub token; see :func:`hub_token` for the fallbacks.
    api : huggingface_hub.HfApi, optional
        The client (tests pass one whose network calls are replaced).

    Raises
    ------
    PushError
        No token, not an export folder, or the hub could not be reached.
    """
    from huggingface_hub import HfApi

    _check_export(folder, repo_id)
    token = hub_token(token)
    if not token:
        raise PushError(
            "no Hugging Face token: pass --token, set HF_TOKEN, or log in with `hf auth login` "
            "(a token with write access)"
        )
    api = api or HfApi(token=token)
    with tempfile.TemporaryDirectory() as staging:
        copy = os.path.join(staging, os.path.basename(os.path.normpath(folder)))
        shutil.copytree(folder, copy)
        _point_card_at(copy, folder, repo_id)
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            api.upload_folder(
                folder_path=copy,
                repo_id=repo_id,
                repo_type="model",
                commit_message="Upload model exported with speechbrain_xfer",
            )
        except Exception as err:  # HTTP errors, offline mode, and the HTTP client's own connection errors
            raise PushError(
                f"could not push {folder} to {repo_id}: {type(err).__name__}: {err}; check the "
                f"network, the token's write access and the repository name ({folder} is "
                f"unchanged)"
            ) from err
    return str(url)


def _check_export(folder, repo_id):
    for name in ("hyperparams.yaml", "README.md"):
        if not os.path.isfile(os.path.join(folder, name)):
            raise PushError(f"{folder} has no {name}: push a folder made by `sbx export`")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PushError(f"repository {repo_id!r}: give it as user/name (or organization/name)")


def _point_card_at(copy, folder, repo_id):
    """Makes the card's usage code load from ``repo_id`` where it loaded from the local folder."""
    card = os.path.join(copy, "README.md")
    with open(card) as f:
        text = f.read()
    local = os.path.abspath(folder)
    text = text.replace(SOURCE_MARK.format(local), SOURCE_MARK.format(repo_id))
    text = text.replace(f'"{local}/example.wav"', f'"{repo_id}/example.wav"')
    with open(card, "w") as f:
        f.write(text)
