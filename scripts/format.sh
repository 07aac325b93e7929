#!/usr/bin/env bash
# clang-format over the project's own C and C++ files, with the repository's .clang-format.
# Usage: scripts/format.sh [fix|check]   (default: check)
#   fix:   rewrite the files in place (make format)
#   check: change nothing; print each difference and exit 1 if there is one (make format-check, .ci/run)
# The files: every *.c, *.h and *.cc that git tracks, or that is new and not ignored (so build trees are never
# looked at, wherever the folders move). Nothing is excluded: the generated parser/num_pow5.h is already in the
# format. CLANG_FORMAT picks the binary (default clang-format-14, Debian 12's, which install-deps.sh installs):
# another major version formats some constructs differently, and the check would then fail on untouched code.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-check}
cf=${CLANG_FORMAT:-clang-format-14}
if ! command -v "$cf" >/dev/null; then
    echo "format: $cf not found (scripts/install-deps.sh format installs it)" >&2
    exit 2
fi

files=()
while IFS= read -r -d '' f; do
    [ -f "$f" ] && files+=("$f")   # skip deletions not yet committed
done < <(git ls-files -z --cached --others --exclude-standard -- '*.c' '*.h' '*.cc')
if [ ${#files[@]} -eq 0 ]; then
    echo "format: no C/C++ files found (not a git checkout?)" >&2
    exit 2
fi

case "$mode" in
    fix) printf '%s\0' "${files[@]}" | xargs -0 "$cf" -i --style=file ;;
    check)
        if ! printf '%s\0' "${files[@]}" | xargs -0 "$cf" --dry-run --Werror --style=file; then
            echo "format: files above differ from .clang-format; run make format" >&2
            exit 1
        fi
        ;;
    *) echo "usage: $0 [fix|check]" >&2; exit 2 ;;
esac
