"""boto3 against a `shoal scheduler --credentials FILE` (issue: trust).

Usage: python3 auth_boto3_check.py ENDPOINT ACCESS_KEY_ID SECRET
Prints one line per check; exits non-zero at the first failure.
"""
import json
import sys
import urllib.error
import urllib.request

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
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
# Tags: GET, POST and DELETE on /v1/tags/ARN (the ARN percent-encoded in
# the path, tagKeys in the query string) verify too.
good.tag_resource(resourceArn=d["jobDefinitionArn"], tags={"team": "hpc", "x": "1"})
good.untag_resource(resourceArn=d["jobDefinitionArn"], tagKeys=["x"])
t = good.list_tags_for_resource(resourceArn=d["jobDefinitionArn"])["tags"]
check("signed tag, untag and list", t == {"team": "hpc"}, t)
# Another region in the credential scope, and a session token (signed as
# x-amz-security-token) are accepted.
q = batch(key_id, secret, token="session-token", region="eu-west-3").describe_job_queues()["jobQueues"]
check("right keys, other region, session token", any(x["jobQueueName"] == "default" for x in q), q)

refused("wrong secret", batch(key_id, secret + "x"), "InvalidSignatureException")
refused("unknown access key", batch("AKIDUNKNOWN", secret), "UnrecognizedClientException")



def raw(path, key=None, sec=None, headers=None, body=b"{}"):
    """POST with urllib, signed by botocore's own SigV4Auth when key is given."""
    req = AWSRequest(method="POST", url=endpoint + path, data=body, headers=headers or {})
    if key:
        SigV4Auth(Credentials(key, sec), "batch", "us-west-2").add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=body, headers=dict(p.headers), method="POST")
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, json.loads(resp.read() or b"null"), resp.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers


# botocore's signer on what the Batch client never sends: a query string
# (sorted, percent-encoded) and a signed header with runs of spaces.
status, body, _ = raw("/v1/describejobqueues?b=2&a=x%20y&a=1", key_id, secret,
                      headers={"X-Shoal-Note": "a   b  c", "Content-Type": "application/json"})
check("botocore SigV4Auth with a query and spaced header", status == 200, (status, body))
status, body, _ = raw("/v1/describejobqueues?b=2", key_id, secret)
check("botocore SigV4Auth, region us-west-2 in the scope", status == 200, (status, body))
status, body, h = raw("/v1/submitjob", body=b'{"jobName":"x","jobQueue":"default","jobDefinition":"signed"}')
check("unsigned raw POST -> UnrecognizedClientException 403",
      status == 403 and body.get("__type") == "UnrecognizedClientException"
      and h.get("x-amzn-errortype") == "UnrecognizedClientException", (status, body))

print(f"boto3 authentication: {passed} checks passed")
