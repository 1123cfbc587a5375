"""The seed's approach, for the benchmark's comparison: one Python process per request.

What the original `scripts/generate_single_training_image.py` did, written plainly: load boto3
and requests, read the base photo from S3 and encode it as base64, call Replicate's
flux-kontext-pro (waiting, then polling), save the image locally under the next free index,
upload it, and rewrite the actor's `response.json` manifest.

Configuration comes from the environment (AWS_ENDPOINT_URL, BUCKET, REPLICATE_BASE_URL,
REPLICATE_API_TOKEN) and the arguments; it prints the result as JSON.
"""

import argparse
import base64
import datetime
import json
import os
import sys
import time

import boto3
import requests

MODEL = "black-forest-labs/flux-kontext-pro"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--actor-name", required=True)
    parser.add_argument("--base-image-key", required=True)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--save-dir", required=True)
    args = parser.parse_args()
    bucket = os.environ["BUCKET"]
    replicate = os.environ["REPLICATE_BASE_URL"].rstrip("/")
    token = os.environ["REPLICATE_API_TOKEN"]
    s3 = boto3.client("s3")

    base = s3.get_object(Bucket=bucket, Key=args.base_image_key)["Body"].read()
    data_uri = "data:image/jpeg;base64," + base64.b64encode(base).decode("ascii")
    model_input = {
        "prompt": args.prompt,
        "input_image": data_uri,
        "aspect_ratio": "match_input_image",
        "output_format": "jpg",
    }
    if args.seed is not None:
        model_input["seed"] = args.seed
    headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=60"}
    response = requests.post(
        f"{replicate}/v1/models/{MODEL}/predictions",
        headers=headers,
        json={"input": model_input},
        timeout=70,
    )
    response.raise_for_status()
    prediction = response.json()
    while prediction["status"] not in ("succeeded", "failed", "canceled"):
        time.sleep(1)
        prediction = requests.get(
            prediction["urls"]["get"], headers=headers, timeout=30
        ).json()
    if prediction["status"] != "succeeded":
        sys.exit(f"prediction {prediction['id']} {prediction['status']}: {prediction.get('error')}")
    output = prediction["output"]
    url = output[0] if isinstance(output, list) else output
    image = requests.get(url, timeout=60).content

    folder = os.path.join(args.save_dir, args.actor_name)
    os.makedirs(folder, exist_ok=True)
    index = len([name for name in os.listdir(folder) if name.endswith(".jpg")]) + 1
    filename = f"{args.actor_name}_{index}.jpg"
    with open(os.path.join(folder, filename), "wb") as file:
        file.write(image)

    prefix = f"system_actors/training_data/{args.actor_name}/"
    key = prefix + filename
    s3.put_object(Bucket=bucket, Key=key, Body=image, ContentType="image/jpeg")
    try:
        manifest = json.loads(
            s3.get_object(Bucket=bucket, Key=prefix + "response.json")["Body"].read()
        )
    except s3.exceptions.NoSuchKey:
        manifest = {"actor_name": args.actor_name, "images": []}
    manifest.setdefault("images", []).append(
        {
            "index": index,
            "filename": filename,
            "s3_key": key,
            "prompt": args.prompt,
            "seed": args.seed,
            "prediction_id": prediction["id"],
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
    )
    s3.put_object(
        Bucket=bucket,
        Key=prefix + "response.json",
        Body=json.dumps(manifest, indent=2).encode(),
        ContentType="application/json",
    )
    print(json.dumps({"success": True, "s3_key": key, "index": index}))


if __name__ == "__main__":
    main()
