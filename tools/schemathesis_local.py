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

Before the training operations (after the exports, which they use) it seeds TRAINING_ACTOR
with 10 kept images (its first POST is a 202, then 409 `training_running` while that training
lasts), and starts a training of EXPORT_READY's done export with an `Idempotency-Key` (the
repeat replayed, the key reused for another body a 422, a second training a 409, the failed
export a 409 `export_failed`), then runs it through the trainings function's queue handler:
the emulator (told to let trainings run until canceled) has it, `starting`. Beside it, it puts
one training item in each other state for TRAINED_ACTOR into the table, as the function's
DynamoDB adapter writes them: `exporting` (a cancel ends it: 202, then 409), `creating`
(cancel: 409 `training_being_created`), `processing` (its training made on the emulator
directly: a cancel reaches it, 202, then 409), `succeeded` (with its result), `failed` and
`canceled` (cancel: 409 `training_ended`). tools/schemathesis_hooks.py
steers generated `actorId`s, `trainingId`s and bodies' `export_id`s to them.

The trainings function reads its settings when it starts, from the environment
`cargo lambda watch` passes on (TRAININGS_ENV, set here before the stack starts): the
trainings' queue seed-local makes, the emulator's webhook route, a trainer version and a
destination pattern.
"""

import io
import json
import os
import re
import secrets
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
    ("trainings", "createTraining"),
    ("trainings", "getTraining"),
    ("trainings", "cancelTraining"),
    ("replicate-webhook", "receiveReplicateWebhook"),
]
SAMPLE_ACTOR = "0000_european_16_male"
EXPORT_READY = "0001_export_ready"
EXPORT_FEW = "0002_export_few_kept"
TRAINING_ACTOR = "0003_training_ready"
TRAINED_ACTOR = "0004_trained"
BUCKET = "story-boards-assets"
TABLE = "training-image-service"
# moto's account: the queue URLs it answers are {endpoint}/{account}/{name}.
ACCOUNT = "123456789012"
# The trainings' queue, as seed-local makes it (testkit::TRAINING_QUEUE).
TRAINING_QUEUE = "trainings"
TRAINER_VERSION = "0123abcd"
TRAINING_DESTINATION = "studio/lora-{actor_name}"
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LORAS = "system_actors/loras/"


def request(method, url, body=None, headers=None):
    """One JSON request: (status, headers, parsed body)."""
    data = None if body is None else json.dumps(body).encode()
    sent = urllib.request.Request(url, data=data, method=method,
                                  headers={"content-type": "application/json",
                                           **(headers or {})})
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


def run_queue(stack, function, queue, message):
    """One message handed to `function` as Lambda's SQS event source would: the answer."""
    event = {"Records": [{
        "messageId": f"schemathesis-{secrets.token_hex(8)}", "receiptHandle": "local",
        "body": json.dumps(message), "attributes": {},
        "messageAttributes": {}, "eventSource": "aws:sqs", "awsRegion": "us-east-1",
        "eventSourceARN": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue}"}]}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(event, f)
    try:
        return stack.invoke(function, f.name)
    finally:
        os.unlink(f.name)


def run_export_queue(stack, export_id):
    """The export's message handed to training-export as Lambda's SQS event source would."""
    answer = run_queue(stack, "training-export", "training-exports", {"export_id": export_id})
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


def trainings_env(stack):
    """What the trainings function needs beside the stack's environment file (cargo lambda
    watch passes its own environment on to the functions): the webhook and the reconciler
    read TRAINING_QUEUE_URL too, as deployed."""
    return {
        "TRAINING_QUEUE_URL": f"{stack.moto_url}/{ACCOUNT}/{TRAINING_QUEUE}",
        "TRAINER_VERSION": TRAINER_VERSION,
        "TRAINING_DESTINATION": TRAINING_DESTINATION,
        "REPLICATE_WEBHOOK_URL":
            f"{stack.lambda_url}/lambda-url/replicate-webhook/api/webhooks/replicate",
        # The template's defaults but the cap: the run starts a few trainings a day.
        "DAILY_TRAINING_CAP": "50",
        "TRAINING_PRICE_PER_SECOND": "0.001528",
        "TRAINING_LOCK_SECONDS": "21600",
        "TRAINING_CHECK_SECONDS": "900",
        "GENERATION_DISABLED": "false",
    }


def ulid(epoch_ms):
    """A ULID of this time (48 bits) and 80 random bits, in Crockford's base 32."""
    value = (epoch_ms << 80) | secrets.randbits(80)
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def rfc3339(epoch_s):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def training_item(actor, status, now_ms, **more):
    """A training's item as shared/src/adapters/training_records.rs writes it
    (`training_item`, then `created` and `progress` or `end`), with `more` attributes (logs,
    error, version, weights_key, predict_time, cost_usd): (its id, the item)."""
    training_id = ulid(now_ms)
    created = rfc3339(now_ms // 1000 - 3600)
    item = {
        "pk": {"S": f"TRAINING#{training_id}"}, "sk": {"S": "TRAINING"},
        "actor_id": {"S": actor}, "actor_name": {"S": actor},
        "export_id": {"S": ulid(now_ms - 3_600_000)}, "status": {"S": status},
        "trigger_word": {"S": "trained_tok"}, "destination": {"S": f"studio/lora-{actor}"},
        "requested_by": {"S": "jwt:schemathesis"}, "created_at": {"S": created},
        "budget_day": {"S": created[:10]}, "refund_token": {"S": secrets.token_hex(16)},
        "steps": {"N": "1000"}, "lora_rank": {"N": "16"},
    }
    if status not in ("exporting", "creating"):
        item["replicate_id"] = {"S": f"schemathesis{secrets.token_hex(6)}"}
    if status in ("succeeded", "failed", "canceled"):
        item["finished_at"] = {"S": rfc3339(now_ms // 1000 - 60)}
    else:
        # Open: in the open records' index until it ends.
        item["open_kind"] = {"S": "TRAINING"}
        item["held_until"] = {"N": str(now_ms + 900_000)}
    for name, value in more.items():
        value = value.format(training_id=training_id)
        item[name] = {"N": value} if re.fullmatch(r"[0-9.]+", value) else {"S": value}
    return training_id, item


def emulator(stack, method, path, body=None):
    """One call of the Replicate emulator's API: its parsed answer."""
    sent = urllib.request.Request(
        f"{stack.replicate_url}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json",
                 "authorization": "Bearer local-test-token"})
    with urllib.request.urlopen(sent, timeout=60) as answer:
        return json.load(answer)


def seed_trainings(stack, processing_replicate_id):
    """TRAINED_ACTOR's trainings in each state, the processing one being Replicate's
    `processing_replicate_id`: (state, id) each."""
    dynamodb = stack.client("dynamodb")
    now_ms = int(time.time() * 1000)
    seeded = []
    for status, more in (
            ("exporting", {}),
            ("creating", {}),
            ("processing", {"logs": "flux_train_replicate:  50/1000",
                            "replicate_id": processing_replicate_id}),
            ("succeeded", {"logs": "training succeeded: saved trained_model.tar",
                           "version": f"studio/lora-{TRAINED_ACTOR}:" + "ab" * 32,
                           "weights_key": LORAS + TRAINED_ACTOR + "/{training_id}.tar",
                           "predict_time": "1234.5", "cost_usd": "1.8863"}),
            ("failed", {"logs": "CUDA out of memory", "error": "CUDA out of memory",
                        "predict_time": "12.5", "cost_usd": "0.0191"}),
            ("canceled", {"error": "canceled before Replicate had it; nothing was billed"})):
        training_id, item = training_item(TRAINED_ACTOR, status, now_ms, **more)
        dynamodb.put_item(TableName=TABLE, Item=item,
                          ConditionExpression="attribute_not_exists(pk)")
        seeded.append((status, training_id))
    return seeded


def start_trainings(stack, exports):
    """TRAINING_ACTOR's images, a training of EXPORT_READY's done export created on the
    emulator, and TRAINED_ACTOR's trainings: the trainings to steer to, `actor:id` each."""
    sqs = stack.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=TRAINING_QUEUE)["QueueUrl"]
    assert queue_url == os.environ["TRAINING_QUEUE_URL"], (queue_url, os.environ)
    seed_export_actor(stack, TRAINING_ACTOR, ["kept"] * 10)
    done, failed = exports[0].split(":")[1], exports[1].split(":")[1]
    # The trainings the emulator creates run until they are canceled.
    with urllib.request.urlopen(f"{stack.replicate_url}/admin/faults", timeout=10) as r:
        faults = json.load(r)
    faults["training_never_finish"] = True
    urllib.request.urlopen(urllib.request.Request(
        f"{stack.replicate_url}/admin/faults", data=json.dumps(faults).encode(), method="PUT",
        headers={"content-type": "application/json"}), timeout=10).close()

    base = f"{stack.lambda_url}/lambda-url/trainings/api/actors"
    asked = {"export_id": done, "trigger_word": "zed_tok", "steps": 500}
    key = {"Idempotency-Key": f"schemathesis-training-{secrets.token_hex(4)}"}
    status, headers, started = request("POST", f"{base}/{EXPORT_READY}/trainings", asked, key)
    assert status == 202 and started["status"] == "exporting", (status, started)
    assert headers["Location"] == started["status_url"], (headers, started)
    assert started["destination"] == f"studio/lora-{EXPORT_READY}", started
    status, headers, again = request("POST", f"{base}/{EXPORT_READY}/trainings", asked, key)
    assert status == 202 and headers["idempotency-replayed"] == "true", (status, headers)
    assert again == started, (again, started)
    for actor, body, headers, expected in (
            (EXPORT_READY, {**asked, "steps": 600}, key, (422, "idempotency_key_reused")),
            (EXPORT_READY, {}, None, (409, "training_running")),
            (EXPORT_READY, {"export_id": failed}, None, (409, "export_failed")),
            (EXPORT_FEW, None, None, (422, "too_few_images")),
            (TRAINING_ACTOR, {"export_id": done}, None, (404, "export_not_found")),
            (EXPORT_READY, {"export_id": done, "trigger_word": "other_tok"}, None,
             (400, "invalid_request")),
            (EXPORT_READY, {"steps": 2}, None, (400, "invalid_request")),
            (EXPORT_READY, {"learning_rate": 0.1}, None, (400, "invalid_request"))):
        status, _, answer = request("POST", f"{base}/{actor}/trainings", body, headers)
        assert (status, answer["error"]["code"]) == expected, (actor, body, status, answer)

    training_id = started["training_id"]
    answer = run_queue(stack, "trainings", TRAINING_QUEUE, {"training_id": training_id})
    assert answer == {"batchItemFailures": []}, answer
    status, _, running = request("GET", f"{base}/{EXPORT_READY}/trainings/{training_id}")
    assert status == 200 and running["status"] in ("starting", "processing"), (status, running)
    assert running["replicate_training_id"], running
    with urllib.request.urlopen(f"{stack.replicate_url}/admin/trainings", timeout=10) as r:
        created = json.load(r)
    assert [t["destination"] for t in created] == [f"studio/lora-{EXPORT_READY}"], created
    assert created[0]["version"] == TRAINER_VERSION and created[0]["zip"]["images"] == 10, created

    # The processing one's training, made on the emulator as the function makes one (from
    # the same zip): a cancel reaches it (202), a read gets its status and logs.
    destination = f"studio/lora-{TRAINED_ACTOR}"
    owner, name = destination.split("/")
    emulator(stack, "POST", "/v1/models", {"owner": owner, "name": name,
                                           "visibility": "private", "hardware": "cpu"})
    status, _, export = request("GET", f"{stack.lambda_url}/lambda-url/training-export/api/"
                                       f"actors/{EXPORT_READY}/training-data/exports/{done}")
    assert status == 200 and export["status"] == "done", (status, export)
    remote = emulator(stack, "POST", "/v1/models/ostris/flux-dev-lora-trainer/versions/"
                                     f"{TRAINER_VERSION}/trainings",
                      {"destination": destination,
                       "input": {"input_images": export["url"], "trigger_word": "trained_tok",
                                 "steps": 1000}})
    seeded = seed_trainings(stack, remote["id"])
    for state, seeded_id in seeded:
        status, _, answer = request("GET", f"{base}/{TRAINED_ACTOR}/trainings/{seeded_id}")
        reported = {"creating": ("starting",),
                    "processing": ("starting", "processing")}.get(state, (state,))
        assert status == 200 and answer["status"] in reported, (state, status, answer)
    print(f"trainings for the training operations: {training_id} of {EXPORT_READY} "
          f"({running['status']} on the emulator as {running['replicate_training_id']}), "
          + ", ".join(f"{state} {seeded_id}" for state, seeded_id in seeded)
          + f" of {TRAINED_ACTOR}")
    return ([f"{EXPORT_READY}:{training_id}"]
            + [f"{TRAINED_ACTOR}:{seeded_id}" for _, seeded_id in seeded])


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
    stack = PrivateStack()
    # Before the stack starts: cargo lambda watch hands its environment to the functions.
    os.environ.update(trainings_env(stack))
    with stack:
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
               "PYTHONPATH": os.path.join(ROOT, "tools"),
               "SCHEMATHESIS_SAMPLE_ACTOR": SAMPLE_ACTOR}
        for function, operation in operations:
            if function == "training-sets" and "SCHEMATHESIS_TRAINING_SETS" not in env:
                env["SCHEMATHESIS_TRAINING_SETS"] = ",".join(start_training_sets(stack))
            # The trainings use the exports (their done and failed exports, their actors).
            exports_needed = function in ("training-export", "trainings")
            if exports_needed and "SCHEMATHESIS_EXPORTS" not in env:
                env["SCHEMATHESIS_EXPORTS"] = ",".join(start_exports(stack))
                env["SCHEMATHESIS_EXPORT_ACTORS"] = f"{EXPORT_READY},{EXPORT_FEW}"
            if function == "trainings" and "SCHEMATHESIS_TRAININGS" not in env:
                exports = env["SCHEMATHESIS_EXPORTS"].split(",")
                env["SCHEMATHESIS_TRAININGS"] = ",".join(start_trainings(stack, exports))
                env["SCHEMATHESIS_TRAINING_ACTORS"] = f"{TRAINING_ACTOR},{EXPORT_READY}"
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
