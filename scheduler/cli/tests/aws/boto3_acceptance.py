"""AWS Batch API compatibility: boto3's real `batch` client against `shoal scheduler`.

Usage: python3 boto3_acceptance.py ENDPOINT [--keep-going]

Expects a fresh scheduler with no workers (submitted jobs stay RUNNABLE).
Prints one line per check and exits non-zero at the first failure; with
--keep-going it goes on after failed checks (not after a failed call) and
exits non-zero at the end if any failed.
"""
import json
import re
import sys
import time
import urllib.error
import urllib.request

try:
    import boto3
    from botocore.exceptions import ClientError
except ImportError as e:  # pragma: no cover - environment problem
    print(f"FAIL cannot import boto3 ({e}); run scripts/install-deps.sh and put .venv/bin on PATH")
    sys.exit(2)

args = [a for a in sys.argv[1:] if a != "--keep-going"]
KEEP_GOING = len(args) + 1 < len(sys.argv)
if len(args) != 1:
    print("usage: boto3_acceptance.py ENDPOINT [--keep-going]", file=sys.stderr)
    sys.exit(2)

ENDPOINT = args[0].rstrip("/")
batch = boto3.client(
    "batch",
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    aws_access_key_id="x",
    aws_secret_access_key="x",
)

passed = 0
failed = 0
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ARN_PREFIX = re.compile(r"^arn:aws:batch:[a-z0-9-]+:[0-9]{12}:")


def show(x):
    """Compact JSON of a response for failure messages (no ResponseMetadata)."""
    if isinstance(x, dict):
        x = {k: v for k, v in x.items() if k != "ResponseMetadata"}
    return json.dumps(x, default=str, sort_keys=True)[:4000]


def check(name, cond, detail=None, fatal=False):
    global passed, failed
    if not cond:
        print(f"FAIL {name}" + (f"\n     got: {show(detail)}" if detail is not None else ""))
        failed += 1
        if fatal or not KEEP_GOING:
            sys.exit(1)
        return
    passed += 1
    print(f"ok   {name}")


def call(name, fn, **kwargs):
    """A call that must succeed; a ClientError fails the check `name`."""
    try:
        return fn(**kwargs)
    except ClientError as e:
        check(f"{name} succeeds", False, e.response, fatal=True)


def describe_one(job_id):
    jobs = call(f"describe {job_id}", batch.describe_jobs, jobs=[job_id])["jobs"]
    check(f"describe_jobs([{job_id}]) returns exactly that job", len(jobs) == 1 and jobs[0]["jobId"] == job_id, jobs)
    return jobs[0]


def expect_client_error(name, fields, fn, **kwargs):
    """`fn(**kwargs)` must fail on the server as HTTP 400 ClientException whose
    message names one of `fields`."""
    fields = [fields] if isinstance(fields, str) else fields
    try:
        r = fn(**kwargs)
    except ClientError as e:
        err = e.response.get("Error", {})
        meta = e.response.get("ResponseMetadata", {})
        headers = meta.get("HTTPHeaders", {})
        msg = err.get("Message", "")
        check(
            f"{name}: HTTP 400, X-Amzn-ErrorType ClientException, code ClientException, message names {'/'.join(fields)}",
            meta.get("HTTPStatusCode") == 400
            and headers.get("x-amzn-errortype", "").split(":")[0] == "ClientException"
            and err.get("Code") == "ClientException"
            and any(f in msg for f in fields),
            {"status": meta.get("HTTPStatusCode"), "x-amzn-errortype": headers.get("x-amzn-errortype"), "Error": err},
        )
        return
    check(f"{name}: rejected with ClientException", False, {"accepted": r})


