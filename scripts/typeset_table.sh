#!/usr/bin/env bash
# Typeset one generated LaTeX table alone (report/table.tex) into a PDF of its own size, for the HTML report;
# the PDF is moved into place only when pdfLaTeX succeeded.
# Usage: typeset_table.sh TEMPLATE TABLE_TEX OUTPUT_PDF
set -euo pipefail
template=$1 table=$2 output=$3
build=$(mktemp -d "${TMPDIR:-/tmp}/nclab-table.XXXXXX")
trap 'rm -rf "$build"' EXIT
cp "$template" "$build"/wrapper.tex
cp "$table" "$build"/table.tex
if grep -q '^\\begin{tabular}' "$table"; then echo '\tabulartrue'; fi > "$build"/kind.tex
(cd "$build" && SOURCE_DATE_EPOCH=0 FORCE_SOURCE_DATE=1 pdflatex -interaction=nonstopmode -halt-on-error wrapper.tex)
mkdir -p "$(dirname "$output")"
cp "$build"/wrapper.pdf "$output.tmp"
mv "$output.tmp" "$output"
