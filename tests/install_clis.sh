#!/usr/bin/env bash
# Installs the coding-agent CLIs that the real_cli tests drive into .cache/agent-clis/ (git ignores
# it), at the versions the README's agents table was verified with, and links them into its bin/.
# Idempotent: a second run with the same versions downloads nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${AGENT_CLIS_DIR:-$PWD/.cache/agent-clis}
NPM_PACKAGES=(
  "@anthropic-ai/claude-code@2.1.332"
  "@openai/codex@0.171.0"
  "@google/gemini-cli@0.61.0"
  "opencode-ai@1.18.33"
  "@qwen-code/qwen-code@0.24.4"
)
AIDER="aider-chat==0.86.2"
STAMP="$DEST/installed.txt"
WANT="${NPM_PACKAGES[*]} $AIDER"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  echo "agent CLIs already installed in $DEST"; exit 0
fi
mkdir -p "$DEST/npm" "$DEST/bin"
npm install --prefix "$DEST/npm" --no-audit --no-fund --loglevel=error "${NPM_PACKAGES[@]}"
[ -x "$DEST/aider-venv/bin/python" ] || python3 -m venv "$DEST/aider-venv"  # aider pins many packages
"$DEST/aider-venv/bin/pip" install --quiet --disable-pip-version-check "$AIDER"
for name in claude codex gemini opencode qwen; do
  ln -sf "../npm/node_modules/.bin/$name" "$DEST/bin/$name"
done
ln -sf ../aider-venv/bin/aider "$DEST/bin/aider"
echo "$WANT" > "$STAMP"
echo "agent CLIs installed in $DEST"
