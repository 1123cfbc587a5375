"""A private local stack for one test run: moto, the Replicate emulator and
`cargo lambda watch`, each on a free loopback port, seeded with the sample actor, the
training sets' queue and the exports' queue, and stopped (by their own process groups) when the `with` block ends.

    with PrivateStack() as stack:
        stack.lambda_url   # http://127.0.0.1:PORT
        stack.invoke("training-prompts", "events/training-prompts-http-v2.json")

`cargo lambda watch` runs with `--ignore-changes`: each function is built once, at its first
invocation, and is not rebuilt (and its in-flight request killed) when a source file changes
during the run. Nothing polls the queues: a training set's items and the exports stay
queued (an export is run by invoking training-export with an SQS event, as
tools/schemathesis_local.py does).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The items' queue, named as the test kit names it (testkit::TRAINING_SET_QUEUE).
TRAINING_SET_QUEUE = "training-sets"
# The exports' queue and its dead-letter queue (testkit::EXPORT_QUEUE, testkit::EXPORT_DLQ),
# with the template's settings: 6 x 300 s invisible, 3 deliveries.
EXPORT_QUEUE = "training-exports"
EXPORT_DLQ = "training-exports-dlq"
# The local stack's webhook signing secret (the emulator signs with it, the function checks).
WEBHOOK_SECRET = "whsec_bG9jYWwtc3RhY2std2ViaG9vay1zaWduaW5nLXNlY3JldCEh"


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


class PrivateStack:
    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="stack-")
        self.moto_url = f"http://127.0.0.1:{free_port()}"
        self.replicate_url = f"http://127.0.0.1:{free_port()}"
        self.lambda_port = free_port()
        self.lambda_url = f"http://127.0.0.1:{self.lambda_port}"
        self.training_set_queue_url = None
        self.export_queue_url = None
        self.services = []

    def _start(self, name, args, env=None):
        log = open(os.path.join(self.work, f"{name}.log"), "w")
        self.services.append(subprocess.Popen(
            args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=ROOT, env=env))

    def __enter__(self):
        try:
            self._start("moto", ["moto_server", "-H", "127.0.0.1", "-p",
                                 self.moto_url.rsplit(":", 1)[1]])
            wait_for_http(f"{self.moto_url}/moto-api/", 60)
            subprocess.run(["cargo", "run", "--quiet", "-p", "testkit", "--bin", "seed-local",
                            "--", self.moto_url], cwd=ROOT, check=True)
            self.training_set_queue_url = self._training_set_queue()
            self.export_queue_url = self._export_queue()
            subprocess.run(["cargo", "build", "--quiet", "-p", "replicate-emulator"],
                           cwd=ROOT, check=True)
            self._start("replicate", ["target/debug/replicate-emulator", "--addr",
                                      self.replicate_url.removeprefix("http://")],
                        env={**os.environ, "REPLICATE_WEBHOOK_SECRET": WEBHOOK_SECRET})
            wait_for_http(f"{self.replicate_url}/admin/counts", 60)
            env_file = os.path.join(self.work, "lambda.env")
            with open(env_file, "w") as f:
                f.write(f"AWS_ENDPOINT_URL={self.moto_url}\nAWS_REGION=us-east-1\n"
                        "AWS_ACCESS_KEY_ID=testing\nAWS_SECRET_ACCESS_KEY=testing\n"
                        "TABLE_NAME=training-image-service\n"
                        "AWS_SYSTEM_ACTORS_BUCKET=story-boards-assets\n"
                        # cargo lambda watch gives a function 30 s, not the template's 300.
                        "BATCH_JOB_MIN_SECONDS=20\n"
                        f"REPLICATE_BASE_URL={self.replicate_url}\n"
                        "REPLICATE_API_TOKEN=local-test-token\n"
                        "REPLICATE_OUTPUT_HOSTS=127.0.0.1\n"
                        # Read by training-sets (at its start) and the worker only.
                        f"TRAINING_SET_QUEUE_URL={self.training_set_queue_url}\n"
                        # Read by training-export (at its start): it queues each export.
                        f"EXPORT_QUEUE_URL={self.export_queue_url}\n"
                        # The emulator's signing secret, for the webhook function.
                        f"REPLICATE_WEBHOOK_SECRET={WEBHOOK_SECRET}\n")
            self._start("watch", ["cargo", "lambda", "watch", "--ignore-changes",
                                  "-A", "127.0.0.1", "-P", str(self.lambda_port),
                                  "--env-file", env_file])
            wait_for_http(f"{self.lambda_url}/", 60)
            return self
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise

    def client(self, service):
        """A boto3 client of moto (boto3 is in tools/requirements-dev.txt, in .venv/)."""
        import boto3

        return boto3.client(service, endpoint_url=self.moto_url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def _training_set_queue(self):
        """The items' queue on moto (made when the seeding did not make it): its URL."""
        sqs = self.client("sqs")
        try:
            return sqs.get_queue_url(QueueName=TRAINING_SET_QUEUE)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            return sqs.create_queue(QueueName=TRAINING_SET_QUEUE)["QueueUrl"]

    def _export_queue(self):
        """The exports' queue on moto, with its dead-letter queue: its URL."""
        sqs = self.client("sqs")
        dlq_url = sqs.create_queue(QueueName=EXPORT_DLQ)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(
            QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return sqs.create_queue(QueueName=EXPORT_QUEUE, Attributes={
            "VisibilityTimeout": "1800",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": 3}),
        })["QueueUrl"]

    def invoke(self, function, event_file):
        """`cargo lambda invoke` with an event file; the parsed answer (its body for HTTP)."""
        out = subprocess.run(
            ["cargo", "lambda", "invoke", function, "--invoke-address", "127.0.0.1",
             "--invoke-port", str(self.lambda_port), "--data-file", event_file],
            cwd=ROOT, check=True, capture_output=True, text=True)
        answer = json.loads(out.stdout)
        if "statusCode" in answer:
            assert answer["statusCode"] == 200, answer
            return json.loads(answer["body"])
        return answer

    def __exit__(self, kind, error, trace):
        if kind is not None:
            for name in ("moto", "replicate", "watch"):
                path = os.path.join(self.work, f"{name}.log")
                if os.path.exists(path):
                    print(f"--- {name}.log (tail)", file=sys.stderr)
                    print("".join(open(path).readlines()[-30:]), file=sys.stderr)
        for service in self.services:
            try:
                os.killpg(service.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            service.wait(timeout=30)
        if kind is not None:
            print(f"the stack's logs are in {self.work}", file=sys.stderr)
        return False
