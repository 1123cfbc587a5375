"""The API contract (docs/openapi.yaml) against the running functions: schemathesis sends a
bounded number of generated requests (valid and invalid) to each operation, served by
`cargo lambda watch` on a private stack, and fails on any 5xx or any answer (status, headers,
content type, body) that the contract does not describe.

Before the training-set operations it starts two sets of the sample actor (their items stay
queued: nothing polls the queue locally), which tools/schemathesis_hooks.py steers part of
the generated `setId`s to: the first is read and retried (200, nothing failed to retry), the
second also canceled (cancel runs before retry, so retry then finds it canceled: 409).
"""

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

from private_stack import ROOT, PrivateStack

CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
])
OPERATIONS = [
    ("training-prompts", "listTrainingPrompts"),
    ("generate-single", "generateSingleTrainingImage"),
    ("training-data", "listTrainingData"),
    ("training-data", "decideTrainingImage"),
    ("training-sets", "createTrainingSet"),
    ("training-sets", "listTrainingSets"),
    ("training-sets", "getTrainingSet"),
    ("training-sets", "cancelTrainingSet"),
    ("training-sets", "retryTrainingSet"),
    ("replicate-webhook", "receiveReplicateWebhook"),
]
SAMPLE_ACTOR = "0000_european_16_male"


def request(method, url, body=None):
    """One JSON request: (status, headers, parsed body)."""
    data = None if body is None else json.dumps(body).encode()
    sent = urllib.request.Request(url, data=data, method=method,
                                  headers={"content-type": "application/json"})
    try:
        # The first request to a function waits for cargo lambda watch to build it.
        with urllib.request.urlopen(sent, timeout=900) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.load(error)


def start_training_sets(stack):
    """Two sets of the sample actor, for the set operations: their ids."""
    url = f"{stack.lambda_url}/lambda-url/training-sets/api/actors/{SAMPLE_ACTOR}/training-sets"
    ids = []
    for body in ({"count": 2}, {"items": [{"prompt_id": "bw_charcoal", "seed": 7}]}):
        status, headers, answer = request("POST", url, body)
        assert status == 202, (status, answer)
        assert headers["Location"] == answer["status_url"], (headers, answer)
        ids.append(answer["set_id"])
    print(f"training sets of {SAMPLE_ACTOR} for the set operations: {', '.join(ids)}")
    return ids


def run(stack, function, operation, examples, env):
    """One operation's schemathesis run: (exit code, its "Test cases" line, seconds)."""
    started = time.monotonic()
    process = subprocess.Popen(
        ["st", "run", "docs/openapi.yaml",
         "--url", f"{stack.lambda_url}/lambda-url/{function}",
         "--include-operation-id", operation,
         "--checks", CHECKS,
         "--max-examples", examples,
         "--seed", "20261128",
         "--generation-database", "none",
         "--request-timeout", "60",
         "-H", "Authorization: Bearer local-test-token"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cases = "no test cases line"
    for line in process.stdout:
        print(line, end="", flush=True)
        if re.match(r"\s*\d+ generated", line):
            cases = line.strip()
    return process.wait(), cases, time.monotonic() - started


def main():
    examples = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "40")
    # SCHEMATHESIS_OPERATIONS=id,id,... runs only those operations (by hand).
    only = [o for o in os.environ.get("SCHEMATHESIS_OPERATIONS", "").split(",") if o]
    operations = [(f, o) for f, o in OPERATIONS if not only or o in only]
    results = []
    with PrivateStack() as stack:
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
               "PYTHONPATH": os.path.join(ROOT, "tools"),
               "SCHEMATHESIS_SAMPLE_ACTOR": SAMPLE_ACTOR}
        for function, operation in operations:
            if function == "training-sets" and "SCHEMATHESIS_TRAINING_SETS" not in env:
                env["SCHEMATHESIS_TRAINING_SETS"] = ",".join(start_training_sets(stack))
            code, cases, seconds = run(stack, function, operation, examples, env)
            print(f"schemathesis {operation}: exit {code}")
            results.append((operation, code, cases, seconds))
    failed = sum(code != 0 for _, code, _, _ in results)
    for operation, code, cases, seconds in results:
        print(f"  {operation:28} {'passed' if code == 0 else 'FAILED':6} {seconds:5.0f} s  {cases}")
    print(f"schemathesis: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
