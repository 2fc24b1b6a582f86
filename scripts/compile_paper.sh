#!/usr/bin/env bash
# Compile the paper in a scratch folder and move the PDF into place only when latexmk succeeded,
# so a killed or failed compile never leaves a PDF that looks finished.
# Only the generated files named on the command line (the rule's inputs) are copied, with their paths below
# GENERATED_DIR: other jobs may be writing elsewhere in that folder meanwhile (the tables typeset for the report).
# Usage: compile_paper.sh OUTPUT_PDF GENERATED_DIR SOURCE_DIR "STUDIES" FILE... (STUDIES e.g. "balanced longtail")
set -euo pipefail
output=$1 generated=$2 sources=$3 studies=$4
shift 4
build=$(mktemp -d "${TMPDIR:-/tmp}/nclab-paper.XXXXXX")
trap 'rm -rf "$build"' EXIT
cp "$sources"/*.tex "$sources"/*.bib "$build"/
for file in "$@"; do
  case $file in
    "$generated"/*) relative=${file#"$generated"/}
                    mkdir -p "$build/$(dirname "$relative")"
                    cp "$file" "$build/$relative" ;;
  esac
done
for study in $studies; do echo "\\${study}true"; done > "$build"/studies.tex
(cd "$build" && SOURCE_DATE_EPOCH=0 FORCE_SOURCE_DATE=1 latexmk -pdf -interaction=nonstopmode -halt-on-error paper.tex)
mkdir -p "$(dirname "$output")"
cp "$build"/paper.pdf "$output.tmp"
mv "$output.tmp" "$output"
