"""boto3's real batch client against `shoal scheduler` (issue: foundation).

Usage: python3 boto3_check.py ENDPOINT
Prints one line per check; exits non-zero at the first failure.
"""
import sys

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
passed = 0


def check(name, cond, detail=""):
    global passed
    if not cond:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    passed += 1
    print(f"ok   {name}")


def client_error(name, field, call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        code = e.response["Error"]["Code"]
        msg = e.response["Error"]["Message"]
        check(f"{name} -> ClientException naming {field}", code == "ClientException" and field in msg, f"{code}: {msg}")
        return
    check(f"{name} -> ClientException", False, "the call succeeded")


# Compute environment and queue.
ce = batch.create_compute_environment(computeEnvironmentName="ce1", type="UNMANAGED")
check("create compute environment", ce["computeEnvironmentArn"].endswith("compute-environment/ce1"), ce)
q = batch.create_job_queue(
    jobQueueName="q1", priority=10, computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "ce1"}]
)
check("create job queue", q["jobQueueArn"].endswith("job-queue/q1"), q)
ces = batch.describe_compute_environments(computeEnvironments=["ce1"])["computeEnvironments"]
check("describe compute environment", len(ces) == 1 and ces[0]["type"] == "UNMANAGED", ces)
qs = batch.describe_job_queues(jobQueues=["q1"])["jobQueues"]
check("describe job queue", len(qs) == 1 and qs[0]["state"] == "ENABLED" and qs[0]["priority"] == 10, qs)

# Job definitions.
mn = dict(
    jobDefinitionName="mn",
    type="multinode",
    nodeProperties={
        "numNodes": 2,
        "mainNode": 0,
        "nodeRangeProperties": [
            {
                "targetNodes": "0:",
                "container": {
                    "command": ["sh", "-c", "df -m /dev/shm"],
                    "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "256"}],
                    "linuxParameters": {"sharedMemorySize": 96},
                },
            }
        ],
    },
)
r1 = batch.register_job_definition(**mn)
r2 = batch.register_job_definition(**mn)
check("register multinode twice gives revision 2", (r1["revision"], r2["revision"]) == (1, 2), (r1, r2))
by_name = batch.describe_job_definitions(jobDefinitionName="mn")["jobDefinitions"]
check("describe by name returns both revisions", sorted(d["revision"] for d in by_name) == [1, 2], by_name)
listed = batch.describe_job_definitions(jobDefinitions=["mn"])["jobDefinitions"]
check("describe jobDefinitions=[name] returns both", len(listed) == 2, listed)
shm = by_name[0]["nodeProperties"]["nodeRangeProperties"][0]["container"]["linuxParameters"]["sharedMemorySize"]
check("sharedMemorySize kept", shm == 96, by_name[0])
c = batch.register_job_definition(
    jobDefinitionName="echo",
    type="container",
    parameters={"msg": "hi"},
    containerProperties={
        "command": ["echo", "Ref::msg"],
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}],
    },
)
check("register container definition", c["revision"] == 1, c)

# Submissions.
s_name = batch.submit_job(jobName="by-name", jobQueue="q1", jobDefinition="echo")
s_rev = batch.submit_job(jobName="by-rev", jobQueue="q1", jobDefinition="echo:1")
s_arn = batch.submit_job(jobName="by-arn", jobQueue="q1", jobDefinition=c["jobDefinitionArn"])
for s in (s_name, s_rev, s_arn):
    check(f"submit {s['jobName']}", s["jobId"] and s["jobArn"].endswith(s["jobId"]), s)
s_mn = batch.submit_job(jobName="mnjob", jobQueue="q1", jobDefinition="mn")
arr = batch.submit_job(
    jobName="arr", jobQueue="q1", jobDefinition="echo", arrayProperties={"size": 3}, dependsOn=[{"jobId": s_name["jobId"]}]
)

