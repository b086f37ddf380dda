#!/usr/bin/env bash
# The README's design comparison: every approach on the default synthetic data at an
# equal CNN budget, scored on the synthetic test split and on the 40 real pairs.
#   bash scripts/compare_designs.sh DEFAULT_MODEL [EPOCHS] [REAL_PAIRS_CSV]
# DEFAULT_MODEL: a trained default model.keras (the probe's frozen encoder).
set -euo pipefail
cd "$(dirname "$0")/.."
default_model=${1:?usage: bash scripts/compare_designs.sh DEFAULT_MODEL [EPOCHS] [REAL_PAIRS_CSV]}
epochs=${2:-3}
real=${3:-../shared/real-pairs-dev/pairs.csv}
out=runs/compare${epochs}

run() {  # NAME TRAIN-FLAGS...: train once (reused when metrics.json exists), evaluate on the real pairs
  local name=$1; shift
  [ -f "$out-$name/metrics.json" ] || python -m neipalette_tf.train "$@" --out "$out-$name"
  local model f
  for f in model.keras model.palette.json model.probe.json; do
    [ -f "$out-$name/$f" ] && { model=$out-$name/$f; break; }
  done
  python -m neipalette_tf.evaluate --model "$model" --data "$real" --out "$out-$name/eval-real"
}

run palette --backbone palette
run probe --mode probe --init-from "$default_model"
run resnet18 --epochs "$epochs"
run efficientnet_b0 --config configs/efficientnet_b0.yaml --epochs "$epochs"
run resnet18_stacked --config configs/resnet18_stacked.yaml --epochs "$epochs"
run resnet50 --config configs/resnet50.yaml --epochs "$epochs"

names=resnet18,efficientnet_b0,resnet50,resnet18-stacked,palette,probe
runs=("$out-resnet18" "$out-efficientnet_b0" "$out-resnet50" "$out-resnet18_stacked" "$out-palette" "$out-probe")
python -m neipalette_tf.compare "${runs[@]}" --names "$names" --out "$out-synthetic"
python -m neipalette_tf.compare "${runs[@]/%//eval-real}" --names "$names" --out "$out-real"
