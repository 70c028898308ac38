"""boto3 sets up a MANAGED compute environment whose nodes come from Slurm
(issue 18) and submits a 2-node MPI job to it.

Usage: python3 boto3_slurm_check.py ENDPOINT IDLE_TIMEOUT_S
Creates the environment `slurm` (room for 2 one-CPU nodes, Shoal's tags
naming Slurm as its provider), the queue `slurm` on it, the definition
`slurm-mpi` (2 nodes, 96 MiB of /dev/shm each; the main node runs mpirun
over both, each rank printing its address, its /dev/shm size and how many
SLURM_* variables it sees) and submits it; prints `JOB ID`, then `DONE`.
"""
import sys

import boto3

endpoint, idle = sys.argv[1], sys.argv[2]
batch = boto3.client(
    "batch",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="x",
    aws_secret_access_key="x",
)
batch.create_compute_environment(
    computeEnvironmentName="slurm",
    type="MANAGED",
    computeResources={
        "type": "EC2",
        "minvCpus": 0,
        "maxvCpus": 3,
        "subnets": ["subnet-slurm"],
        "instanceRole": "ecsInstanceRole",
    },
    tags={
        "shoal:provider": "slurm",
        "shoal:idle-timeout-seconds": idle,
    },
)
ce = batch.describe_compute_environments(computeEnvironments=["slurm"])["computeEnvironments"][0]
assert ce["status"] == "VALID", ce
batch.create_job_queue(
    jobQueueName="slurm",
    priority=1,
    computeEnvironmentOrder=[{"order": 1, "computeEnvironment": "slurm"}],
)
rank = (
    "echo rank $OMPI_COMM_WORLD_RANK on $(hostname -I) shm $(df -m /dev/shm | tail -1 | tr -s \" \" | cut -d\" \" -f2)"
    " slurm $(env | grep -c ^SLURM_)"
)
main = (
    "echo main slurm $(env | grep -c ^SLURM_); "
    f"mpirun --mca pml ob1 --mca btl self,tcp -np 2 --hostfile $SHOAL_HOSTFILE sh -c '{rank}'"
)


def node(command):
    return {
        "command": command,
        "resourceRequirements": [
            {"type": "VCPU", "value": "1"},
            {"type": "MEMORY", "value": "256"},
        ],
        "linuxParameters": {"sharedMemorySize": 96},
    }


batch.register_job_definition(
    jobDefinitionName="slurm-mpi",
    type="multinode",
    nodeProperties={
        "numNodes": 2,
        "mainNode": 0,
        "nodeRangeProperties": [
            {"targetNodes": "0", "container": node(["sh", "-c", main])},
            {"targetNodes": "1", "container": node(["sleep", "infinity"])},
        ],
    },
    timeout={"attemptDurationSeconds": 120},
)
job = batch.submit_job(jobName="mpi-on-slurm", jobQueue="slurm", jobDefinition="slurm-mpi")
print(f"JOB {job['jobId']}")
print("DONE")
