# Sourced by the tools/ scripts: installs the Python-packaged tools the local stack and the
# tests need (moto server, cargo-lambda, cfn-lint, aws-sam-cli with the Lambda runtime
# interface emulator) when they are missing, and puts them on PATH.

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tools/requirements-dev.txt
PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
AWS_LAMBDA_RIE="$(python3 -c 'import os, samcli; print(os.path.dirname(samcli.__file__))')/local/rapid/aws-lambda-rie-x86_64"
export PATH AWS_LAMBDA_RIE
export SAM_CLI_TELEMETRY=0

# A TCP port that was free on 127.0.0.1 a moment ago.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until `curl` gets any answer from URL, for at most SECONDS.
wait_for_http() {
    local url=$1 seconds=$2 waited=0
    until curl -s -o /dev/null "$url"; do
        sleep 1
        waited=$((waited + 1))
        if [ "$waited" -ge "$seconds" ]; then
            echo "no answer from $url after ${seconds}s" >&2
            return 1
        fi
    done
}
