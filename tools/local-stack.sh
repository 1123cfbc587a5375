#!/usr/bin/env bash
# The local stack, with no AWS account and no internet:
#   moto server (S3 and DynamoDB) on 127.0.0.1:$MOTO_PORT, with the table, the bucket and the
#   sample actor (profile and a synthetic base photo) seeded; the Replicate emulator on
#   127.0.0.1:$REPLICATE_PORT; every function served by `cargo lambda watch` on
#   127.0.0.1:$LAMBDA_PORT. Then it shows the service at work, over HTTP from the running
#   functions: the sample actor's training prompts, and one generated training image, saved
#   with the actor's manifest under .local/output/ so a person can open both.
#
#   tools/local-stack.sh         start (or reuse) the stack, list the prompts, generate one image
#   tools/local-stack.sh down    stop what `up` started
#
# With REPLICATE_API_TOKEN set, the real Replicate API is used instead of the emulator (each
# image is billed to that token); `down` first if the stack is running with the emulator.
#
# State (PIDs, logs, the functions' environment) lives in .local/.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_PORT=${MOTO_PORT:-5005}
LAMBDA_PORT=${LAMBDA_PORT:-9000}
REPLICATE_PORT=${REPLICATE_PORT:-5006}
SAMPLE_ACTOR=0000_european_16_male
STATE=.local
MOTO_URL="http://127.0.0.1:$MOTO_PORT"
REPLICATE_URL="http://127.0.0.1:$REPLICATE_PORT"
LAMBDA_URL="http://127.0.0.1:$LAMBDA_PORT"

# Stops the process group a PID file names (each service is started as its own group).
stop_service() {
    local pidfile="$STATE/$1.pid"
    if [ -f "$pidfile" ]; then
        kill -- "-$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
        echo "stopped $1"
    fi
}

# Starts a command as its own process group in the background, logging to .local/NAME.log.
start_service() {
    local name=$1
    shift
    setsid "$@" >"$STATE/$name.log" 2>&1 </dev/null &
    echo $! >"$STATE/$name.pid"
}

if [ "${1:-up}" = down ]; then
    stop_service watch
    stop_service replicate
    stop_service moto
    exit 0
fi

source tools/dev-env.sh
mkdir -p "$STATE"

if curl -fs -o /dev/null "$MOTO_URL/moto-api/"; then
    echo "moto server already up at $MOTO_URL"
else
    echo "starting moto server at $MOTO_URL"
    start_service moto moto_server -H 127.0.0.1 -p "$MOTO_PORT"
    wait_for_http "$MOTO_URL/moto-api/" 60
fi
cargo run --quiet -p testkit --bin seed-local -- "$MOTO_URL"

if [ -n "${REPLICATE_API_TOKEN:-}" ]; then
    echo "REPLICATE_API_TOKEN is set: using the REAL Replicate API (images are billed to that token)"
    replicate_env="REPLICATE_API_TOKEN=$REPLICATE_API_TOKEN"
    echo real >"$STATE/replicate.mode"
else
    if curl -s -o /dev/null "$REPLICATE_URL/admin/counts"; then
        echo "Replicate emulator already up at $REPLICATE_URL"
    else
        echo "starting the Replicate emulator at $REPLICATE_URL (no real Replicate calls)"
        cargo build --quiet -p replicate-emulator
        start_service replicate target/debug/replicate-emulator --addr "127.0.0.1:$REPLICATE_PORT"
        wait_for_http "$REPLICATE_URL/admin/counts" 60
    fi
    replicate_env="REPLICATE_API_TOKEN=local-emulator-token
REPLICATE_BASE_URL=$REPLICATE_URL
REPLICATE_OUTPUT_HOSTS=127.0.0.1"
    echo emulator >"$STATE/replicate.mode"
fi

cat >"$STATE/lambda.env" <<ENV
AWS_ENDPOINT_URL=$MOTO_URL
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
TABLE_NAME=training-image-service
AWS_SYSTEM_ACTORS_BUCKET=story-boards-assets
# cargo lambda watch gives a function 30 s, not the template's 300: start batch jobs with 20 s left.
BATCH_JOB_MIN_SECONDS=20
$replicate_env
ENV
chmod 600 "$STATE/lambda.env"

if curl -s -o /dev/null "$LAMBDA_URL/"; then
    echo "cargo lambda watch already up at $LAMBDA_URL"
else
    echo "starting cargo lambda watch at $LAMBDA_URL (log: $STATE/watch.log)"
    start_service watch cargo lambda watch -A 127.0.0.1 -P "$LAMBDA_PORT" --env-file "$STATE/lambda.env"
    wait_for_http "$LAMBDA_URL/" 60
fi

url="$LAMBDA_URL/lambda-url/training-prompts/api/actors/$SAMPLE_ACTOR/training-prompts"
echo "GET $url  (the first call compiles the function)"
curl -fsS --max-time 900 "$url" | python3 -c "
import json, sys
answer = json.load(sys.stdin)
print('actor {actor_id}: descriptor \"{descriptor}\" (from {descriptor_source})'.format(**answer))
for prompt in answer['prompts']:
    print('\n[{category_label}] {id}: {label}\n  {prompt}'.format(**prompt))
"

url="$LAMBDA_URL/lambda-url/generate-single/api/actors/$SAMPLE_ACTOR/training-data/generate-single"
echo
echo "POST $url  {\"prompt_id\": \"bw_charcoal\"}"
answer=$(curl -sS --max-time 900 -X POST -H 'content-type: application/json' \
    --data '{"prompt_id": "bw_charcoal"}' "$url")
echo "$answer" | python3 -m json.tool
s3_key=$(echo "$answer" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("s3_key", ""))')
manifest_key=$(echo "$answer" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("manifest_key", ""))')
if [ -z "$s3_key" ]; then
    echo "generation failed (see above and $STATE/watch.log)" >&2
    exit 1
fi
output="$STATE/output/$SAMPLE_ACTOR"
mkdir -p "$output"
python3 - "$MOTO_URL" "$s3_key" "$manifest_key" "$output" <<'PY'
import sys, os, boto3  # boto3 comes with moto[server]
endpoint, image_key, manifest_key, folder = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
s3.download_file("story-boards-assets", image_key, os.path.join(folder, os.path.basename(image_key)))
s3.download_file("story-boards-assets", manifest_key, os.path.join(folder, "response.json"))
PY
echo
echo "saved: $output/$(basename "$s3_key") and $output/response.json ($(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["images"]))' "$output/response.json") images listed)"
echo
echo "The stack is still running: moto at $MOTO_URL, functions at $LAMBDA_URL/lambda-url/<function>/..."
echo "Run this command again for the next image; stop the stack with: tools/local-stack.sh down"
