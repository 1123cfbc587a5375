"""Checks of template.yaml that cfn-lint does not make: every alarm reaches a person, the
service's money metrics are alarmed on, and the log level cannot be TRACE.

    python3 tools/check_template.py [template.yaml]

Run by tools/test.sh after cfn-lint; exits non-zero with one line per failed check.
"""

import sys

from cfnlint.decode import decode

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
    return failures


if __name__ == "__main__":
    failures = main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
    for failure in failures:
        print(f"template check failed: {failure}")
    if failures:
        sys.exit(1)
    print("template checks passed")
