"""End to end through cargo-lambda, as a newcomer would run the service.

Starts a private moto server, the Replicate emulator and `cargo lambda watch` on free
loopback ports, seeds them, then checks that:
  - the HTTP API v2 and REST v1 events in events/ give the same prompts through
    `cargo lambda invoke`;
  - over HTTP, a profile that says male gives "man", an id ending in `_female` with no profile
    gives "woman" (source "name"), and an unknown id gives "person" (source "default");
  - every generate-single event in events/ (HTTP v2, REST v1, direct, EventBridge, batch)
    generates through `cargo lambda invoke`, numbered 1 to 7 in order.
Stops both services (by their own process groups) whatever happens.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"no answer from {url} after {seconds}s")


def start(args, log_path, **kwargs):
    log = open(log_path, "w")
    return subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                            start_new_session=True, cwd=ROOT, **kwargs)


def invoke(function, event_file, port):
    out = subprocess.run(
        ["cargo", "lambda", "invoke", function, "--invoke-address", "127.0.0.1",
         "--invoke-port", str(port), "--data-file", event_file],
        cwd=ROOT, check=True, capture_output=True, text=True)
    answer = json.loads(out.stdout)
    if "statusCode" in answer:
        assert answer["statusCode"] == 200, answer
        return json.loads(answer["body"])
    return answer


def check_prompts(body, actor_id, descriptor, source):
    assert body["actor_id"] == actor_id, body
    assert (body["descriptor"], body["descriptor_source"]) == (descriptor, source), body
    assert len(body["prompts"]) == 8, body
    for prompt in body["prompts"]:
        assert f"the {descriptor}" in prompt["prompt"], prompt


def main():
    work = tempfile.mkdtemp(prefix="smoke-")
    moto_port, lambda_port, replicate_port = free_port(), free_port(), free_port()
    moto_url = f"http://127.0.0.1:{moto_port}"
    services = []
    try:
        services.append(start(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
                              f"{work}/moto.log"))
        wait_for_http(f"{moto_url}/moto-api/", 60)
        subprocess.run(["cargo", "run", "--quiet", "-p", "testkit", "--bin", "seed-local",
                        "--", moto_url], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--quiet", "-p", "replicate-emulator"], cwd=ROOT,
                       check=True)
        services.append(start(["target/debug/replicate-emulator", "--addr",
                               f"127.0.0.1:{replicate_port}"], f"{work}/replicate.log"))
        wait_for_http(f"http://127.0.0.1:{replicate_port}/admin/counts", 60)
        env_file = f"{work}/lambda.env"
        with open(env_file, "w") as f:
            f.write(f"AWS_ENDPOINT_URL={moto_url}\nAWS_REGION=us-east-1\n"
                    "AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n"
                    "TABLE_NAME=training-image-service\n"
                    "AWS_SYSTEM_ACTORS_BUCKET=story-boards-assets\n"
                    f"REPLICATE_BASE_URL=http://127.0.0.1:{replicate_port}\n"
                    "REPLICATE_API_TOKEN=smoke-test-token\nREPLICATE_OUTPUT_HOSTS=127.0.0.1\n")
        services.append(start(["cargo", "lambda", "watch", "-A", "127.0.0.1", "-P",
                               str(lambda_port), "--env-file", env_file], f"{work}/watch.log"))
        wait_for_http(f"http://127.0.0.1:{lambda_port}/", 60)

        v2 = invoke("list-prompts", "events/list-prompts-http-v2.json", lambda_port)
        v1 = invoke("list-prompts", "events/list-prompts-rest-v1.json", lambda_port)
        check_prompts(v2, "0000_european_16_male", "man", "profile")
        assert v1 == v2, "the REST v1 and HTTP v2 events gave different answers"
        print("cargo lambda invoke: v1 and v2 events give the same 8 prompts")

        for actor_id, descriptor, source in [
            ("0000_european_16_male", "man", "profile"),
            ("0000_european_16_female", "woman", "name"),
            ("unknown_actor_42", "person", "default"),
        ]:
            url = (f"http://127.0.0.1:{lambda_port}/lambda-url/list-prompts/api/actors/"
                   f"{actor_id}/training-prompts")
            with urllib.request.urlopen(url, timeout=900) as response:
                check_prompts(json.load(response), actor_id, descriptor, source)
            print(f"GET {actor_id}: {descriptor} ({source})")

        indices = []
        for name in ("http-v2", "rest-v1", "direct", "eventbridge"):
            answer = invoke("generate-single", f"events/generate-single-{name}.json", lambda_port)
            assert answer.get("success") is True, (name, answer)
            indices.append(answer["index"])
            print(f"generate-single {name}: {answer['filename']}")
        batch = invoke("generate-single", "events/generate-single-batch.json", lambda_port)
        assert batch["succeeded"] == 3, batch
        indices += [result["index"] for result in batch["results"]]
        print(f"generate-single batch: {batch['succeeded']} images")
        assert indices == list(range(1, 8)), indices
        print("smoke: 10 passed, 0 failed")
    except BaseException:
        for name in ("moto", "replicate", "watch"):
            path = f"{work}/{name}.log"
            if os.path.exists(path):
                print(f"--- {name}.log (tail)", file=sys.stderr)
                print("".join(open(path).readlines()[-30:]), file=sys.stderr)
        raise
    finally:
        for service in services:
            try:
                os.killpg(service.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            service.wait(timeout=30)


if __name__ == "__main__":
    main()
