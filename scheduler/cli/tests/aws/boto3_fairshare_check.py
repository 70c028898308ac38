"""Fair share through boto3 (issue 16): scheduling policies' API and rules,
and 60 one-vCPU jobs of 5 s in shares A (weight 1) and B (weight 0.25) on
a 2-vCPU cluster.

Usage: python3 boto3_fairshare_check.py ENDPOINT
Prints `ok ...` per check, then one `START SHARE STARTED_MS STOPPED_MS`
line per job that started, in start order (once 30 have started the rest
are cancelled), and `DONE`. Exits 1 on the first failed check.
"""
import sys
import time

import boto3
from botocore.exceptions import ClientError

endpoint = sys.argv[1]
batch = boto3.client(
    "batch",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="x",
    aws_secret_access_key="x",
)


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name} {detail}")
        sys.exit(1)
    print(f"ok {name}")


def client_error(label, field, call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        err = e.response["Error"]
        check(
            label,
            err["Code"] == "ClientException" and field in err["Message"],
            f"{err['Code']}: {err['Message']}",
        )
        return err["Message"]
    check(label, False, "no error")


policy = {
    "shareDecaySeconds": 3600,
    "computeReservation": 0,
    "shareDistribution": [
        {"shareIdentifier": "A", "weightFactor": 1.0},
        {"shareIdentifier": "B", "weightFactor": 0.25},
    ],
}
arn = batch.create_scheduling_policy(name="fair", fairsharePolicy=policy, tags={"team": "hpc"})["arn"]
check("policy arn", arn.endswith(":scheduling-policy/fair"), arn)
client_error(
    "overlapping shares refused",
    "shareDistribution[1].shareIdentifier",
    batch.create_scheduling_policy,
    name="bad",
    fairsharePolicy={"shareDistribution": [{"shareIdentifier": "A*"}, {"shareIdentifier": "AB"}]},
)
client_error(
    "computeReservation range",
    "computeReservation",
    batch.create_scheduling_policy,
    name="bad",
    fairsharePolicy={"computeReservation": 100},
)
got = batch.describe_scheduling_policies(arns=[arn])["schedulingPolicies"]
check("describe", len(got) == 1 and got[0]["fairsharePolicy"] == policy, got)
batch.create_scheduling_policy(name="other")
pages = list(batch.get_paginator("list_scheduling_policies").paginate(PaginationConfig={"PageSize": 1}))
arns = [p["arn"] for page in pages for p in page["schedulingPolicies"]]
check("list paginated", len(pages) == 2 and len(arns) == 2 and arn in arns, pages)

batch.create_job_queue(
    jobQueueName="fair",
    priority=1,
    schedulingPolicyArn=arn,
    computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "default"}],
)
q = batch.describe_job_queues(jobQueues=["fair"])["jobQueues"][0]
check("queue has the policy", q["schedulingPolicyArn"] == arn, q)
client_error("policy in use", "used by job queue", batch.delete_scheduling_policy, arn=arn)
client_error(
    "a queue without a policy cannot gain one",
    "schedulingPolicyArn",
    batch.update_job_queue,
    jobQueue="default",
    schedulingPolicyArn=arn,
)
batch.update_scheduling_policy(arn=arn, fairsharePolicy=policy)
batch.delete_scheduling_policy(arn=batch.describe_scheduling_policies(arns=[arn.replace("/fair", "/other")])["schedulingPolicies"][0]["arn"])

batch.register_job_definition(
    jobDefinitionName="five",
    type="container",
    containerProperties={
        "command": ["sleep", "5"],
        "resourceRequirements": [
            {"type": "VCPU", "value": "1"},
            {"type": "MEMORY", "value": "64"},
        ],
    },
)
client_error(
    "shareIdentifier required",
    "shareIdentifier",
    batch.submit_job,
    jobName="x",
    jobQueue="fair",
    jobDefinition="five",
)
client_error(
    "shareIdentifier refused without a policy",
    "shareIdentifier",
    batch.submit_job,
    jobName="x",
    jobQueue="default",
    jobDefinition="five",
    shareIdentifier="A",
)
client_error(
    "schedulingPriorityOverride range",
    "schedulingPriorityOverride",
    batch.submit_job,
    jobName="x",
    jobQueue="fair",
    jobDefinition="five",
    shareIdentifier="A",
    schedulingPriorityOverride=10000,
)

share_of = {}
for i in range(60):
    share = "A" if i % 2 == 0 else "B"
    job = batch.submit_job(jobName=f"j{i}", jobQueue="fair", jobDefinition="five", shareIdentifier=share)
    share_of[job["jobId"]] = share
ids = list(share_of)
d = batch.describe_jobs(jobs=ids[:2])["jobs"]
check("JobDetail.shareIdentifier", [j["shareIdentifier"] for j in d] == ["A", "B"], d)


def details():
    out = []
    for k in range(0, len(ids), 100):
        out += batch.describe_jobs(jobs=ids[k : k + 100])["jobs"]
    return out


deadline = time.time() + 300
while True:
    jobs = details()
    started = [j for j in jobs if "startedAt" in j]
    if len(started) >= 30:
        break
    if time.time() > deadline:
        check("30 jobs started", False, f"{len(started)} started")
    time.sleep(0.5)
for j in jobs:
    if j["status"] in ("SUBMITTED", "PENDING", "RUNNABLE"):
        batch.cancel_job(jobId=j["jobId"], reason="enough")
summaries = [
    s
    for page in batch.get_paginator("list_jobs").paginate(
        jobQueue="fair", filters=[{"name": "SHARE_IDENTIFIER", "values": ["B"]}]
    )
    for s in page["jobSummaryList"]
]
check(
    "ListJobs SHARE_IDENTIFIER",
    len(summaries) == 30 and all(s["shareIdentifier"] == "B" for s in summaries),
    len(summaries),
)
while True:
    jobs = details()
    if all(j["status"] in ("SUCCEEDED", "FAILED") for j in jobs):
        break
    if time.time() > deadline:
        check("every job ended", False, [j["status"] for j in jobs])
    time.sleep(0.5)
started = sorted((j for j in jobs if "startedAt" in j), key=lambda j: j["startedAt"])
check("started ones succeeded", all(j["status"] == "SUCCEEDED" for j in started))
for j in started:
    print(f"START {j['shareIdentifier']} {j['startedAt']} {j['stoppedAt']}")
print("DONE")