jobs = batch.describe_jobs(jobs=[s_name["jobId"], s_rev["jobId"], s_arn["jobId"], s_mn["jobId"], arr["jobId"]])["jobs"]
check("describe 5 jobs", len(jobs) == 5, jobs)
by_id = {j["jobId"]: j for j in jobs}
for j in jobs:
    for field in ("jobId", "jobName", "jobArn", "jobQueue", "status", "createdAt", "jobDefinition"):
        check(f"{j['jobName']} has {field}", field in j, j)
first = by_id[s_name["jobId"]]
check("runnable job without workers says why", first["status"] == "RUNNABLE" and "worker" in first.get("statusReason", ""), first)
check("Ref:: substituted", first["container"]["command"] == ["echo", "hi"], first["container"])
check("jobDefinition by ARN", by_id[s_arn["jobId"]]["jobDefinition"] == c["jobDefinitionArn"], by_id[s_arn["jobId"]])
mnj = by_id[s_mn["jobId"]]
check("multinode nodeProperties", mnj["nodeProperties"]["numNodes"] == 2, mnj)
node1 = batch.describe_jobs(jobs=[s_mn["jobId"] + "#1"])["jobs"][0]
check("node 1 of a multinode job", node1["nodeDetails"] == {"nodeIndex": 1, "isMainNode": False}, node1)
a = by_id[arr["jobId"]]
check("array job PENDING on its dependency", a["status"] == "PENDING", a)
check("arrayProperties size and statusSummary", a["arrayProperties"]["size"] == 3 and a["arrayProperties"]["statusSummary"]["PENDING"] == 3, a)
check("dependsOn recorded", a["dependsOn"] == [{"jobId": s_name["jobId"]}], a["dependsOn"])
child = batch.describe_jobs(jobs=[arr["jobId"] + ":0"])["jobs"][0]
check("array child index", child["arrayProperties"]["index"] == 0, child)

runnable = [j["jobId"] for j in batch.list_jobs(jobQueue="q1", jobStatus="RUNNABLE")["jobSummaryList"]]
check("list RUNNABLE by queue", {s_name["jobId"], s_rev["jobId"], s_arn["jobId"]} <= set(runnable), runnable)
pending = [j["jobId"] for j in batch.list_jobs(jobQueue="q1", jobStatus="PENDING")["jobSummaryList"]]
check("list PENDING by queue", arr["jobId"] in pending, pending)
kids = batch.list_jobs(arrayJobId=arr["jobId"])["jobSummaryList"]
check("list array children", len(kids) == 3, kids)
nodes = batch.list_jobs(multiNodeJobId=s_mn["jobId"])["jobSummaryList"]
check("list multinode nodes", len(nodes) == 2, nodes)

# Cancel and terminate.
waiting = batch.submit_job(jobName="waiting", jobQueue="q1", jobDefinition="echo", dependsOn=[{"jobId": s_name["jobId"]}])
w = batch.describe_jobs(jobs=[waiting["jobId"]])["jobs"][0]
check("dependent job is PENDING", w["status"] == "PENDING", w)
batch.cancel_job(jobId=waiting["jobId"], reason="no longer needed")
w = batch.describe_jobs(jobs=[waiting["jobId"]])["jobs"][0]
check("cancelled pending job is FAILED with the reason", w["status"] == "FAILED" and "no longer needed" in w.get("statusReason", ""), w)
batch.cancel_job(jobId=arr["jobId"], reason="array not needed")
a = batch.describe_jobs(jobs=[arr["jobId"]])["jobs"][0]
check("cancelled array job is FAILED with the reason",
      a["status"] == "FAILED" and "array not needed" in a.get("statusReason", "")
      and a["arrayProperties"]["statusSummary"]["FAILED"] == 3, a)
batch.terminate_job(jobId=s_rev["jobId"], reason="stop now")
t = batch.describe_jobs(jobs=[s_rev["jobId"]])["jobs"][0]
check("terminated job is FAILED with the reason", t["status"] == "FAILED" and "stop now" in t["statusReason"], t)

