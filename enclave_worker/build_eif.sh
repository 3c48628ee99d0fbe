#!/usr/bin/env bash
# Build the enclave image (EIF), record its measurements, and bundle the parent agent.
#
# Runs on a *build host*: an x86_64 Linux machine with Docker and the Nitro Enclaves CLI, e.g.
# an Amazon Linux 2023 EC2 instance (any size: building does not need enclave support):
#   sudo dnf install -y docker aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel python3.11 python3.11-pip git
#   sudo systemctl enable --now docker && sudo usermod -aG docker,ne "$USER"   # then log in again
#   git clone <this repo> && cd <repo> && make model   # builds models/nanodet-g.onnx
#
# Usage:
#   enclave_worker/build_eif.sh [--sign CERT.pem KEY.pem] [--publish STACK_NAME]
#
# Writes:
#   build/enclave/bundle.tar               the enclave bundle: the image's only input (python -m ccc.release build)
#   build/enclave/release.json             its manifest (ccc.release/v1), with the PCRs recorded below
#   build/enclave/ccc-enclave.eif          the enclave image file
#   build/enclave/nitro-build.json         nitro-cli's own output (PCR0/1/2[/8])
#   build/enclave/ccc-agent.tar.gz         wheelhouse for the parent agent (python -m enclave_worker.parent)
#   enclave_worker/measurements.json       our measurements file; commit it, then `cdk deploy`
# With --sign, PCR8 (the signing certificate) is measured and pinned too.
# With --publish, uploads the release to s3://<ArtifactsBucket>/release/<first 16 hex of PCR0>/ of
# the deployed stack, where the fleet's user data fetches it.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$ROOT/build/enclave
PY=${PY:-$ROOT/.venv/bin/python}
BASE_IMAGE=${BASE_IMAGE:-public.ecr.aws/docker/library/python:3.11-slim-bookworm}
SIGN_CERT=""
SIGN_KEY=""
PUBLISH_STACK=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --sign) SIGN_CERT=$2; SIGN_KEY=$3; shift 3 ;;
    --publish) PUBLISH_STACK=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

need() { command -v "$1" >/dev/null || { echo "error: $1 is required ($2)" >&2; exit 2; }; }
need docker "the enclave image is a Docker image first"
need nitro-cli "dnf install aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel"
[[ -x $PY ]] || { echo "error: $PY missing: run 'make venv' first" >&2; exit 2; }
[[ -f models/nanodet-g.onnx ]] || { echo "error: models/nanodet-g.onnx missing: run 'make model' first" >&2; exit 2; }
[[ $(uname -m) == x86_64 ]] || { echo "error: the fleet is x86_64; build on x86_64" >&2; exit 2; }
# The parent agent's wheels are built by this interpreter for this machine: it must match the
# fleet (CPython 3.11 on x86_64 glibc Linux), or the offline install there fails. (The enclave's
# wheels are chosen for the image's platform whatever this machine is: ccc.release.wheelhouse.)
[[ $("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])') == 3.11 ]] \
  || { echo "error: $PY must be CPython 3.11 (the fleet's and the enclave image's Python)" >&2; exit 2; }

rm -rf "$OUT" && mkdir -p "$OUT/context" "$OUT/agent"

# 1. The enclave bundle: the enclave distribution's wheel, one wheel per pin of its
#    requirements.txt (CPython 3.11 manylinux x86_64, from the wheel cache .cache/enclave-bundle),
#    the model and the boot script, as one deterministic tar, plus its manifest release.json.
#    The bundle is the whole Docker context: the image gets nothing else from this checkout.
"$PY" -m ccc.release build --out-dir "$OUT"
cp "$OUT/bundle.tar" "$OUT/context/bundle.tar"

# 2. Docker image, base pinned by digest so a rebuild of the same commit measures the same.
docker pull --quiet "$BASE_IMAGE" >/dev/null
BASE_DIGEST=$(docker inspect --format '{{index .RepoDigests 0}}' "$BASE_IMAGE")
TAG="ccc-enclave:$(git rev-parse --short=12 HEAD 2>/dev/null || echo local)"
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
docker build --quiet --build-arg "BASE_IMAGE=$BASE_DIGEST" -t "$TAG" -f enclave_worker/Dockerfile "$OUT/context"

# 3. The EIF and its measurements (PCR0 image, PCR1 kernel+bootstrap, PCR2 application, PCR8 signer).
BUILD_ARGS=(build-enclave --docker-uri "$TAG" --output-file "$OUT/ccc-enclave.eif")
if [[ -n $SIGN_CERT ]]; then
  BUILD_ARGS+=(--signing-certificate "$SIGN_CERT" --private-key "$SIGN_KEY")
fi
nitro-cli "${BUILD_ARGS[@]}" > "$OUT/nitro-build.json"
NITRO_CLI_VERSION=$(nitro-cli --version | head -1)
"$PY" -m cdk.measurements from-nitro-cli "$OUT/nitro-build.json" --eif "$OUT/ccc-enclave.eif" \
  --nitro-cli-version "$NITRO_CLI_VERSION" --write enclave_worker/measurements.json
cp enclave_worker/measurements.json "$OUT/measurements.json"
# The same PCRs (checked again: 96 hex, not all zero) and the base image digest into release.json;
# --bundle refuses to record them if the bundle is not the one release.json describes.
"$PY" -m ccc.release record-pcrs "$OUT/release.json" --nitro-build "$OUT/nitro-build.json" \
  --eif "$OUT/ccc-enclave.eif" --bundle "$OUT/bundle.tar" --base-image "$BASE_DIGEST" \
  --nitro-cli-version "$NITRO_CLI_VERSION"

# 4. The parent agent: a wheelhouse installed offline by the host's user data.
"$PY" -m pip wheel --quiet --wheel-dir "$OUT/agent" -r requirements.txt
"$PY" -m pip wheel --quiet --no-deps --wheel-dir "$OUT/agent" .
tar -czf "$OUT/ccc-agent.tar.gz" -C "$OUT/agent" .

RELEASE=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pcrs"]["PCR0"][:16])' enclave_worker/measurements.json)
echo "release $RELEASE: $OUT/ccc-enclave.eif, $OUT/ccc-agent.tar.gz, $OUT/release.json, enclave_worker/measurements.json"

# 5. Optional: publish the release where the deployed stack's fleet looks for it.
if [[ -n $PUBLISH_STACK ]]; then
  need aws "AWS CLI v2"
  BUCKET=$(aws cloudformation describe-stacks --stack-name "$PUBLISH_STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='ArtifactsBucket'].OutputValue" --output text)
  [[ -n $BUCKET && $BUCKET != None ]] || { echo "error: stack $PUBLISH_STACK has no ArtifactsBucket output" >&2; exit 2; }
  for f in ccc-enclave.eif measurements.json release.json ccc-agent.tar.gz; do
    aws s3 cp "$OUT/$f" "s3://$BUCKET/release/$RELEASE/$f"
  done
  echo "published s3://$BUCKET/release/$RELEASE/"
fi
