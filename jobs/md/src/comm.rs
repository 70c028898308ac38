//! Process grid and the few MPI operations the MD code needs. A `Comm`
//! without a communicator runs serially: every "message" is to self.

use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use std::time::Instant;

pub struct Comm {
    world: Option<SimpleCommunicator>,
    pub rank: usize,
    pub size: usize,
    pub grid: [usize; 3],
    pub myloc: [usize; 3],
    /// Ranks of the lower and upper neighbours in each dimension.
    pub neigh: [[usize; 2]; 3],
    /// Seconds spent in communication (including local copies to self).
    pub time: f64,
}

impl Comm {
    pub fn serial() -> Self {
        Comm {
            world: None,
            rank: 0,
            size: 1,
            grid: [1; 3],
            myloc: [0; 3],
            neigh: [[0; 2]; 3],
            time: 0.0,
        }
    }

    pub fn mpi(world: SimpleCommunicator) -> Self {
        let rank = world.rank() as usize;
        let size = world.size() as usize;
        Comm {
            world: Some(world),
            rank,
            size,
            grid: [1; 3],
            myloc: [0; 3],
            neigh: [[rank; 2]; 3],
            time: 0.0,
        }
    }

    /// Choose the processor grid as LAMMPS does for a box of lengths
    /// `prd`: the factorisation with the least surface area, first found
    /// in x-major order wins ties. Ranks map x fastest.
    pub fn set_grid(&mut self, prd: [f64; 3]) {
        let p = self.size;
        let area = [prd[0] * prd[1], prd[0] * prd[2], prd[1] * prd[2]];
        let mut best = f64::INFINITY;
        let mut grid = [p, 1, 1];
        for px in 1..=p {
            if p % px != 0 {
                continue;
            }
            for py in 1..=p / px {
                if (p / px) % py != 0 {
                    continue;
                }
                let pz = p / px / py;
                let (fx, fy, fz) = (px as f64, py as f64, pz as f64);
                let surf = area[0] / fx / fy + area[1] / fx / fz + area[2] / fy / fz;
                if surf < best {
                    best = surf;
                    grid = [px, py, pz];
                }
            }
        }
        self.grid = grid;
        let r = self.rank;
        self.myloc = [
            r % grid[0],
            (r / grid[0]) % grid[1],
            r / (grid[0] * grid[1]),
        ];
        let at = |l: [usize; 3]| l[0] + l[1] * grid[0] + l[2] * grid[0] * grid[1];
        for d in 0..3 {
            let mut lo = self.myloc;
            lo[d] = (lo[d] + grid[d] - 1) % grid[d];
            let mut hi = self.myloc;
            hi[d] = (hi[d] + 1) % grid[d];
            self.neigh[d] = [at(lo), at(hi)];
        }
    }

    /// Send `send` to `dest` and receive a message of unknown length from `src`.
    pub fn sendrecv_var(&mut self, send: &[f64], dest: usize, recv: &mut Vec<f64>, src: usize) {
        let t = Instant::now();
        match &self.world {
            Some(w) if dest != self.rank || src != self.rank => {
                let n = send.len() as u64;
                let (m, _): (u64, _) = mpi::point_to_point::send_receive(
                    &n,
                    &w.process_at_rank(dest as i32),
                    &w.process_at_rank(src as i32),
                );
                recv.clear();
                recv.resize(m as usize, 0.0);
                mpi::point_to_point::send_receive_into(
                    send,
                    &w.process_at_rank(dest as i32),
                    &mut recv[..],
                    &w.process_at_rank(src as i32),
                );
            }
            _ => {
                recv.clear();
                recv.extend_from_slice(send);
            }
        }
        self.time += t.elapsed().as_secs_f64();
    }

    /// Send `send` to `dest` and receive exactly `recv.len()` values from `src`.
    /// Returns false when both are this rank (the caller copies locally).
    /// Not timed here: the caller times the whole halo update.
    pub fn sendrecv(&self, send: &[f64], dest: usize, recv: &mut [f64], src: usize) -> bool {
        match &self.world {
            Some(w) if dest != self.rank || src != self.rank => {
                mpi::point_to_point::send_receive_into(
                    send,
                    &w.process_at_rank(dest as i32),
                    recv,
                    &w.process_at_rank(src as i32),
                );
                true
            }
            _ => false,
        }
    }

    pub fn sum(&mut self, v: &mut [f64]) {
        if let Some(w) = &self.world {
            let t = Instant::now();
            let local = v.to_vec();
            w.all_reduce_into(&local[..], v, SystemOperation::sum());
            self.time += t.elapsed().as_secs_f64();
        }
    }

    pub fn max(&mut self, v: f64) -> f64 {
        match &self.world {
            Some(w) => {
                let t = Instant::now();
                let mut out = v;
                w.all_reduce_into(&v, &mut out, SystemOperation::max());
                self.time += t.elapsed().as_secs_f64();
                out
            }
            None => v,
        }
    }

    pub fn barrier(&self) {
        if let Some(w) = &self.world {
            w.barrier();
        }
    }
}
