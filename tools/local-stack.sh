#!/usr/bin/env bash
# The local stack, with no AWS account and no internet:
#   moto server (S3 and DynamoDB) on 127.0.0.1:$MOTO_PORT, with the table, the bucket and the
#   sample actor seeded, and every function served by `cargo lambda watch` on
#   127.0.0.1:$LAMBDA_PORT. Then it shows the service at work: the training prompts of the
#   sample actor, fetched over HTTP from the running function.
#
#   tools/local-stack.sh         start (or reuse) the stack and show the prompts
#   tools/local-stack.sh down    stop what `up` started
#
# State (PIDs, logs, the functions' environment) lives in .local/.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_PORT=${MOTO_PORT:-5005}
LAMBDA_PORT=${LAMBDA_PORT:-9000}
SAMPLE_ACTOR=0000_european_16_male
STATE=.local
MOTO_URL="http://127.0.0.1:$MOTO_PORT"
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

cat >"$STATE/lambda.env" <<ENV
AWS_ENDPOINT_URL=$MOTO_URL
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
TABLE_NAME=training-image-service
AWS_SYSTEM_ACTORS_BUCKET=story-boards-assets
ENV

if curl -s -o /dev/null "$LAMBDA_URL/"; then
    echo "cargo lambda watch already up at $LAMBDA_URL"
else
    echo "starting cargo lambda watch at $LAMBDA_URL (log: $STATE/watch.log)"
    start_service watch cargo lambda watch -A 127.0.0.1 -P "$LAMBDA_PORT" --env-file "$STATE/lambda.env"
    wait_for_http "$LAMBDA_URL/" 60
fi

url="$LAMBDA_URL/lambda-url/list-prompts/api/actors/$SAMPLE_ACTOR/training-prompts"
echo "GET $url  (the first call compiles the function)"
curl -fsS --max-time 900 "$url" | python3 -c "
import json, sys
answer = json.load(sys.stdin)
print('actor {actor_id}: descriptor \"{descriptor}\" (from {descriptor_source})'.format(**answer))
for prompt in answer['prompts']:
    print('\n[{category_label}] {id}: {label}\n  {prompt}'.format(**prompt))
"
echo
echo "The stack is still running: moto at $MOTO_URL, functions at $LAMBDA_URL/lambda-url/<function>/..."
echo "Stop it with: tools/local-stack.sh down"
