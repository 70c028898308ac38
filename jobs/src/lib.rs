//! The job definitions and inputs that ship with Shoal, as the files in
//! this folder hold them: `definitions/*.json` (AWS Batch job definitions)
//! and `md/inputs/` (the MD benchmark's inputs). The benchmarks
//! (`shoal-benches`) submit these, so a `shoal` binary carries them and
//! needs no checkout at run time.

/// Job definitions (`RegisterJobDefinition` JSON), by file name.
pub mod definitions {
    /// `osu-shm-1node.json`: OSU ping-pong between two ranks on one node,
    /// over shared memory.
    pub const OSU_SHM_1NODE: &str = include_str!("../definitions/osu-shm-1node.json");
    /// `osu-tcp-1node.json`: the same, over TCP.
    pub const OSU_TCP_1NODE: &str = include_str!("../definitions/osu-tcp-1node.json");
    /// `osu-tcp-2node.json`: one rank on each of two nodes, over TCP.
    pub const OSU_TCP_2NODE: &str = include_str!("../definitions/osu-tcp-2node.json");
    /// `osu-multi-multinode.json`: OSU's multi-pair latency on `numNodes`
    /// nodes of `rpn` ranks, the pairs inside nodes (`rankby` node) or
    /// across them (`rankby` slot).
    pub const OSU_MULTI_MULTINODE: &str = include_str!("../definitions/osu-multi-multinode.json");
    /// `md-shm-1node.json`: the MD benchmark's ranks on one node, over
    /// shared memory.
    pub const MD_SHM_1NODE: &str = include_str!("../definitions/md-shm-1node.json");
    /// `md-tcp-1node.json`: the same, over TCP.
    pub const MD_TCP_1NODE: &str = include_str!("../definitions/md-tcp-1node.json");
    /// `md-shm-multinode.json`: shoal-md on `numNodes` nodes (a submission's
    /// `nodeOverrides.numNodes`) of `rpn` ranks each, shared memory inside
    /// a node and TCP between nodes.
    pub const MD_SHM_MULTINODE: &str = include_str!("../definitions/md-shm-multinode.json");
    /// `md-tcp-multinode.json`: the same, TCP between every pair of ranks.
    pub const MD_TCP_MULTINODE: &str = include_str!("../definitions/md-tcp-multinode.json");
    /// `gromacs-shm-1node.json`: GROMACS' `gmx_mpi mdrun` on one node, over
    /// shared memory.
    pub const GROMACS_SHM_1NODE: &str = include_str!("../definitions/gromacs-shm-1node.json");
    /// `gromacs-tcp-1node.json`: the same, over TCP.
    pub const GROMACS_TCP_1NODE: &str = include_str!("../definitions/gromacs-tcp-1node.json");
    /// `gromacs-shm-multinode.json`: on `numNodes` nodes of `rpn` ranks,
    /// shared memory inside nodes and TCP between them.
    pub const GROMACS_SHM_MULTINODE: &str =
        include_str!("../definitions/gromacs-shm-multinode.json");
    /// `gromacs-tcp-multinode.json`: the same, TCP between every pair.
    pub const GROMACS_TCP_MULTINODE: &str =
        include_str!("../definitions/gromacs-tcp-multinode.json");
}

/// Inputs of the MD benchmark (`jobs/md`), in LAMMPS's input language.
pub mod inputs {
    /// `md/inputs/bench.lj`: Lennard-Jones melt.
    pub const MD_BENCH_LJ: &str = include_str!("../md/inputs/bench.lj");
    /// `md/inputs/bench.rf`: the reaction-field case.
    pub const MD_BENCH_RF: &str = include_str!("../md/inputs/bench.rf");
    /// `gromacs/rf.mdp`: GROMACS' run parameters, SPC water with reaction
    /// field as lignocellulose-rf.
    pub const GROMACS_RF_MDP: &str = include_str!("../gromacs/rf.mdp");
    /// `gromacs/topol.top`: its topology, `@WATERS@` molecules of SOL.
    pub const GROMACS_TOPOL: &str = include_str!("../gromacs/topol.top");
}
