#!/usr/bin/env bash
# The README's design comparison: every approach on the default synthetic data at an
# equal CNN budget, scored on the synthetic test split and on the 40 real pairs.
#   bash scripts/compare_designs.sh DEFAULT_RUN [EPOCHS] [REAL_PAIRS_CSV]
# DEFAULT_RUN: the run folder of `python -m neipalette_tf.train` with no arguments
#   (siamese ResNet18, configs/resnet18.yaml). Its model.keras is the probe's frozen
#   encoder, and when EPOCHS is the default config's budget (9) the run itself is the
#   resnet18 row: same data, same budget, so it is not trained again.
# EPOCHS: the budget of every CNN (default 9, the default config's).
# Runs are reused when their metrics.json exists, so an interrupted comparison resumes.
set -euo pipefail
cd "$(dirname "$0")/.."
default_run=${1:?usage: bash scripts/compare_designs.sh DEFAULT_RUN [EPOCHS] [REAL_PAIRS_CSV]}
default_run=${default_run%/}
epochs=${2:-9}
real=${3:-../shared/real-pairs-dev/pairs.csv}
out=runs/compare${epochs}
[ -f "$default_run/model.keras" ] || { echo "error: $default_run/model.keras not found" >&2; exit 2; }
default_epochs=$(python -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['train']['epochs'])" "$default_run/config.yaml")

model_of() {  # RUN_DIR: its model file (Keras, palette or probe)
  local f
  for f in model.keras model.palette.json model.probe.json; do
    [ -f "$1/$f" ] && { echo "$1/$f"; return; }
  done
  echo "error: no model in $1" >&2; exit 2
}

run() {  # NAME TRAIN-FLAGS...: train once (reused when metrics.json exists), evaluate on the real pairs
  local name=$1; shift
  [ -f "$out-$name/metrics.json" ] || python -m neipalette_tf.train "$@" --out "$out-$name"
  local model
  model=$(model_of "$out-$name")  # an assignment, so that set -e stops the script when no model is there
  [ -f "$out-$name/eval-real/metrics.json" ] ||
    python -m neipalette_tf.evaluate --model "$model" --data "$real" --out "$out-$name/eval-real"
}

if [ "$epochs" = "$default_epochs" ]; then
  resnet18_run=$default_run
  [ -f "$resnet18_run/eval-real/metrics.json" ] ||
    python -m neipalette_tf.evaluate --model "$resnet18_run/model.keras" --data "$real" --out "$resnet18_run/eval-real"
else
  run resnet18 --epochs "$epochs"
  resnet18_run=$out-resnet18
fi
run palette --backbone palette
run probe --mode probe --init-from "$default_run/model.keras"
run efficientnet_b0 --config configs/efficientnet_b0.yaml --epochs "$epochs"
run resnet18_stacked --config configs/resnet18_stacked.yaml --epochs "$epochs"
run resnet50 --config configs/resnet50.yaml --epochs "$epochs"

names=resnet18,efficientnet_b0,resnet50,resnet18-stacked,palette,probe
runs=("$resnet18_run" "$out-efficientnet_b0" "$out-resnet50" "$out-resnet18_stacked" "$out-palette" "$out-probe")
python -m neipalette_tf.compare "${runs[@]}" --names "$names" --out "$out-synthetic"
python -m neipalette_tf.compare "${runs[@]/%//eval-real}" --names "$names" --out "$out-real"
