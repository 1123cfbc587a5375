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

The export operations likewise, but in turn rather than by a CRC (the same cases for the
same seed all the same): of the POSTs with a valid `actorId`, half go to the seeded export
actor with ten kept images and a quarter to the one with nine kept and two undecided
(SCHEMATHESIS_EXPORT_ACTORS; `kept` is a 422 there, `not_rejected` a 202), the rest stay as
generated (no manifest: 422). Of the GETs with a valid `exportId`, two fifths read the done
export, one fifth each the failed and the running one (SCHEMATHESIS_EXPORTS, `actor:id`,
made by tools/schemathesis_local.py), the rest the id generated; a steered one is asked with
its own actor three times in four, else with the actor generated (another's: 404).

The training operations likewise, in turn. Of the POSTs with a valid `actorId`, half go to
the actor with ten kept images and no training (SCHEMATHESIS_TRAINING_ACTORS' first: its
first is a 202, the rest a 409 while that training lasts), a quarter to EXPORT_READY, whose
training runs (409), the rest stay as generated (no manifest: 422); a body's valid
`export_id` sent to EXPORT_READY becomes its done export or its failed one (409
`export_failed`) in turn, and stays as generated for the other (404 `export_not_found`). Of
the GETs and cancels with a valid `trainingId`, each of SCHEMATHESIS_TRAININGS (`actor:id`,
made by tools/schemathesis_local.py: the running training, then one in each state) is taken
in turn, then the id generated once; a steered one is asked with its own actor three times
in four.
"""

import itertools
import os
import re
import zlib

import schemathesis

SAMPLE_ACTOR = os.environ.get("SCHEMATHESIS_SAMPLE_ACTOR", "0000_european_16_male")
SETS = [s for s in os.environ.get("SCHEMATHESIS_TRAINING_SETS", "").split(",") if s]
EXPORT_ACTORS = [a for a in os.environ.get("SCHEMATHESIS_EXPORT_ACTORS", "").split(",") if a]
EXPORTS = [tuple(e.split(":", 1)) for e in os.environ.get("SCHEMATHESIS_EXPORTS", "").split(",")
           if ":" in e]
TRAINING_ACTORS = [a for a in os.environ.get("SCHEMATHESIS_TRAINING_ACTORS", "").split(",")
                   if a]
TRAININGS = [tuple(t.split(":", 1))
             for t in os.environ.get("SCHEMATHESIS_TRAININGS", "").split(",") if ":" in t]
# The id rules of shared/src/domain/actor.rs and shared/src/domain/training_set.rs.
ACTOR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
SET_ID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
EXPORT_ID = SET_ID
TRAINING_ID = SET_ID


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
    if "/training-data/exports" in path:
        _steer_export(case)
        return
    if "/trainings" in path:
        _steer_training(case)
        return
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


# The export operations' targets, taken in turn by the cases that can be steered (few
# distinct ids are generated, and the Coverage phase varies a case after it was steered, so
# a choice by the generated value would send most cases to one target). None: as generated.
# POST: the actor with ten kept images twice, the one with nine once, the generated one once.
_POST_ACTORS = itertools.cycle([0, 0, 1, None])
# GET: the done export twice (its answer has the most to check), the failed and the running
# once each, the generated id once; then the export's own actor three times in four.
_GET_EXPORTS = itertools.cycle([0, 0, 1, 2, None])
_GET_OWNERS = itertools.cycle([True, True, True, False])


def _valid_actor(actor):
    return isinstance(actor, str) and ACTOR_ID.fullmatch(actor) and ".." not in actor


def _steer_export(case):
    parameters = dict(case.path_parameters or {})
    actor = parameters.get("actorId")
    export_id = parameters.get("exportId")
    if "exportId" not in parameters:
        # POST: the actor with ten kept images for half the valid ids, the one with nine for
        # a quarter, the generated one (no manifest) for the rest.
        if len(EXPORT_ACTORS) == 2 and _valid_actor(actor):
            target = next(_POST_ACTORS)
            if target is not None:
                parameters["actorId"] = EXPORT_ACTORS[target]
    elif EXPORTS and isinstance(export_id, str) and EXPORT_ID.fullmatch(export_id):
        target = next(_GET_EXPORTS)
        if target is not None and target < len(EXPORTS):
            owner, parameters["exportId"] = EXPORTS[target]
            if _valid_actor(actor) and next(_GET_OWNERS):
                parameters["actorId"] = owner
    if parameters != case.path_parameters:
        case.path_parameters = parameters


# POST: the actor with no training twice, EXPORT_READY (its training runs) once, the generated
# one once; a body's export_id for EXPORT_READY: its done export, then its failed one.
_TRAINING_POST_ACTORS = itertools.cycle([0, 0, 1, None])
_TRAINING_POST_EXPORTS = itertools.cycle([0, 1])
# GET and cancel: each training in turn, then the generated id; the owner three times in four.
_TRAINING_TARGETS = itertools.cycle(list(range(len(TRAININGS))) + [None])
_TRAINING_OWNERS = itertools.cycle([True, True, True, False])


def _steer_training(case):
    parameters = dict(case.path_parameters or {})
    actor = parameters.get("actorId")
    training_id = parameters.get("trainingId")
    if "trainingId" not in parameters:
        if len(TRAINING_ACTORS) == 2 and _valid_actor(actor):
            target = next(_TRAINING_POST_ACTORS)
            if target is not None:
                parameters["actorId"] = TRAINING_ACTORS[target]
        body = case.body
        steered_to_ready = len(EXPORTS) >= 2 and parameters.get("actorId") == EXPORTS[0][0]
        if (steered_to_ready and isinstance(body, dict)
                and isinstance(body.get("export_id"), str)
                and EXPORT_ID.fullmatch(body["export_id"])):
            # EXPORTS: EXPORT_READY's done export, then its failed one.
            case.body = {**body, "export_id": EXPORTS[next(_TRAINING_POST_EXPORTS)][1]}
    elif TRAININGS and isinstance(training_id, str) and TRAINING_ID.fullmatch(training_id):
        target = next(_TRAINING_TARGETS)
        if target is not None:
            owner, parameters["trainingId"] = TRAININGS[target]
            if _valid_actor(actor) and next(_TRAINING_OWNERS):
                parameters["actorId"] = owner
    if parameters != case.path_parameters:
        case.path_parameters = parameters
