#!/usr/bin/env bash
# The local stack, with no AWS account and no internet:
#   moto server (S3 and DynamoDB) on 127.0.0.1:$MOTO_PORT, with the table, the bucket and the
#   sample actor (profile and a synthetic base photo) seeded, the training-set items' queue,
#   the exports' queue and the trainings' queue, each with its dead-letter queue (SQS, in moto
#   too); the Replicate emulator on 127.0.0.1:$REPLICATE_PORT; every function served by
#   `cargo lambda watch` on 127.0.0.1:$LAMBDA_PORT; and three instances of a dev-only poller
#   (`sqs-event-source`) that play Lambda's SQS event source mappings through `cargo lambda
#   watch`: the items' queue to training-set-worker (log in .local/poller.log), the exports'
#   queue to training-export (log in .local/export-poller.log), the trainings' queue to
#   trainings (log in .local/trainings-poller.log). Then it shows the service at work, over
#   HTTP from the running functions: the sample actor's training prompts, one generated
#   training image, and a training set of 4 followed to its end; the images and the actor's
#   manifest are saved under .local/output/ so a person can open them. Last, it checks that
#   the trainings function starts with its settings (a read of a training that is not there).
#
# Trainings go to TRAINING_DESTINATION (default studio/lora-{actor_name}, created on the
# emulator at the first training) with the trainer version TRAINER_VERSION (any for the
# emulator; a real one of ostris/flux-dev-lora-trainer for the real API).
#
#   tools/local-stack.sh         start (or reuse) the stack, list the prompts, generate one
#                                image, then a set of 4
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
# The local stack's webhook signing secret: base64 of "local-stack-webhook-signing-secret!!" (no padding: the env file's parser takes no "=" at the end).
LOCAL_WEBHOOK_SECRET=whsec_bG9jYWwtc3RhY2std2ViaG9vay1zaWduaW5nLXNlY3JldCEh

