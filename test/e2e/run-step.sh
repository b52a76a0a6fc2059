#!/usr/bin/env bash
# run-step.sh MODEL.kiln NAME OUTDIR [kilnc flags...]: compiles MODEL with SGD
# (lr 1) and with Adam (lr 1e-3), runs one step of each from the deterministic
# inputs of step_golden.py, and compares with the PyTorch golden; the verdicts
# go to OUTDIR/NAME-{sgd,adam}.log. Fails if a comparison fails.
set -euo pipefail
src="$1" name="$2" out="$3"
shift 3
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"
for opt in sgd adam; do
  dir="$out/$name-$opt"
  mkdir -p "$dir"
  sed -e 's/optimizer adam(lr = 1e-3)/optimizer sgd(lr = 1.0)/' "$src" > "$dir/sgd.kiln"
  sed -e 's/optimizer sgd(lr = 1.0)/optimizer adam(lr = 1e-3)/' "$src" > "$dir/adam.kiln"
  kilnc "$dir/$opt.kiln" -o "$dir/model" "$@"
  "${PYTHON:-/usr/bin/python3}" "$here/step_golden.py" make "$name" "$dir" "$opt"
  (cd "$dir" && ./model train --quiet --epochs 1 --resume init.safetensors \
     --data image=image.npy --data label=label.npy \
     --test image=image.npy --test label=label.npy \
     --checkpoint after.safetensors --metrics metrics.csv)
  "${PYTHON:-/usr/bin/python3}" "$here/step_golden.py" check "$name" "$dir/after.safetensors" \
    "$dir/metrics.csv" "$opt" > "$out/$name-$opt.log"
done
