"""The API contract (docs/openapi.yaml) against the running functions: schemathesis sends a
bounded number of generated requests (valid and invalid) to each operation, served by
`cargo lambda watch` on a private stack, and fails on any 5xx or any answer (status, headers,
content type, body) that the contract does not describe.
"""

import os
import subprocess
import sys

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
]


def main():
    examples = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "40")
    failed = 0
    with PrivateStack() as stack:
        for function, operation in OPERATIONS:
            result = subprocess.run(
                ["st", "run", "docs/openapi.yaml",
                 "--url", f"{stack.lambda_url}/lambda-url/{function}",
                 "--include-operation-id", operation,
                 "--checks", CHECKS,
                 "--max-examples", examples,
                 "--seed", "20261128",
                 "--generation-database", "none",
                 "--request-timeout", "60",
                 "-H", "Authorization: Bearer local-test-token"],
                cwd=ROOT,
                env={**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
                     "PYTHONPATH": os.path.join(ROOT, "tools")})
            print(f"schemathesis {operation}: exit {result.returncode}")
            failed += result.returncode != 0
    print(f"schemathesis: {len(OPERATIONS) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
