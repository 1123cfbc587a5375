"""Checks of template.yaml that cfn-lint does not make: every alarm reaches a person, the
service's money metrics are alarmed on, the log level cannot be TRACE, every function of
functions/ is deployed with its own log group, every HTTP route is the one docs/openapi.yaml
describes, every queue a function consumes outlives its runs, has an alarmed dead-letter
queue and its function's errors alarmed, every queue a function is given the URL of is one
its policies let it use, and every function given the Replicate token's parameter may read
it.

    python3 tools/check_template.py [template.yaml]

Run by tools/test.sh after cfn-lint; exits non-zero with one line per failed check.
"""

import os
import re
import sys

import yaml
from cfnlint.decode import decode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MONEY_METRICS = ("ImagesPaidNotStored", "PredictionsUncertain", "ManifestNotUpdated")
NAMESPACE = "TrainingImageService"


def notifies_alarm_topic(actions):
    """Whether an alarm's actions are exactly the alarm topic in use: the stack's own topic
    when it creates one, else the existing one (`Fn::If [CreateAlarmTopic, Ref AlarmTopic,
    Ref AlarmTopicArn]`). A bare Ref to AlarmTopicArn would be an empty action by default,
    and a bare Ref to AlarmTopic would name a topic that does not exist with AlarmTopicArn."""
    expected = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
    return isinstance(actions, list) and len(actions) >= 1 and all(
        action == expected for action in actions
    )


def main(path):
    template, matches = decode(path)
    if matches:
        return [f"{path} does not parse: {m}" for m in matches]
    failures = []
    parameters = template.get("Parameters", {})
    resources = template.get("Resources", {})

    levels = parameters.get("LogLevel", {}).get("AllowedValues", [])
    if not levels or any(str(level).upper() == "TRACE" for level in levels):
        failures.append(f"LogLevel must list its allowed values without TRACE: {levels}")

    if "AlarmEmail" not in parameters:
        failures.append("no AlarmEmail parameter")
    if "AlarmTopicArn" not in parameters:
        failures.append("no AlarmTopicArn parameter (an existing topic)")
    topics = [name for name, r in resources.items() if r.get("Type") == "AWS::SNS::Topic"]
    if not topics:
        failures.append("no SNS topic for the alarms")
    subscriptions = [
        r for r in resources.values() if r.get("Type") == "AWS::SNS::Subscription"
    ]
    if not any(s.get("Properties", {}).get("Protocol") == "email" for s in subscriptions):
        failures.append("no email subscription for AlarmEmail")

    alarms = {
        name: r.get("Properties", {})
        for name, r in resources.items()
        if r.get("Type") == "AWS::CloudWatch::Alarm"
    }
    for name, alarm in alarms.items():
        if not notifies_alarm_topic(alarm.get("AlarmActions")):
            failures.append(f"alarm {name} has no action on the alarm topic in use")
    for metric in MONEY_METRICS:
        watched = [
            name
            for name, alarm in alarms.items()
            if alarm.get("MetricName") == metric and alarm.get("Namespace") == NAMESPACE
        ]
        if not watched:
            failures.append(f"no alarm on {NAMESPACE}/{metric}")
    lambda_errors = [
        name for name, alarm in alarms.items()
        if alarm.get("Namespace") == "AWS/Lambda" and alarm.get("MetricName") == "Errors"
    ]
    if len(lambda_errors) < 2:
        failures.append(f"Lambda errors alarmed for fewer than both functions: {lambda_errors}")
    failures += check_functions(template)
    failures += check_routes(resources)
    failures += check_queues(template, alarms)
    failures += check_queue_grants(resources)
    failures += check_token_grants(resources)
    return failures


def functions_of(resources):
    """The template's functions: {resource name: its properties and its binary}."""
    return {
        name: (r.get("Properties", {}),
               r.get("Metadata", {}).get("BuildProperties", {}).get("Binary"))
        for name, r in resources.items() if r.get("Type") == "AWS::Serverless::Function"
    }