def raw_post(op, body):
    """POST without boto3; (status, headers, parsed body)."""
    req = urllib.request.Request(
        f"{ENDPOINT}/v1/{op}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return e.code, dict(e.headers), parsed


# ---------------------------------------------------------------- environment and queue
CE, Q = "acc-ce", "acc-q"
ce = call("create_compute_environment", batch.create_compute_environment, computeEnvironmentName=CE, type="UNMANAGED")
check(
    "create_compute_environment returns its name and ARN",
    ce.get("computeEnvironmentName") == CE
    and ARN_PREFIX.match(ce.get("computeEnvironmentArn", ""))
    and ce["computeEnvironmentArn"].endswith(f":compute-environment/{CE}"),
    ce,
)
q = call(
    "create_job_queue",
    batch.create_job_queue,
    jobQueueName=Q,
    priority=10,
    computeEnvironmentOrder=[{"order": 1, "computeEnvironment": CE}],
)
check(
    "create_job_queue returns its name and ARN",
    q.get("jobQueueName") == Q and ARN_PREFIX.match(q.get("jobQueueArn", "")) and q["jobQueueArn"].endswith(f":job-queue/{Q}"),
    q,
)
ces = call("describe_compute_environments", batch.describe_compute_environments, computeEnvironments=[CE])["computeEnvironments"]
check(
    "describe_compute_environments([ce]) returns it, type UNMANAGED",
    len(ces) == 1 and ces[0]["computeEnvironmentName"] == CE and ces[0].get("type") == "UNMANAGED",
    ces,
)
qs = call("describe_job_queues", batch.describe_job_queues, jobQueues=[Q])["jobQueues"]
check(
    "describe_job_queues([q]) returns it with priority 10 and the environment order",
    len(qs) == 1
    and qs[0]["jobQueueName"] == Q
    and qs[0].get("priority") == 10
    and [(o["order"], o["computeEnvironment"].split("/")[-1]) for o in qs[0].get("computeEnvironmentOrder", [])] == [(1, CE)],
    qs,
)
all_qs = call("describe_job_queues()", batch.describe_job_queues)["jobQueues"]
mine = [x for x in all_qs if x["jobQueueName"] == Q]
check("describe_job_queues() lists it, state ENABLED", len(mine) == 1 and mine[0].get("state") == "ENABLED", all_qs)
check("describe_job_queues() lists the default queue", any(x["jobQueueName"] == "default" for x in all_qs), all_qs)

# ---------------------------------------------------------------- job definitions
MN = "acc-mn"
mn_def = dict(
    jobDefinitionName=MN,
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
r1 = call("register multinode definition", batch.register_job_definition, **mn_def)
check(
    "register multinode definition: revision 1, name, ARN name:1",
    r1.get("revision") == 1 and r1.get("jobDefinitionName") == MN and r1.get("jobDefinitionArn", "").endswith(f":job-definition/{MN}:1"),
    r1,
)
r2 = call("register multinode definition again", batch.register_job_definition, **mn_def)
check(
    "registering again gives revision 2",
    r2.get("revision") == 2 and r2.get("jobDefinitionArn", "").endswith(f":job-definition/{MN}:2"),
    r2,
)
by_name = call("describe_job_definitions(jobDefinitionName)", batch.describe_job_definitions, jobDefinitionName=MN)["jobDefinitions"]
check("describe_job_definitions(jobDefinitionName=name) returns revisions 1 and 2", sorted(d["revision"] for d in by_name) == [1, 2], by_name)
by_list = call("describe_job_definitions(jobDefinitions)", batch.describe_job_definitions, jobDefinitions=[MN])["jobDefinitions"]
check("describe_job_definitions(jobDefinitions=[name]) returns revisions 1 and 2", sorted(d["revision"] for d in by_list) == [1, 2], by_list)
d1 = [d for d in by_name if d["revision"] == 1][0]
np = d1.get("nodeProperties", {})
rng = (np.get("nodeRangeProperties") or [{}])[0]
check(
    "the described multinode definition keeps type, numNodes, mainNode, targetNodes, command, sharedMemorySize",
    d1.get("type") == "multinode"
    and np.get("numNodes") == 2
    and np.get("mainNode") == 0
    and rng.get("targetNodes") == "0:"
    and rng.get("container", {}).get("command") == ["sh", "-c", "df -m /dev/shm"]
    and rng.get("container", {}).get("linuxParameters", {}).get("sharedMemorySize") == 96,
    d1,
)
check("a registered definition is ACTIVE", all(d.get("status") == "ACTIVE" for d in by_name), by_name)

ECHO = "acc-echo"
c = call(
    "register container definition",
    batch.register_job_definition,
    jobDefinitionName=ECHO,
    type="container",
    parameters={"msg": "hi"},
    containerProperties={
        "command": ["echo", "Ref::msg"],
        "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "128"}],
    },
)
check("register container definition: revision 1", c.get("revision") == 1 and c.get("jobDefinitionArn", "").endswith(f":job-definition/{ECHO}:1"), c)
cd = call("describe container definition", batch.describe_job_definitions, jobDefinitions=[c["jobDefinitionArn"]])["jobDefinitions"]
check(
    "describe_job_definitions([ARN]) keeps parameters and command",
    len(cd) == 1 and cd[0].get("parameters") == {"msg": "hi"} and cd[0].get("containerProperties", {}).get("command") == ["echo", "Ref::msg"],
    cd,
)

# ---------------------------------------------------------------- submissions
submitted = {}
for label, ref in (("name", ECHO), ("name:rev", f"{ECHO}:1"), ("ARN", c["jobDefinitionArn"])):
    name = "by-" + label.replace(":", "-")
    s = call(f"submit by {label}", batch.submit_job, jobName=name, jobQueue=Q, jobDefinition=ref)
    check(
        f"submit by {label}: jobId (UUID), jobName, jobArn",
        UUID.match(s.get("jobId", ""))
        and s.get("jobName") == name
        and ARN_PREFIX.match(s.get("jobArn", ""))
        and s["jobArn"].endswith(f":job/{s['jobId']}"),
        s,
    )
    submitted[label] = s
first = submitted["name"]["jobId"]
ids = [s["jobId"] for s in submitted.values()]
check("three submissions, three distinct ids", len(set(ids)) == 3, ids)

mn_job = call("submit multinode", batch.submit_job, jobName="mn-job", jobQueue=Q, jobDefinition=MN)["jobId"]
arr = call(
    "submit array job",
    batch.submit_job,
    jobName="arr",
    jobQueue=Q,
    jobDefinition=ECHO,
    arrayProperties={"size": 3},
    dependsOn=[{"jobId": first}],
)["jobId"]

a = describe_one(arr)
ap = a.get("arrayProperties", {})
check("array job: arrayProperties.size 3", ap.get("size") == 3, a)
check(
    "array job: arrayProperties.statusSummary counts its 3 children",
    isinstance(ap.get("statusSummary"), dict) and sum(ap["statusSummary"].values()) == 3,
    a,
)
check("array job: dependsOn contains the first job", first in [d.get("jobId") for d in a.get("dependsOn", [])], a)
check("array job waits on its dependency: PENDING", a.get("status") == "PENDING", a)
child0 = describe_one(f"{arr}:0")
check(f"{arr}:0 has arrayProperties.index 0", child0.get("arrayProperties", {}).get("index") == 0, child0)

now_ms = time.time() * 1000
jobs = call("describe 5 jobs", batch.describe_jobs, jobs=ids + [mn_job, arr])["jobs"]
check("describe_jobs returns the 5 jobs asked for", sorted(j["jobId"] for j in jobs) == sorted(ids + [mn_job, arr]), jobs)
by_id = {j["jobId"]: j for j in jobs}
for j in jobs:
    missing = [f for f in ("jobId", "jobName", "jobArn", "jobQueue", "status", "createdAt", "jobDefinition") if f not in j]
    check(f"{j['jobName']}: has jobId, jobName, jobArn, jobQueue, status, createdAt, jobDefinition", not missing, {"missing": missing, "job": j})
    check(
        f"{j['jobName']}: createdAt is epoch milliseconds of about now",
        isinstance(j["createdAt"], int) and abs(j["createdAt"] - now_ms) < 10 * 60 * 1000,
        j["createdAt"],
    )
    check(f"{j['jobName']}: jobQueue is the queue", j["jobQueue"] in (Q, q["jobQueueArn"]), j["jobQueue"])
for label, s in submitted.items():
    j = by_id[s["jobId"]]
    check(
        f"submitted by {label}: RUNNABLE with a non-empty statusReason (no workers)",
        j["status"] == "RUNNABLE" and j.get("statusReason", "").strip() != "",
        j,
    )
    check(f"submitted by {label}: jobDefinition is revision 1", j["jobDefinition"].endswith(f":job-definition/{ECHO}:1"), j["jobDefinition"])
check("Ref::msg substituted from the definition's parameters", by_id[first].get("container", {}).get("command") == ["echo", "hi"], by_id[first])
m = by_id[mn_job]
check("multinode job: nodeProperties.numNodes 2", m.get("nodeProperties", {}).get("numNodes") == 2, m)
check("multinode job: submitted against revision 2 (latest)", m["jobDefinition"].endswith(f":job-definition/{MN}:2"), m["jobDefinition"])
node1 = describe_one(f"{mn_job}#1")
check(
    f"{mn_job}#1: nodeDetails nodeIndex 1, not the main node",
    node1.get("nodeDetails", {}).get("nodeIndex") == 1 and node1["nodeDetails"].get("isMainNode") is False,
    node1,
)

# ---------------------------------------------------------------- listing
def list_ids(**kw):
    out, token = [], None
    while True:
        r = call(f"list_jobs({kw})", batch.list_jobs, **kw, **({"nextToken": token} if token else {}))
        out += [s["jobId"] for s in r["jobSummaryList"]]
        token = r.get("nextToken")
        if not token:
            return out


runnable = list_ids(jobQueue=Q, jobStatus="RUNNABLE")
check("list_jobs(RUNNABLE) contains the 3 submissions and the multinode job", set(ids + [mn_job]) <= set(runnable), runnable)
check("list_jobs(RUNNABLE) does not list the PENDING array job", arr not in runnable, runnable)
pending = list_ids(jobQueue=Q, jobStatus="PENDING")
check("list_jobs(PENDING) contains the array job", arr in pending, pending)
kids = list_ids(arrayJobId=arr)
check("list_jobs(arrayJobId) lists its 3 children", sorted(kids) == [f"{arr}:{i}" for i in range(3)], kids)
nodes = list_ids(multiNodeJobId=mn_job)
check("list_jobs(multiNodeJobId) lists its 2 nodes", sorted(nodes) == [f"{mn_job}#{i}" for i in range(2)], nodes)
default_runnable = list_ids(jobQueue="default", jobStatus="RUNNABLE")
check("list_jobs on another queue does not list this queue's jobs", not set(ids) & set(default_runnable), default_runnable)

# ---------------------------------------------------------------- cancel and terminate
call("cancel_job on the pending array job", batch.cancel_job, jobId=arr, reason="no longer needed")
a = describe_one(arr)
check(
    "cancelled pending array job: FAILED, statusReason contains the reason",
    a.get("status") == "FAILED" and "no longer needed" in a.get("statusReason", ""),
    a,
)
check(
    "cancelled array job: statusSummary counts 3 FAILED children",
    a.get("arrayProperties", {}).get("statusSummary", {}).get("FAILED") == 3,
    a,
)
victim = submitted["name:rev"]["jobId"]
call("terminate_job on a RUNNABLE job", batch.terminate_job, jobId=victim, reason="stop now")
t = describe_one(victim)
check("terminated RUNNABLE job: FAILED, statusReason contains the reason", t.get("status") == "FAILED" and "stop now" in t.get("statusReason", ""), t)
check("a FAILED job is no longer listed as RUNNABLE", victim not in list_ids(jobQueue=Q, jobStatus="RUNNABLE"))

# ---------------------------------------------------------------- invalid requests
def multinode(**node_props):
    props = {
        "numNodes": 3,
        "mainNode": 0,
        "nodeRangeProperties": [{"targetNodes": "0:", "container": {"command": ["true"]}}],
    }
    props.update(node_props)
    return dict(jobDefinitionName="acc-bad", type="multinode", nodeProperties=props)


def container(**extra):
    return dict(jobDefinitionName="acc-bad", type="container", containerProperties={"command": ["true"]}, **extra)


true_cmd = {"command": ["true"]}
expect_client_error("numNodes 0", "numNodes", batch.register_job_definition, **multinode(numNodes=0))
expect_client_error(
    "targetNodes 0:0 of 3 nodes leaves a gap",
    "targetNodes",
    batch.register_job_definition,
    **multinode(nodeRangeProperties=[{"targetNodes": "0:0", "container": true_cmd}]),
)
expect_client_error(
    "targetNodes 0:1 and 1:2 overlap",
    "targetNodes",
    batch.register_job_definition,
    **multinode(nodeRangeProperties=[{"targetNodes": "0:1", "container": true_cmd}, {"targetNodes": "1:2", "container": true_cmd}]),
)
expect_client_error("mainNode 3 of 3 nodes", "mainNode", batch.register_job_definition, **multinode(mainNode=3))
expect_client_error(
    "negative sharedMemorySize",
    "sharedMemorySize",
    batch.register_job_definition,
    jobDefinitionName="acc-bad",
    type="container",
    containerProperties={"command": ["true"], "linuxParameters": {"sharedMemorySize": -1}},
)
expect_client_error("retryStrategy attempts 11", "attempts", batch.register_job_definition, **container(retryStrategy={"attempts": 11}))
expect_client_error(
    "timeout attemptDurationSeconds 30", "attemptDurationSeconds", batch.register_job_definition, **container(timeout={"attemptDurationSeconds": 30})
)
expect_client_error("multinode without nodeProperties", "nodeProperties", batch.register_job_definition, jobDefinitionName="acc-bad", type="multinode")
bad = call("describe the rejected definition name", batch.describe_job_definitions, jobDefinitionName="acc-bad")["jobDefinitions"]
check("rejected registrations stored nothing", bad == [], bad)

expect_client_error("submit to an unknown queue", "jobQueue", batch.submit_job, jobName="x", jobQueue="no-such-queue", jobDefinition=ECHO)
expect_client_error("submit an unknown definition", "jobDefinition", batch.submit_job, jobName="x", jobQueue=Q, jobDefinition="no-such-def")
expect_client_error(
    "array size 1", ["size", "arrayProperties"], batch.submit_job, jobName="x", jobQueue=Q, jobDefinition=ECHO, arrayProperties={"size": 1}
)
expect_client_error("jobName '-bad name'", "jobName", batch.submit_job, jobName="-bad name", jobQueue=Q, jobDefinition=ECHO)

# The error's wire format, without boto3 in between.
status, headers, body = raw_post("submitjob", {"jobName": "x", "jobQueue": "no-such-queue", "jobDefinition": ECHO})
headers = {k.lower(): v for k, v in headers.items()}
check(
    "raw POST /v1/submitjob to an unknown queue: 400, X-Amzn-ErrorType ClientException, "
    'body {"__type":"ClientException","message":...}',
    status == 400
    and headers.get("x-amzn-errortype", "").split(":")[0] == "ClientException"
    and isinstance(body, dict)
    and body.get("__type") == "ClientException"
    and "jobQueue" in body.get("message", ""),
    {"status": status, "x-amzn-errortype": headers.get("x-amzn-errortype"), "body": body},
)
still = list_ids(jobQueue=Q, jobStatus="RUNNABLE") + list_ids(jobQueue=Q, jobStatus="PENDING")
check("rejected submissions created no job", not [i for i in still if i not in ids + [mn_job, arr]], still)

if failed:
    print(f"boto3 acceptance: {failed} checks FAILED, {passed} passed")
    sys.exit(1)
print(f"boto3 acceptance: {passed} checks passed")