# Stops the process group a PID file names (each service is started as its own group), and
# waits (at most 10 s) for it to end: the poller finishes its invocations before the functions
# and moto stop.
stop_service() {
    local pidfile="$STATE/$1.pid" pid
    if [ -f "$pidfile" ]; then
        pid=$(cat "$pidfile")
        kill -- "-$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 -- "-$pid" 2>/dev/null || break
            sleep 0.2
        done
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
    stop_service trainings-poller
    stop_service export-poller
    stop_service poller
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
# Also creates the items', the exports' and the trainings' queues and their DLQs (as they are
# when they exist), and names them.
seeded=$(cargo run --quiet -p testkit --bin seed-local -- "$MOTO_URL")
echo "$seeded"
TRAINING_SET_QUEUE_URL=$(sed -n 's/^TRAINING_SET_QUEUE_URL=//p' <<<"$seeded")
TRAINING_SET_QUEUE_ARN=$(sed -n 's/^TRAINING_SET_QUEUE_ARN=//p' <<<"$seeded")
if [ -z "$TRAINING_SET_QUEUE_URL" ] || [ -z "$TRAINING_SET_QUEUE_ARN" ]; then
    echo "seed-local named no training-set queue (see above)" >&2
    exit 1
fi
EXPORT_QUEUE_URL=$(sed -n 's/^EXPORT_QUEUE_URL=//p' <<<"$seeded")
EXPORT_QUEUE_ARN=$(sed -n 's/^EXPORT_QUEUE_ARN=//p' <<<"$seeded")
if [ -z "$EXPORT_QUEUE_URL" ] || [ -z "$EXPORT_QUEUE_ARN" ]; then
    echo "seed-local named no exports' queue (see above)" >&2
    exit 1
fi
TRAINING_QUEUE_URL=$(sed -n 's/^TRAINING_QUEUE_URL=//p' <<<"$seeded")
TRAINING_QUEUE_ARN=$(sed -n 's/^TRAINING_QUEUE_ARN=//p' <<<"$seeded")
if [ -z "$TRAINING_QUEUE_URL" ] || [ -z "$TRAINING_QUEUE_ARN" ]; then
    echo "seed-local named no trainings' queue (see above)" >&2
    exit 1
fi
# The trainings' destination model and trainer version (the emulator takes any version).
LOCAL_TRAINING_DESTINATION='studio/lora-{actor_name}'
TRAINING_DESTINATION=${TRAINING_DESTINATION:-$LOCAL_TRAINING_DESTINATION}
TRAINER_VERSION=${TRAINER_VERSION:-0123abcd}

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
        REPLICATE_WEBHOOK_SECRET=$LOCAL_WEBHOOK_SECRET \
            start_service replicate target/debug/replicate-emulator --addr "127.0.0.1:$REPLICATE_PORT"
        wait_for_http "$REPLICATE_URL/admin/counts" 60
    fi
    # The emulator signs its webhooks with the local secret and posts them to the webhook
    # function; the real Replicate could not reach 127.0.0.1, so that mode only polls.
    replicate_env="REPLICATE_API_TOKEN=local-emulator-token
REPLICATE_BASE_URL=$REPLICATE_URL
REPLICATE_OUTPUT_HOSTS=127.0.0.1
REPLICATE_WEBHOOK_URL=$LAMBDA_URL/lambda-url/replicate-webhook/api/webhooks/replicate
TRAINING_SET_FIRST_CHECK_SECONDS=30"
    echo emulator >"$STATE/replicate.mode"
fi

(umask 077 && cat >"$STATE/lambda.env.new" <<ENV
AWS_ENDPOINT_URL=$MOTO_URL
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
TABLE_NAME=training-image-service
AWS_SYSTEM_ACTORS_BUCKET=story-boards-assets
# cargo lambda watch gives a function 30 s, not the template's 300: start batch jobs with 20 s left.
BATCH_JOB_MIN_SECONDS=20
# The items' queue: training-sets sends to it, training-set-worker delays and ends its messages.
TRAINING_SET_QUEUE_URL=$TRAINING_SET_QUEUE_URL
# The exports' queue: training-export sends each export to it, and is handed it back by the export poller.
EXPORT_QUEUE_URL=$EXPORT_QUEUE_URL
# The trainings' queue: trainings sends each training to it and is handed it back by the
# trainings poller; the webhook (a training's end) and the reconciler (a look due) queue too.
TRAINING_QUEUE_URL=$TRAINING_QUEUE_URL
TRAINING_DESTINATION=$TRAINING_DESTINATION
TRAINER_VERSION=$TRAINER_VERSION
# What the webhook function checks deliveries with (the emulator signs with it).
REPLICATE_WEBHOOK_SECRET=$LOCAL_WEBHOOK_SECRET
$replicate_env
ENV
)
# cargo lambda watch reads the file when it starts: one started with other settings (by an
# older version of this script, say) is started again with these.
if ! cmp -s "$STATE/lambda.env.new" "$STATE/lambda.env" && [ -f "$STATE/watch.pid" ]; then
    echo "the functions' environment changed: restarting cargo lambda watch"
    stop_service watch
    for _ in $(seq 50); do curl -s -o /dev/null "$LAMBDA_URL/" || break; sleep 0.2; done
fi
mv "$STATE/lambda.env.new" "$STATE/lambda.env"

if curl -s -o /dev/null "$LAMBDA_URL/"; then
    echo "cargo lambda watch already up at $LAMBDA_URL"
else
    echo "starting cargo lambda watch at $LAMBDA_URL (log: $STATE/watch.log)"
    start_service watch cargo lambda watch -A 127.0.0.1 -P "$LAMBDA_PORT" --env-file "$STATE/lambda.env"
    wait_for_http "$LAMBDA_URL/" 60
fi

# Lambda's SQS event source mappings cannot run locally: a poller plays each, handing its
# queue's batches to its function through cargo lambda watch's invoke API.
# start_poller NAME QUEUE_URL QUEUE_ARN FUNCTION BATCH_SIZE
start_poller() {
    if [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; then
        echo "the SQS event source poller for $4 is already up (log: $STATE/$1.log)"
    else
        echo "starting the SQS event source poller for $4 (log: $STATE/$1.log)"
        cargo build --quiet -p testkit --bin sqs-event-source
        start_service "$1" target/debug/sqs-event-source "$MOTO_URL" "$2" "$3" \
            "$LAMBDA_URL/2015-03-31/functions/$4/invocations" "$5"
    fi
}
start_poller poller "$TRAINING_SET_QUEUE_URL" "$TRAINING_SET_QUEUE_ARN" training-set-worker 10
# The exports' and the trainings' mappings take one message a batch, as the template's.
start_poller export-poller "$EXPORT_QUEUE_URL" "$EXPORT_QUEUE_ARN" training-export 1
start_poller trainings-poller "$TRAINING_QUEUE_URL" "$TRAINING_QUEUE_ARN" trainings 1

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

# A training set of 4: the 202 names its status_url, read every 2 s until the set is final.
url="$LAMBDA_URL/lambda-url/training-sets/api/actors/$SAMPLE_ACTOR/training-sets"
echo
echo "POST $url  {\"count\": 4}"
answer=$(curl -sS --max-time 900 -X POST -H 'content-type: application/json' \
    --data '{"count": 4}' "$url")
echo "$answer" | python3 -m json.tool
status_url=$(echo "$answer" | python3 -c 'import json, sys; print(json.load(sys.stdin).get("status_url", ""))')
if [ -z "$status_url" ]; then
    echo "the set was not started (see above and $STATE/watch.log)" >&2
    exit 1
fi
# The function answers its own path (`/api/actors/...`): through cargo lambda watch it is under
# the function's /lambda-url/ prefix.
case "$status_url" in
    http://* | https://*) ;;
    /lambda-url/*) status_url="$LAMBDA_URL$status_url" ;;
    *) status_url="$LAMBDA_URL/lambda-url/training-sets$status_url" ;;
esac
echo "GET $status_url  every 2 s until the set is done, failed or canceled (at most 180 s)"
python3 - "$status_url" "$MOTO_URL" "$(dirname "$manifest_key")" "$output" <<'PY'
import json, os, sys, time, urllib.error, urllib.request
import boto3  # comes with moto[server]
status_url, endpoint, folder_key, folder = sys.argv[1:5]
FINAL, LIMIT, PAUSE = ("done", "failed", "canceled"), 180, 2
started = time.monotonic()
def elapsed():
    return f"[{time.monotonic() - started:5.1f} s]"
while True:
    # A read lost to a rebuild of cargo lambda watch (it restarts the functions when a source
    # file changes, dropping the calls under way) is tried again; a 4xx is final.
    try:
        with urllib.request.urlopen(status_url, timeout=35) as answer:
            progress = json.load(answer)
    except urllib.error.HTTPError as e:
        if e.code < 500:
            sys.exit(f"GET {status_url} answered {e.code}: {e.read().decode(errors='replace')}")
        progress, reason = None, f"HTTP {e.code}"
    except (OSError, ValueError) as e:  # refused, reset, timed out, not JSON
        progress, reason = None, str(e) or type(e).__name__
    if progress is None:
        print(f"{elapsed()} GET failed ({reason}): trying again", flush=True)
        if time.monotonic() - started > LIMIT:
            sys.exit(f"no progress read within {LIMIT} s: see .local/watch.log")
        time.sleep(PAUSE)
        continue
    counts = progress["counts"]
    print(f"{elapsed()} {progress['status']:8} "
          + ", ".join(f"{name} {counts[name]}" for name in
                      ("queued", "predicting", "stored", "failed", "canceled", "uncertain"))
          + f" (of {progress['total']})", flush=True)
    if progress["status"] in FINAL:
        break
    if time.monotonic() - started > LIMIT:
        sys.exit(f"the set is not final after {LIMIT} s (status {progress['status']}): see "
                 ".local/poller.log (the invocations) and .local/watch.log (the functions). It "
                 "goes on in the background (a lost invocation's messages come back after the "
                 "queue's 180 s visibility timeout); its progress: " + status_url)
    time.sleep(PAUSE)
print()
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
for item in progress["items"]:
    line = f"  position {item['position']}: {item['state']:9} {item.get('filename') or '-'}"
    if item.get("error"):
        line += f"  ({item['error']})"
    print(line)
    if item["state"] == "stored" and item.get("filename"):
        s3.download_file("story-boards-assets", f"{folder_key}/{item['filename']}",
                         os.path.join(folder, item["filename"]))
s3.download_file("story-boards-assets", f"{folder_key}/response.json",
                 os.path.join(folder, "response.json"))
with open(os.path.join(folder, "response.json")) as manifest:
    listed = len(json.load(manifest)["images"])
stored = sum(item["state"] == "stored" for item in progress["items"])
print(f"\nsaved: the set's {stored} stored images and the updated {folder}/response.json "
      f"({listed} images listed)")
sys.exit(0 if progress["status"] == "done" else f"the set ended {progress['status']}")
PY

# The trainings function reads its settings (destination, trainer version, queues) when it
# starts: a read of a training that is not there shows it is up, and writes nothing.
url="$LAMBDA_URL/lambda-url/trainings/api/actors/$SAMPLE_ACTOR/trainings/01KBTRA1N1NG0000000000000A"
echo
echo "GET $url  (the trainings function, with its settings; no such training)"
answer=$(curl -sS --max-time 900 -w '\n%{http_code}' "$url")
status=${answer##*$'\n'}
echo "${answer%$'\n'*}"
if [ "$status" != 404 ] || ! grep -q '"training_not_found"' <<<"$answer"; then
    echo "the trainings function did not answer 404 training_not_found (HTTP $status; see $STATE/watch.log)" >&2
    exit 1
fi

echo
echo "The stack is still running: moto at $MOTO_URL, functions at $LAMBDA_URL/lambda-url/<function>/..."
echo "Run this command again for the next image and set; stop the stack with: tools/local-stack.sh down"
