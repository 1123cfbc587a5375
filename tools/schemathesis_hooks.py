"""Schemathesis hooks for the local run (loaded through SCHEMATHESIS_HOOKS).

`cargo lambda watch`, the local stand-in for API Gateway, answers 500 by itself, without
invoking the function, to a header or a body whose bytes are not UTF-8. Those cases test the
emulator, not the service, so they are skipped; every other generated case, valid or not, is
sent. (The function's own handling of a non-UTF-8 body, a 400, is tested under the runtime
interface emulator in functions/generate-single/tests/e2e.rs.)

Before each request (every phase), the training-set operations are steered to what exists,
so that their answers are not all 404s: a valid `actorId` becomes the sample actor for half
of the values generated, and a valid `setId` one of the sets tools/schemathesis_local.py
made for the sample actor (SCHEMATHESIS_TRAINING_SETS: the set kept, then the set to cancel)
for two thirds of them. cancel is steered to the set to cancel only, so the kept set stays
uncanceled for retry. The choice is a CRC-32 of the generated value: the same cases for the
same seed. Invalid values are sent as generated.
"""

import os
import re
import zlib

import schemathesis

SAMPLE_ACTOR = os.environ.get("SCHEMATHESIS_SAMPLE_ACTOR", "0000_european_16_male")
SETS = [s for s in os.environ.get("SCHEMATHESIS_TRAINING_SETS", "").split(",") if s]
# The id rules of shared/src/domain/actor.rs and shared/src/domain/training_set.rs.
ACTOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
SET_ID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


def _utf8(value):
    if isinstance(value, (bytes, bytearray)):
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


def _pick(value, choices):
    """A choice among `choices` that depends only on `value`."""
    return zlib.crc32(repr(value).encode("utf-8")) % choices


@schemathesis.hook
def filter_case(context, case):
    headers = case.headers or {}
    if not all(isinstance(value, str) and value.isascii() for value in headers.values()):
        return False
    return _utf8(case.body)


@schemathesis.hook
def before_call(context, case, kwargs):
    # Here rather than in map_case, which the Examples phase does not call.
    path = case.operation.path
    if "/training-sets" not in path:
        return
    parameters = dict(case.path_parameters or {})
    actor = parameters.get("actorId")
    if isinstance(actor, str) and ACTOR_ID.fullmatch(actor) and ".." not in actor:
        if _pick(actor, 2) == 0:
            parameters["actorId"] = SAMPLE_ACTOR
    set_id = parameters.get("setId")
    if SETS and isinstance(set_id, str) and SET_ID.fullmatch(set_id):
        choice = _pick(set_id, 3)
        if choice:
            targets = SETS[-1:] if path.endswith("/cancel") else SETS
            # The schema's example (choice 2) is the kept set: Examples and Coverage find it.
            parameters["setId"] = targets[choice % len(targets)]
    if parameters != case.path_parameters:
        case.path_parameters = parameters
