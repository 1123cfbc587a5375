"""The API contract (docs/openapi.yaml) against the running functions: schemathesis sends a
bounded number of generated requests (valid and invalid) to each operation, served by
`cargo lambda watch` on a private stack, and fails on any 5xx or any answer (status, headers,
content type, body) that the contract does not describe.

Before the training-set operations it starts two sets of the sample actor (their items stay
queued: nothing polls the queue locally), which tools/schemathesis_hooks.py steers part of
the generated `setId`s to: the first is read and retried (200, nothing failed to retry), the
second also canceled (cancel runs before retry, so retry then finds it canceled: 409).

Before the export operations it seeds two actors' manifests (no profiles): EXPORT_READY, 10
kept images (their objects stored), one undecided whose object is missing and one rejected;
EXPORT_FEW, 9 kept and 2 undecided. So `include: kept` is a 202 for the first and a 422
`too_few_images` for the second, `not_rejected` a 202 for both, and any other actor a 422
(no manifest), at the default EXPORT_MIN_IMAGES of 10. It then starts three exports and runs
two of them through the function's queue handler (an SQS event, as Lambda's event source
mapping delivers it): one done (its zip downloaded and opened), one failed (the missing
image), one left running; tools/schemathesis_hooks.py steers generated `actorId`s and
`exportId`s to them.
"""

import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile

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
    ("training-export", "createTrainingExport"),
    ("training-export", "getTrainingExport"),
    ("replicate-webhook", "receiveReplicateWebhook"),
]
SAMPLE_ACTOR = "0000_european_16_male"
EXPORT_READY = "0001_export_ready"
EXPORT_FEW = "0002_export_few_kept"
BUCKET = "story-boards-assets"


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


def seed_export_actor(stack, actor, statuses, missing=()):
    """A manifest for `actor` listing one image per status (`{actor}_{n}.jpg`, n from 1), each
    stored unless its number is in `missing`, with the statuses in its curation map."""
    s3 = stack.client("s3")
    folder = f"system_actors/training_data/{actor}/"
    entries, curation = [], {}
    for n, status in enumerate(statuses, start=1):
        filename = f"{actor}_{n}.jpg"
        if n not in missing:
            # Bytes that start and end as a JPEG: the export copies them, it never decodes.
            body = b"\xff\xd8\xff\xe0" + bytes([n]) * 512 + b"\xff\xd9"
            s3.put_object(Bucket=BUCKET, Key=folder + filename, Body=body,
                          ContentType="image/jpeg")
        entries.append({"index": n, "filename": filename, "s3_key": folder + filename,
                        "prompt_id": "bw_pen_ink", "seed": 100 + n,
                        "caption": f"[trigger], ink sketch {n}, plain background",
                        "prediction_id": f"pred-{n}", "created_at": "2026-12-03T10:00:00Z"})
        if status != "new":
            curation[filename] = {"status": status}
    manifest = {"actor": actor, "images": entries, "curation": curation}
    s3.put_object(Bucket=BUCKET, Key=folder + "response.json",
                  Body=json.dumps(manifest).encode(), ContentType="application/json")


def run_export_queue(stack, export_id):
    """The export's message handed to training-export as Lambda's SQS event source would."""
    event = {"Records": [{
        "messageId": f"schemathesis-{export_id}", "receiptHandle": "local",
        "body": json.dumps({"export_id": export_id}), "attributes": {},
        "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:training-exports"}]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(event, f)
    try:
        answer = stack.invoke("training-export", f.name)
    finally:
        os.unlink(f.name)
    assert answer == {"batchItemFailures": []}, answer


def start_exports(stack):
    """The two export actors, a done, a failed and a running export: `actor:id` each."""
    seed_export_actor(stack, EXPORT_READY, ["kept"] * 10 + ["new", "rejected"], missing={11})
    seed_export_actor(stack, EXPORT_FEW, ["kept"] * 9 + ["new", "new"])
    base = f"{stack.lambda_url}/lambda-url/training-export/api/actors"
    status, _, answer = request("POST", f"{base}/{EXPORT_FEW}/training-data/exports", {})
    assert status == 422 and answer["error"]["code"] == "too_few_images", (status, answer)
    # Schemathesis sends no body over the 4 KiB cap.
    status, _, answer = request("POST", f"{base}/{EXPORT_READY}/training-data/exports",
                                {"trigger_word": "x" * 5000})
    assert status == 413 and answer["error"]["code"] == "body_too_large", (status, answer)
    started = []
    for actor, body in ((EXPORT_READY, {"include": "kept", "trigger_word": "zed_tok"}),
                        (EXPORT_READY, {"include": "not_rejected"}),
                        (EXPORT_FEW, {"include": "not_rejected"})):
        status, headers, answer = request("POST", f"{base}/{actor}/training-data/exports", body)
        assert status == 202, (status, answer)
        assert headers["Location"] == answer["status_url"], (headers, answer)
        started.append((actor, answer["export_id"]))
    for _, export_id in started[:2]:
        run_export_queue(stack, export_id)
    ended = []
    for (actor, export_id), expected in zip(started, ("done", "failed", "running")):
        status, _, answer = request("GET", f"{base}/{actor}/training-data/exports/{export_id}")
        assert status == 200 and answer["status"] == expected, (expected, status, answer)
        ended.append(answer)
    done, failed = ended[0], ended[1]
    with urllib.request.urlopen(done["url"], timeout=60) as response:
        names = zipfile.ZipFile(io.BytesIO(response.read())).namelist()
    expected = {f"{EXPORT_READY}_{n}.{ext}" for n in range(1, 11) for ext in ("jpg", "txt")}
    assert set(names) == expected | {"dataset.json"} and done["count"] == 10, (names, done)
    assert f"{EXPORT_READY}_11.jpg" in failed["error"], failed
    print(f"exports for the export operations: done {started[0][1]} ({done['size']} bytes, "
          f"{done['count']} images), failed {started[1][1]}, running {started[2][1]}")
    return [f"{actor}:{export_id}" for actor, export_id in started]


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
            if function == "training-export" and "SCHEMATHESIS_EXPORTS" not in env:
                env["SCHEMATHESIS_EXPORTS"] = ",".join(start_exports(stack))
                env["SCHEMATHESIS_EXPORT_ACTORS"] = f"{EXPORT_READY},{EXPORT_FEW}"
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
