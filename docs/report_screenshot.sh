#!/bin/sh
# Regenerates docs/report.png: the default experiment's report rendered by headless Chromium.
# Needs the Debian `chromium` package. Usage: sh docs/report_screenshot.sh [REPS]  (from the repository root)
set -eu
reps=${1:-8}
out=$(mktemp -d)
profile=$(mktemp -d)
capsim run experiments/default.yaml --reps "$reps" --out "$out/run" --quiet >/dev/null
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$profile" \
  --window-size=1400,3000 --screenshot="$out/report.png" "file://$out/run/report.html" 2>/dev/null
# 256-colour palette: a third of the size, charts' colours kept apart
python -c "
import sys
from PIL import Image
Image.open(sys.argv[1]).convert('RGB').quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
    sys.argv[2], optimize=True)
" "$out/report.png" docs/report.png
rm -rf "$out" "$profile"
echo docs/report.png
