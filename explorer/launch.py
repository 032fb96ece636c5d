"""The `latent-explorer` command (`pip install .` puts it on the PATH).

`latent-explorer` starts the app (extra arguments go to `streamlit run`, e.g. `--server.port 8502`);
`latent-explorer train ...`, `latent-explorer evaluate ...` and the other training commands are
`python -m training ...` under another name. Run it in the repository's folder: the shipped checkpoints and
.streamlit/config.toml are found there (or set LATENT_EXPLORER_CHECKPOINTS).
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from training.cli import COMMANDS

    if argv and argv[0] in COMMANDS:
        from training.__main__ import main as training_main

        return training_main(argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print(f"\ntraining commands: {', '.join(COMMANDS)} (latent-explorer COMMAND --help for each)")
        return 0
    from streamlit.web import cli as streamlit_cli

    sys.argv = ["streamlit", "run", str(APP), *argv]
    return streamlit_cli.main()


if __name__ == "__main__":
    sys.exit(main())
