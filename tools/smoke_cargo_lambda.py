"""End to end through cargo-lambda, as a newcomer would run the service.

On a private stack (tools/private_stack.py) it checks that:
  - the HTTP API v2 and REST v1 events in events/ give the same prompts through
    `cargo lambda invoke`;
  - over HTTP, a profile that says male gives "man", an id ending in `_female` with no profile
    gives "woman" (source "name"), and an unknown id gives "person" (source "default");
  - every generate-single event in events/ (HTTP v2, REST v1, direct, EventBridge, batch)
    generates through `cargo lambda invoke`, numbered 1 to 7 in order.
"""

import json
import urllib.request

from private_stack import PrivateStack


def check_prompts(body, actor_id, descriptor, source):
    assert body["actor_id"] == actor_id, body
    assert (body["descriptor"], body["descriptor_source"]) == (descriptor, source), body
    assert len(body["prompts"]) == 8, body
    for prompt in body["prompts"]:
        assert f"the {descriptor}" in prompt["prompt"], prompt


def main():
    with PrivateStack() as stack:
        v2 = stack.invoke("training-prompts", "events/training-prompts-http-v2.json")
        v1 = stack.invoke("training-prompts", "events/training-prompts-rest-v1.json")
        check_prompts(v2, "0000_european_16_male", "man", "profile")
        assert v1 == v2, "the REST v1 and HTTP v2 events gave different answers"
        print("cargo lambda invoke: v1 and v2 events give the same 8 prompts")

        for actor_id, descriptor, source in [
            ("0000_european_16_male", "man", "profile"),
            ("0000_european_16_female", "woman", "name"),
            ("unknown_actor_42", "person", "default"),
        ]:
            url = (f"{stack.lambda_url}/lambda-url/training-prompts/api/actors/"
                   f"{actor_id}/training-prompts")
            with urllib.request.urlopen(url, timeout=900) as response:
                check_prompts(json.load(response), actor_id, descriptor, source)
            print(f"GET {actor_id}: {descriptor} ({source})")

        indices = []
        for name in ("http-v2", "rest-v1", "direct", "eventbridge"):
            answer = stack.invoke("generate-single", f"events/generate-single-{name}.json")
            assert answer.get("success") is True, (name, answer)
            indices.append(answer["index"])
            print(f"generate-single {name}: {answer['filename']}")
        batch = stack.invoke("generate-single", "events/generate-single-batch.json")
        assert batch["succeeded"] == 3, batch
        indices += [result["index"] for result in batch["results"]]
        print(f"generate-single batch: {batch['succeeded']} images")
        assert indices == list(range(1, 8)), indices
        print("smoke: 10 passed, 0 failed")


if __name__ == "__main__":
    main()
