"""boto3 against a `shoal scheduler --credentials FILE` (issue: trust).

Usage: python3 auth_boto3_check.py ENDPOINT ACCESS_KEY_ID SECRET
Prints one line per check; exits non-zero at the first failure.
"""
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key_id, secret = sys.argv[1:4]
passed = 0


def check(name, cond, detail=""):
    global passed
    if not cond:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    passed += 1
    print(f"ok   {name}")


def batch(key, sec, token=None, region="us-east-1"):
    return boto3.client(
        "batch",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=sec,
        aws_session_token=token,
        config=Config(retries={"max_attempts": 1}),
    )


def refused(name, client, code):
    try:
        client.describe_job_queues()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        msg = e.response["Error"]["Message"]
        check(f"{name} -> {code} 403", got == code and status == 403 and msg, f"{status} {got}: {msg}")
        return
    check(f"{name} -> {code}", False, "the call succeeded")


good = batch(key_id, secret)
d = good.register_job_definition(
    jobDefinitionName="signed",
    type="container",
    containerProperties={
        "command": ["echo", "hi"],
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}],
    },
)
check("register with the right keys", d["revision"] == 1, d)
s = good.submit_job(jobName="signed-job", jobQueue="default", jobDefinition="signed")
check("submit with the right keys", s["jobId"], s)
jobs = good.describe_jobs(jobs=[s["jobId"]])["jobs"]
check("describe with the right keys", len(jobs) == 1 and jobs[0]["jobName"] == "signed-job", jobs)
# Another region in the credential scope, and a session token (signed as
# x-amz-security-token) are accepted.
q = batch(key_id, secret, token="session-token", region="eu-west-3").describe_job_queues()["jobQueues"]
check("right keys, other region, session token", any(x["jobQueueName"] == "default" for x in q), q)

refused("wrong secret", batch(key_id, secret + "x"), "InvalidSignatureException")
refused("unknown access key", batch("AKIDUNKNOWN", secret), "UnrecognizedClientException")

print(f"boto3 authentication: {passed} checks passed")
