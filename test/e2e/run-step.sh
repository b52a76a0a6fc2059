#!/usr/bin/env bash
# run-step.sh MODEL.kiln NAME OUTDIR [kilnc flags...]: compiles MODEL with SGD
# (lr 1, or the model's sgd_lr in step_golden.py) and with Adam (lr 1e-3), runs
# one step of each from the deterministic inputs of step_golden.py, and
# compares with the PyTorch golden; the verdicts go to OUTDIR/NAME-{sgd,adam}.log.
# Fails if a comparison fails.
set -euo pipefail
src="$1" name="$2" out="$3"
shift 3
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"
for opt in sgd adam; do
  dir="$out/$name-$opt"
  mkdir -p "$dir"
  lr="$("${PYTHON:-/usr/bin/python3}" "$here/step_golden.py" sgd-lr "$name")"
  # The model's own optimizer and schedule give way to the golden's.
  sed -e "s/optimizer [a-z]*(lr = [^)]*)/optimizer sgd(lr = $lr)/" \
      -e '/^ *schedule /d' "$src" > "$dir/sgd.kiln"
  sed -e 's/optimizer [a-z]*(lr = [^)]*)/optimizer adam(lr = 1e-3)/' \
      -e '/^ *schedule /d' "$src" > "$dir/adam.kiln"
  kilnc "$dir/$opt.kiln" -o "$dir/model" "$@"
  "${PYTHON:-/usr/bin/python3}" "$here/step_golden.py" make "$name" "$dir" "$opt"
  labels=()
  if [[ -f "$dir/label.npy" ]]; then
    labels=(--data label=label.npy --test label=label.npy)
  fi
  # The seed keys the random ops (step_golden.py's SEED).
  (cd "$dir" && ./model train --quiet --epochs 1 --seed 5 \
     --resume init.safetensors --data image=image.npy --test image=image.npy \
     "${labels[@]}" --checkpoint after.safetensors --metrics metrics.csv)
  "${PYTHON:-/usr/bin/python3}" "$here/step_golden.py" check "$name" "$dir/after.safetensors" \
    "$dir/metrics.csv" "$opt" > "$out/$name-$opt.log"
done
