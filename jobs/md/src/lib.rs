//! Shoal's molecular-dynamics benchmark job: a Lennard-Jones code that
//! reproduces LAMMPS' `in.lj` benchmark, serially or over MPI.

// Per-dimension loops over [f64; 3] read best with an index.
#![allow(clippy::needless_range_loop)]

pub mod comm;
pub mod input;
pub mod md;
pub mod output;
pub mod rng;

pub use md::{Sim, Thermo};
