#!/usr/bin/env bash
# Copy a checkout's files as they are now into a new folder, so that rows started from the copy
# cannot be reached by later edits (bash reads a recipe as it runs it; a new fairseq process
# imports the package afresh):
#   bash examples/freeze_checkout.sh REPO DEST      # prints DEST
# In a git checkout: the tracked and untracked files that git does not ignore (uncommitted edits
# included, deleted files left out); elsewhere the folders a recipe needs.
set -euo pipefail
src="$1"; dest="$2"
if [ -e "$dest" ] && [ -n "$(ls -A "$dest" 2>/dev/null)" ]; then
    echo "freeze_checkout.sh: $dest exists and is not empty; give a new folder" >&2; exit 2
fi
mkdir -p "$dest"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done \
        | tar --null -T - -cf -) | tar -xf - -C "$dest"
else
    cp -a "$src/examples" "$src/scripts" "$src/fairseq_compactemb" "$dest/"
fi
echo "$dest"
