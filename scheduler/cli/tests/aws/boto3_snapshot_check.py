"""GetJobQueueSnapshot through boto3 (issue 16): the RUNNABLE jobs are
listed in the order they then start, which here is not the order they were
submitted (EASY backfilling starts short jobs ahead of two-node ones), and
Shoal's start estimates (DescribeJobs' and `shoal jobs --start`'s) agree.

Usage: python3 boto3_snapshot_check.py ENDPOINT SHOAL_BINARY
On a cluster of two 1-vCPU workers. Prints `ok ...` per check and `DONE`.
Exits 1 on the first failed check.
"""
import json
import subprocess
import sys
import time
import urllib.request

import boto3
from botocore.exceptions import ClientError

endpoint, shoal = sys.argv[1], sys.argv[2]
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


def raw(op, body):
    """A call as a program without boto3 makes it (boto3 drops the fields
    its model does not name, such as Shoal's shoalEstimatedStartAt)."""
    req = urllib.request.Request(
        f"{endpoint}/v1/{op}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def wait(what, cond, timeout=120):
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.time() > deadline:
            check(what, False, "timed out")
        time.sleep(0.2)


def single(name, seconds, timeout):
    batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        timeout={"attemptDurationSeconds": timeout},
        containerProperties={
            "command": ["sleep", str(seconds)],
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
        },
    )


single("blocker", 20, 600)
single("short", 1, 60)
batch.register_job_definition(
    jobDefinitionName="pair",
    type="multinode",
    timeout={"attemptDurationSeconds": 120},
    nodeProperties={
        "numNodes": 2,
        "mainNode": 0,
        "nodeRangeProperties": [
            {
                "targetNodes": "0:",
                "container": {
                    "command": ["sleep", "1"],
                    "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "64"}],
                },
            }
        ],
    },
)

try:
    batch.get_job_queue_snapshot(jobQueue="nope")
    check("unknown queue refused", False, "no error")
except ClientError as e:
    err = e.response["Error"]
    check("unknown queue refused", err["Code"] == "ClientException" and "jobQueue" in err["Message"], err)

blocker = batch.submit_job(jobName="blocker", jobQueue="default", jobDefinition="blocker")["jobId"]
wait("blocker running", lambda: batch.describe_jobs(jobs=[blocker])["jobs"][0]["status"] == "RUNNING")

# Submission order: the two-node jobs first; the short ones are backfilled
# onto the free node ahead of them (each ends long before the blocker's
# estimated end, the first two-node job's reservation).
names = ["pair1", "short1", "short2", "short3", "pair2", "short4"]
ids = {}
for n in names:
    ids[n] = batch.submit_job(jobName=n, jobQueue="default", jobDefinition=n.rstrip("0123456789"))["jobId"]
name_of = {v: k for k, v in ids.items()}


def snapshot():
    s = batch.get_job_queue_snapshot(jobQueue="default")
    listed = [a["jobArn"].rsplit("/", 1)[1] for a in s["frontOfQueue"]["jobs"]]
    states = {j["jobId"]: j["status"] for j in batch.describe_jobs(jobs=list(ids.values()))["jobs"]}
    waiting = {i for i, st in states.items() if st in ("SUBMITTED", "PENDING", "RUNNABLE")}
    # Every job that waits has been through a pass (is RUNNABLE, listed).
    if waiting and waiting == set(listed) and all(states[i] == "RUNNABLE" for i in waiting):
        return s, listed
    return None


s, listed = wait("every waiting job listed", snapshot)
order = [name_of[i] for i in listed]
print(f"snapshot order {order}")
check("lastUpdatedAt", s["frontOfQueue"]["lastUpdatedAt"] > 0, s["frontOfQueue"])
check(
    "earliestTimeAtPosition",
    all(0 < a["earliestTimeAtPosition"] <= s["frontOfQueue"]["lastUpdatedAt"] for a in s["frontOfQueue"]["jobs"]),
    s["frontOfQueue"],
)
use = s["queueUtilization"]["totalCapacityUsage"]
check("totalCapacityUsage", use[0]["capacityUnit"] == "VCPU" and use[0]["quantity"] >= 1, use)
check("pairs listed after the short jobs", order.index("pair1") > max(order.index(n) for n in order if n.startswith("short")), order)
check("not the submission order", order != [n for n in names if n in order], order)

# Shoal's estimates, as a program reads them: DescribeJobs and the
# snapshot carry the same, in the listed order.
detail = {j["jobId"]: j for j in raw("describejobs", {"jobs": listed})["jobs"]}
est = [detail[i].get("shoalEstimatedStartAt") for i in listed]
check("DescribeJobs shoalEstimatedStartAt", all(isinstance(e, int) for e in est), est)
check("estimates in listed order", est == sorted(est), est)
b = batch.describe_jobs(jobs=[blocker])["jobs"][0]
pair1 = est[order.index("pair1")]
check(
    "the first pair's estimate is the blocker's estimated end",
    abs(pair1 - (b["startedAt"] + 600_000)) < 5_000,
    (pair1, b["startedAt"]),
)
cli = json.loads(
    subprocess.run(
        [shoal, "jobs", "--start", "--json", "--endpoint", endpoint], check=True, capture_output=True, text=True
    ).stdout
)
cli_ids = [j["jobId"] for j in cli if j["jobId"] in listed]
check("shoal jobs --start lists them in that order", cli_ids == listed, (cli_ids, listed))
table = subprocess.run(
    [shoal, "jobs", "--start", "--endpoint", endpoint], check=True, capture_output=True, text=True
).stdout
check("shoal jobs --start table", table.splitlines()[0].split()[5] == "START_TIME", table)

# They start in the listed order.
wait(
    "every job ended",
    lambda: all(
        j["status"] in ("SUCCEEDED", "FAILED") for j in batch.describe_jobs(jobs=list(ids.values()))["jobs"]
    ),
    timeout=180,
)
jobs = {j["jobId"]: j for j in batch.describe_jobs(jobs=list(ids.values()))["jobs"]}
check("all succeeded", all(j["status"] == "SUCCEEDED" for j in jobs.values()), jobs)
started = sorted(listed, key=lambda i: jobs[i]["startedAt"])
check("started in the snapshot's order", started == listed, [name_of[i] for i in started])
print("DONE")
