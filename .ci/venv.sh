# Sourced by ./run and ./test: make (or reuse) .venv from requirements.txt and set $PY to its python.
# LATENT_EXPLORER_PYTHON=/path/to/python skips the virtual environment (you manage your own).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -n "${LATENT_EXPLORER_PYTHON:-}" ]]; then
  PY="$LATENT_EXPLORER_PYTHON"
  return 0 2>/dev/null || exit 0
fi
venv="${LATENT_EXPLORER_VENV:-.venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "creating the virtual environment $venv (once)" >&2
  python3 -m venv "$venv" || { echo "could not create $venv: install python3-venv, or set LATENT_EXPLORER_PYTHON" >&2; exit 1; }
fi
wanted="$(sha256sum requirements.txt | cut -d' ' -f1)"
stamp="$venv/.requirements.sha256"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
  # Reinstalled only when requirements.txt changed; the stamp is written after a complete install.
  echo "installing requirements.txt into $venv (a few minutes the first time)" >&2
  "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  "$venv/bin/python" -m pip install -q -r requirements.txt
  echo "$wanted" > "$stamp"
fi
PY="$venv/bin/python"
