# Sourced by the tools/ scripts: installs the Python-packaged tools the local stack and the
# tests need (moto server, cargo-lambda, cfn-lint, aws-sam-cli with the Lambda runtime
# interface emulator, schemathesis) into the project's own virtual environment, `.venv/`
# (ignored by git), and puts it first on PATH. The user's own Python is never touched: pip
# runs only inside the environment, and only when tools/requirements-dev.txt changed since
# the last install.

unset PYTHONHOME
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VIRTUAL_ENV="$PROJECT_ROOT/.venv"
# A half-made environment (a `venv` that failed before pip was in) is made again.
if [ ! -x "$VIRTUAL_ENV/bin/pip" ]; then
    echo "creating the project's Python environment in .venv/" >&2
    rm -rf "$VIRTUAL_ENV"
    if ! python3 -m venv "$VIRTUAL_ENV"; then
        rm -rf "$VIRTUAL_ENV"
        echo "python3 -m venv failed: install Python's venv module (on Debian: apt-get install python3-venv)" >&2
        return 1 2>/dev/null || exit 1
    fi
fi
requirements="$PROJECT_ROOT/tools/requirements-dev.txt"
installed_stamp="$VIRTUAL_ENV/.requirements-dev.txt"
if ! cmp -s "$requirements" "$installed_stamp"; then
    echo "installing tools/requirements-dev.txt into .venv/" >&2
    "$VIRTUAL_ENV/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$installed_stamp"
fi
PATH="$VIRTUAL_ENV/bin:$PATH"
AWS_LAMBDA_RIE="$("$VIRTUAL_ENV/bin/python3" -c 'import os, samcli; print(os.path.dirname(samcli.__file__))')/local/rapid/aws-lambda-rie-x86_64"
export PATH VIRTUAL_ENV AWS_LAMBDA_RIE
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