def check_functions(template):
    """Each package of functions/ is one function's binary, each function writes to a log
    group of its own, named after its binary (the log groups the stack sets retention on)."""
    failures = []
    resources = template.get("Resources", {})
    functions = functions_of(resources)
    binaries = {binary for _, binary in functions.values()}
    folder = os.path.join(ROOT, "functions")
    for package in sorted(os.listdir(folder)):
        manifest = os.path.join(folder, package, "Cargo.toml")
        if os.path.exists(manifest):
            with open(manifest) as f:
                # The [package] table's name (tomllib is Python 3.11's, this runs on older).
                found = re.search(r'^\[package\][^\[]*?^name\s*=\s*"([^"]+)"', f.read(),
                                  re.MULTILINE | re.DOTALL)
            name = found.group(1) if found else package
            if name not in binaries:
                failures.append(f"functions/{package} ({name}) is no function's Binary")
    used = {}
    for name, (properties, binary) in functions.items():
        group = properties.get("LoggingConfig", {}).get("LogGroup", {})
        group = group.get("Ref") if isinstance(group, dict) else None
        resource = resources.get(group, {})
        if resource.get("Type") != "AWS::Logs::LogGroup":
            failures.append(f"{name} has no LoggingConfig.LogGroup Ref to a log group")
            continue
        expected = {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{binary}"}
        if resource.get("Properties", {}).get("LogGroupName") != expected:
            failures.append(f"log group {group} of {name} is not named {expected['Fn::Sub']}")
        used.setdefault(group, []).append(name)
    for group, users in used.items():
        if len(users) > 1:
            failures.append(f"log group {group} is shared by {', '.join(users)}")
    return failures


def check_routes(resources):
    """The HttpApi routes are exactly the operations of docs/openapi.yaml."""
    routes = set()
    for _, (properties, _) in functions_of(resources).items():
        for event in properties.get("Events", {}).values():
            if event.get("Type") == "HttpApi":
                route = event.get("Properties", {})
                routes.add((str(route.get("Method")).lower(), route.get("Path")))
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        paths = yaml.safe_load(f).get("paths", {})
    described = {(method.lower(), path) for path, operations in paths.items()
                 for method in operations if method.lower() in HTTP_METHODS}
    return ([f"route {m.upper()} {p} is not in docs/openapi.yaml" for m, p in
             sorted(routes - described)]
            + [f"docs/openapi.yaml's {m.upper()} {p} is no route of the template" for m, p in
               sorted(described - routes)])


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def number(value, parameters):
    """A literal number, or a Ref to a parameter's default; None otherwise."""
    if isinstance(value, dict) and "Ref" in value:
        value = parameters.get(value["Ref"], {}).get("Default")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def check_queues(template, alarms):
    """Each queue an SQS event source reads stays invisible for 6 of its function's timeouts
    (AWS's advice), redrives to a dead-letter queue, that queue's depth is alarmed, and so
    are the reading function's errors (a run that keeps failing shows before its messages
    are dead letters)."""
    failures = []
    parameters = template.get("Parameters", {})
    resources = template.get("Resources", {})
    default_timeout = template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
    watched = {
        str(d.get("Value", {}).get("Fn::GetAtt", [None])[0])
        for alarm in alarms.values() if alarm.get("Namespace") == "AWS/SQS"
        for d in alarm.get("Dimensions", []) if isinstance(d.get("Value"), dict)
    }
    errors_alarmed = {
        d.get("Value", {}).get("Ref")
        for alarm in alarms.values()
        if alarm.get("Namespace") == "AWS/Lambda" and alarm.get("MetricName") == "Errors"
        for d in alarm.get("Dimensions", [])
        if d.get("Name") == "FunctionName" and isinstance(d.get("Value"), dict)
    }
    for name, (properties, _) in functions_of(resources).items():
        timeout = number(properties.get("Timeout", default_timeout), parameters)
        for event in properties.get("Events", {}).values():
            if event.get("Type") != "SQS":
                continue
            queue = event.get("Properties", {}).get("Queue", {}).get("Fn::GetAtt", [None])[0]
            queue_properties = resources.get(queue, {}).get("Properties", {})
            visibility = number(queue_properties.get("VisibilityTimeout", 30), parameters)
            if timeout is None or visibility is None or visibility < 6 * timeout:
                failures.append(f"{queue}'s VisibilityTimeout {visibility} is under 6x the "
                                f"timeout {timeout} of {name}")
            target = queue_properties.get("RedrivePolicy", {}).get("deadLetterTargetArn", {})
            dlq = target.get("Fn::GetAtt", [None])[0] if isinstance(target, dict) else None
            if dlq not in resources:
                failures.append(f"{queue} (read by {name}) redrives to no dead-letter queue")
            elif dlq not in watched:
                failures.append(f"no alarm on the depth of {dlq}, {queue}'s dead letters")
            if name not in errors_alarmed:
                failures.append(f"{name} reads {queue} but no AWS/Lambda Errors alarm watches it")
    return failures


def statements_of(properties):
    """The statements of a function's inline policy documents."""
    return [statement for policy in properties.get("Policies", []) if isinstance(policy, dict)
            for statement in policy.get("Statement", [])]


def listed(value):
    return value if isinstance(value, list) else [value]


def check_queue_grants(resources):
    """A function given a queue's URL (an environment variable that is a Ref to a queue) has
    some sqs action on that queue's ARN: a queue it is told of but may not use is a
    forgotten grant (each send or visibility change would fail as AccessDenied)."""
    failures = []
    queues = {name for name, r in resources.items() if r.get("Type") == "AWS::SQS::Queue"}
    for name, (properties, _) in functions_of(resources).items():
        variables = properties.get("Environment", {}).get("Variables", {})
        granted = {
            resource["Fn::GetAtt"][0]
            for statement in statements_of(properties)
            if statement.get("Effect") == "Allow"
            and any(str(a).startswith("sqs:") for a in listed(statement.get("Action")))
            for resource in listed(statement.get("Resource"))
            if isinstance(resource, dict) and "Fn::GetAtt" in resource
        }
        for variable, value in variables.items():
            queue = value.get("Ref") if isinstance(value, dict) else None
            if queue in queues and queue not in granted:
                failures.append(f"{name} is given {variable} ({queue}) but no sqs action on it")
    return failures


def check_token_grants(resources):
    """A function that reads the Replicate token from SSM may get that parameter (and
    decrypt it, only through SSM)."""
    failures = []
    for name, (properties, _) in functions_of(resources).items():
        variables = properties.get("Environment", {}).get("Variables", {})
        if "REPLICATE_API_TOKEN_PARAMETER" not in variables:
            continue
        actions = {str(a) for statement in statements_of(properties)
                   if statement.get("Effect") == "Allow"
                   for a in listed(statement.get("Action"))}
        for needed in ("ssm:GetParameter", "kms:Decrypt"):
            if needed not in actions:
                failures.append(f"{name} reads the Replicate token's parameter without {needed}")
    return failures


if __name__ == "__main__":
    failures = main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
    for failure in failures:
        print(f"template check failed: {failure}")
    if failures:
        sys.exit(1)
    print("template checks passed")
