#!/usr/bin/env bash
# The checks that need a CUDA device, as one script: the `gpu`-marked tests,
# bench_speed on cuda, and one quality row on MNIST (k=10). Written for a
# borrowed GPU machine whose Python already has torch, scikit-learn, pandas
# and safetensors: skae runs from the source tree (PYTHONPATH), skorch comes
# from wheels in $SKAE_WHEELS when given.
#
#   SKAE_DATA_HOME=DIR [SKAE_WHEELS=DIR] [OUT=DIR] bash benchmarks/gpu_check.sh
#
# Results go to $OUT (default: gpu_check_output/): the test log, and
# speed_cuda.{md,json} and quality_cuda.{md,json}.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu_check_output}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [[ -n "${SKAE_WHEELS:-}" ]]; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/skae-site "$SKAE_WHEELS"/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/skae-site"
fi
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import torch, sklearn, numpy; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available(), 'sklearn', sklearn.__version__, 'numpy', numpy.__version__)"

echo "== gpu-marked tests"
python3 -m pytest -p no:cacheprovider -m gpu -q -rs -o addopts="" tests/test_autoencoder.py tests/test_persistence.py tests/test_vae.py tests/test_cuda.py 2>&1 | tee "$OUT/gpu_tests.log" \
    || status=1

echo "== bench_speed --device cuda"
python3 benchmarks/bench_speed.py --device cuda --rounds 5 \
    --output "$OUT/speed_cuda.md" --json "$OUT/speed_cuda.json" || status=1

echo "== one quality row: MNIST, k=10"
python3 benchmarks/bench_quality.py --datasets mnist --ks 10 \
    --methods PCA,AutoencoderTransformer,VAETransformer \
    --output "$OUT/quality_cuda.md" --json "$OUT/quality_cuda.json" || status=1
exit $status