# Invalid requests: ClientException naming the field.
def mn_def(**np):
    base = {
        "numNodes": 3,
        "mainNode": 0,
        "nodeRangeProperties": [{"targetNodes": "0:", "container": {"command": ["true"]}}],
    }
    base.update(np)
    return dict(jobDefinitionName="bad", type="multinode", nodeProperties=base)

client_error("numNodes 0", "numNodes", batch.register_job_definition, **mn_def(numNodes=0))
client_error("targetNodes gap", "targetNodes", batch.register_job_definition,
             **mn_def(nodeRangeProperties=[{"targetNodes": "0:0", "container": {"command": ["true"]}}]))
client_error("targetNodes overlap", "targetNodes", batch.register_job_definition,
             **mn_def(nodeRangeProperties=[{"targetNodes": "0:1", "container": {"command": ["true"]}},
                                           {"targetNodes": "1:2", "container": {"command": ["true"]}}]))
client_error("mainNode out of range", "mainNode", batch.register_job_definition, **mn_def(mainNode=5))
client_error("negative sharedMemorySize", "sharedMemorySize", batch.register_job_definition,
             jobDefinitionName="bad", type="container",
             containerProperties={"command": ["true"], "linuxParameters": {"sharedMemorySize": -1}})
client_error("attempts 11", "attempts", batch.register_job_definition, jobDefinitionName="bad", type="container",
             containerProperties={"command": ["true"]}, retryStrategy={"attempts": 11})
client_error("timeout under 60 s", "attemptDurationSeconds", batch.register_job_definition, jobDefinitionName="bad",
             type="container", containerProperties={"command": ["true"]}, timeout={"attemptDurationSeconds": 30})
client_error("unknown queue", "jobQueue", batch.submit_job, jobName="x", jobQueue="nope", jobDefinition="echo")
client_error("unknown definition", "jobDefinition", batch.submit_job, jobName="x", jobQueue="q1", jobDefinition="nope")
client_error("array size 1", "size", batch.submit_job, jobName="x", jobQueue="q1", jobDefinition="echo",
             arrayProperties={"size": 1})
client_error("bad jobName", "jobName", batch.submit_job, jobName="-bad name", jobQueue="q1", jobDefinition="echo")
client_error("multinode without nodeProperties", "nodeProperties", batch.register_job_definition,
             jobDefinitionName="bad", type="multinode")

# Tags (issue 16) round-trip on every kind of resource.
scope = "arn:aws:batch:us-east-1:000000000000"
def_arn = batch.describe_job_definitions(jobDefinitionName="echo", status="ACTIVE")["jobDefinitions"][0]["jobDefinitionArn"]
pol_arn = batch.create_scheduling_policy(name="tagged")["arn"]
for arn in [
    def_arn,
    f"{scope}:job-queue/q1",
    f"{scope}:compute-environment/default",
    pol_arn,
]:
    batch.tag_resource(resourceArn=arn, tags={"team": "hpc", "cost": "42"})
    batch.untag_resource(resourceArn=arn, tagKeys=["cost"])
    got = batch.list_tags_for_resource(resourceArn=arn)["tags"]
    check(f"tags of {arn.split(':')[-1]}", got.get("team") == "hpc" and "cost" not in got, got)
check(
    "tags kept on the resource",
    batch.describe_scheduling_policies(arns=[pol_arn])["schedulingPolicies"][0]["tags"] == {"team": "hpc"},
)
client_error("tag an unknown queue", "resourceArn", batch.tag_resource,
             resourceArn=f"{scope}:job-queue/nope", tags={"a": "b"})
client_error("reserved tag key", "aws:", batch.tag_resource,
             resourceArn=pol_arn, tags={"aws:x": "b"})

print(f"boto3 acceptance: {passed} checks passed")
