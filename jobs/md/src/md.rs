//! Lennard-Jones MD with LAMMPS' algorithms: fcc lattice, `loop geom`
//! velocities, velocity-Verlet NVE, binned half neighbour lists with
//! `newton on` (ghost forces are sent back by reverse communication), and a
//! 3-D domain decomposition with 6-direction halo exchange.

use crate::comm::Comm;
use crate::input::Input;
use crate::rng::RanPark;
use std::f64::consts::PI;
use std::time::Instant;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum MdError {
    #[error("subdomain is {width:.4} wide in dimension {dim}, less than the neighbour cutoff {cut:.4}: use fewer ranks or a bigger box")]
    DomainTooSmall { dim: usize, width: f64, cut: f64 },
    #[error("box is too small for the cutoff: length {len:.4} < 2 × {cut:.4}")]
    BoxTooSmall { len: f64, cut: f64 },
    #[error("lost atoms: {have} of {expected}")]
    LostAtoms { have: f64, expected: f64 },
    #[error("fewer than 2 atoms created")]
    NoAtoms,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Thermo {
    pub step: u64,
    pub temp: f64,
    pub e_pair: f64,
    pub tot_eng: f64,
    pub press: f64,
}

struct Swap {
    dim: usize,
    sendproc: usize,
    recvproc: usize,
    shift: f64,
    sendlist: Vec<u32>,
    firstrecv: usize,
    nrecv: usize,
}

pub struct Sim {
    pub comm: Comm,
    lo: [f64; 3],
    prd: [f64; 3],
    sublo: [f64; 3],
    subhi: [f64; 3],
    pub natoms: usize,
    nlocal: usize,
    x: Vec<[f64; 3]>,
    v: Vec<[f64; 3]>,
    f: Vec<[f64; 3]>,
    typ: Vec<u32>,
    xhold: Vec<[f64; 3]>,
    ntypes: usize,
    /// lj1 lj2 lj3 lj4 cutsq per type pair.
    pp: Vec<[f64; 5]>,
    /// Charge per type.
    qtype: Vec<f64>,
    /// DSF Coulomb: alpha, cut_coulsq, e_shift, f_shift.
    dsf: Option<[f64; 4]>,
    /// Reaction field: cut_coulsq, k_rf, c_rf.
    rf: Option<[f64; 3]>,
    mass: Vec<f64>,
    cutneigh: f64,
    skin: f64,
    numneigh: Vec<u32>,
    firstneigh: Vec<u32>,
    neigh: Vec<u32>,
    swaps: Vec<Swap>,
    buf: Vec<f64>,
    rbuf: Vec<f64>,
    dt: f64,
    every: u64,
    delay: u64,
    check: bool,
    pub step: u64,
    last_build: u64,
    pub nbuilds: u64,
    /// This rank's Coulomb energy from the last energy-tallying force call.
    pub last_ecoul: f64,
}

/// Lattice constant of `lattice fcc RHO` in LJ units, as LAMMPS computes it.
pub fn fcc_a(rho: f64) -> f64 {
    (4.0 / 1.0 / rho).powf(1.0 / 3.0)
}

impl Sim {
    pub fn new(inp: &Input, mut comm: Comm) -> Result<Self, MdError> {
        let a = fcc_a(inp.rho);
        let r = inp.region;
        let lo = [r[0] * a, r[2] * a, r[4] * a];
        let hi = [r[1] * a, r[3] * a, r[5] * a];
        let prd = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
        let n = inp.ntypes;
        let mut pp = vec![[0.0; 5]; n * n];
        let mut cutmax: f64 = 0.0;
        for (k, c) in inp.coeff.iter().enumerate() {
            let [eps, sig, cut] = c.unwrap_or([0.0, 1.0, 0.0]);
            pp[k] = [
                48.0 * eps * sig.powi(12),
                24.0 * eps * sig.powi(6),
                4.0 * eps * sig.powi(12),
                4.0 * eps * sig.powi(6),
                cut * cut,
            ];
            cutmax = cutmax.max(cut);
        }
        let dsf = inp.coul_dsf.map(|(alpha, rc)| {
            let erfcc = erfc(alpha * rc);
            let erfcd = (-alpha * alpha * rc * rc).exp();
            let f_shift = -(erfcc / (rc * rc) + 2.0 / PI.sqrt() * alpha * erfcd / rc);
            let e_shift = erfcc / rc - f_shift * rc;
            [alpha, rc * rc, e_shift, f_shift]
        });
        let rf = inp.coul_rf.map(|(rc, eps)| {
            let k_rf = if eps == 0.0 {
                0.5 / (rc * rc * rc)
            } else {
                (eps - 1.0) / ((2.0 * eps + 1.0) * rc * rc * rc)
            };
            [rc * rc, k_rf, 1.0 / rc + k_rf * rc * rc]
        });
        if let Some((_, rc)) = inp.coul_dsf {
            cutmax = cutmax.max(rc);
        }
        let cutneigh = cutmax + inp.skin;
        for &len in &prd {
            if len < 2.0 * cutneigh {
                return Err(MdError::BoxTooSmall { len, cut: cutneigh });
            }
        }
        comm.set_grid(prd);
        let mut sublo = [0.0; 3];
        let mut subhi = [0.0; 3];
        for d in 0..3 {
            let g = comm.grid[d];
            let l = comm.myloc[d];
            sublo[d] = lo[d] + prd[d] * (l as f64 / g as f64);
            subhi[d] = if l + 1 < g {
                lo[d] + prd[d] * ((l + 1) as f64 / g as f64)
            } else {
                hi[d]
            };
            if subhi[d] - sublo[d] < cutneigh {
                return Err(MdError::DomainTooSmall {
                    dim: d,
                    width: subhi[d] - sublo[d],
                    cut: cutneigh,
                });
            }
        }

        // create_atoms: loop k, j, i, basis; every rank makes all atoms so
        // that the momentum removal and scaling are rank-independent.
        let basis = [
            [0.0, 0.0, 0.0],
            [0.5, 0.5, 0.0],
            [0.5, 0.0, 0.5],
            [0.0, 0.5, 0.5],
        ];
        let range = |d: usize| ((r[2 * d].floor() as i64) - 1)..=((r[2 * d + 1].ceil() as i64) + 1);
        let mut all_x = Vec::new();
        let mut all_t: Vec<u32> = Vec::new();
        for k in range(2) {
            for j in range(1) {
                for i in range(0) {
                    for (b, bt) in basis.iter().zip(inp.basis_types) {
                        let p = [
                            (i as f64 + b[0]) * a,
                            (j as f64 + b[1]) * a,
                            (k as f64 + b[2]) * a,
                        ];
                        if (0..3).all(|d| p[d] >= lo[d] && p[d] < hi[d]) {
                            all_x.push(p);
                            all_t.push((bt - 1) as u32);
                        }
                    }
                }
            }
        }
        if all_x.len() < 2 {
            return Err(MdError::NoAtoms);
        }
        let natoms = all_x.len();
        let mut rng = RanPark::new(inp.seed);
        let mut all_v: Vec<[f64; 3]> = all_x
            .iter()
            .zip(&all_t)
            .map(|(p, &t)| {
                let factor = 1.0 / inp.mass[t as usize].sqrt();
                rng.reset(inp.seed, *p);
                let vx = rng.uniform() - 0.5;
                let vy = rng.uniform() - 0.5;
                let vz = rng.uniform() - 0.5;
                [vx * factor, vy * factor, vz * factor]
            })
            .collect();
        // zero momentum
        let mut p = [0.0; 3];
        let mut mtot = 0.0;
        for (v, &t) in all_v.iter().zip(&all_t) {
            let m = inp.mass[t as usize];
            mtot += m;
            for d in 0..3 {
                p[d] += m * v[d];
            }
        }
        for v in &mut all_v {
            for d in 0..3 {
                v[d] -= p[d] / mtot;
            }
        }
        let dof = 3.0 * natoms as f64 - 3.0;
        let t = all_v
            .iter()
            .zip(&all_t)
            .map(|(v, &t)| inp.mass[t as usize] * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]))
            .sum::<f64>()
            / dof;
        let scale = (inp.temp / t).sqrt();
        let mut x = Vec::new();
        let mut v = Vec::new();
        let mut typ = Vec::new();
        for ((px, pv), &t) in all_x.iter().zip(&all_v).zip(&all_t) {
            if (0..3).all(|d| px[d] >= sublo[d] && px[d] < subhi[d]) {
                x.push(*px);
                typ.push(t);
                v.push([pv[0] * scale, pv[1] * scale, pv[2] * scale]);
            }
        }
        let nlocal = x.len();
        let mut sim = Sim {
            comm,
            lo,
            prd,
            sublo,
            subhi,
            natoms,
            nlocal,
            f: vec![[0.0; 3]; nlocal],
            typ,
            x,
            v,
            xhold: Vec::new(),
            ntypes: n,
            pp,
            qtype: inp.charges.clone(),
            dsf,
            rf,
            mass: inp.mass.clone(),
            cutneigh,
            skin: inp.skin,
            numneigh: Vec::new(),
            firstneigh: Vec::new(),
            neigh: Vec::new(),
            swaps: Vec::new(),
            buf: Vec::new(),
            rbuf: Vec::new(),
            dt: inp.dt,
            every: inp.neigh_every,
            delay: inp.neigh_delay,
            check: inp.neigh_check,
            step: 0,
            last_build: 0,
            nbuilds: 0,
            last_ecoul: 0.0,
        };
        sim.reneighbor();
        sim.force::<false>();
        Ok(sim)
    }

    fn nall(&self) -> usize {
        self.x.len()
    }

    /// Wrap, migrate, rebuild ghosts and the neighbour list.
    fn reneighbor(&mut self) {
        self.x.truncate(self.nlocal);
        self.typ.truncate(self.nlocal);
        for p in self.x.iter_mut() {
            for d in 0..3 {
                let hi = self.lo[d] + self.prd[d];
                if p[d] < self.lo[d] {
                    p[d] += self.prd[d];
                }
                if p[d] >= hi {
                    p[d] -= self.prd[d];
                    p[d] = p[d].max(self.lo[d]);
                }
            }
        }
        self.exchange();
        self.borders();
        self.build_neighbors();
        self.xhold.clear();
        self.xhold.extend_from_slice(&self.x[..self.nlocal]);
        self.last_build = self.step;
        self.nbuilds += 1;
    }

    fn exchange(&mut self) {
        for d in 0..3 {
            if self.comm.grid[d] == 1 {
                continue;
            }
            let mut out = Vec::new();
            let mut i = 0;
            while i < self.nlocal {
                let c = self.x[i][d];
                if c < self.sublo[d] || c >= self.subhi[d] {
                    let (p, v) = (self.x[i], self.v[i]);
                    out.extend_from_slice(&[
                        p[0],
                        p[1],
                        p[2],
                        v[0],
                        v[1],
                        v[2],
                        self.typ[i] as f64,
                    ]);
                    let last = self.nlocal - 1;
                    self.x.swap(i, last);
                    self.v.swap(i, last);
                    self.typ.swap(i, last);
                    self.x.pop();
                    self.v.pop();
                    self.typ.pop();
                    self.nlocal -= 1;
                } else {
                    i += 1;
                }
            }
            let [down, up] = self.comm.neigh[d];
            let mut recv = Vec::new();
            self.comm.sendrecv_var(&out, down, &mut recv, up);
            let mut all = recv.clone();
            if self.comm.grid[d] > 2 {
                self.comm.sendrecv_var(&out, up, &mut recv, down);
                all.extend_from_slice(&recv);
            }
            for a in all.chunks_exact(7) {
                if a[d] >= self.sublo[d] && a[d] < self.subhi[d] {
                    self.x.push([a[0], a[1], a[2]]);
                    self.v.push([a[3], a[4], a[5]]);
                    self.typ.push(a[6] as u32);
                    self.nlocal += 1;
                }
            }
        }
    }

    fn borders(&mut self) {
        self.swaps.clear();
        for d in 0..3 {
            let nlast = self.nall();
            for side in 0..2 {
                let mut list = Vec::new();
                for i in 0..nlast {
                    let c = self.x[i][d];
                    let send = if side == 0 {
                        c < self.sublo[d] + self.cutneigh
                    } else {
                        c >= self.subhi[d] - self.cutneigh
                    };
                    if send {
                        list.push(i as u32);
                    }
                }
                let (sendproc, recvproc, shift) = if side == 0 {
                    let s = if self.comm.myloc[d] == 0 {
                        self.prd[d]
                    } else {
                        0.0
                    };
                    (self.comm.neigh[d][0], self.comm.neigh[d][1], s)
                } else {
                    let s = if self.comm.myloc[d] + 1 == self.comm.grid[d] {
                        -self.prd[d]
                    } else {
                        0.0
                    };
                    (self.comm.neigh[d][1], self.comm.neigh[d][0], s)
                };
                let mut out = Vec::with_capacity(list.len() * 4);
                for &i in &list {
                    let mut p = self.x[i as usize];
                    p[d] += shift;
                    out.extend_from_slice(&[p[0], p[1], p[2], self.typ[i as usize] as f64]);
                }
                let mut recv = Vec::new();
                self.comm.sendrecv_var(&out, sendproc, &mut recv, recvproc);
                let firstrecv = self.nall();
                for a in recv.chunks_exact(4) {
                    self.x.push([a[0], a[1], a[2]]);
                    self.typ.push(a[3] as u32);
                }
                self.swaps.push(Swap {
                    dim: d,
                    sendproc,
                    recvproc,
                    shift,
                    sendlist: list,
                    firstrecv,
                    nrecv: recv.len() / 4,
                });
            }
        }
        let n = self.nall();
        self.f.resize(n, [0.0; 3]);
    }

    fn forward_comm(&mut self) {
        let t = Instant::now();
        let mut buf = std::mem::take(&mut self.buf);
        let mut rbuf = std::mem::take(&mut self.rbuf);
        for s in &self.swaps {
            buf.clear();
            for &i in &s.sendlist {
                let mut p = self.x[i as usize];
                p[s.dim] += s.shift;
                buf.extend_from_slice(&p);
            }
            rbuf.clear();
            rbuf.resize(s.nrecv * 3, 0.0);
            let src: &[f64] = if self.comm.sendrecv(&buf, s.sendproc, &mut rbuf, s.recvproc) {
                &rbuf
            } else {
                &buf
            };
            for (k, p) in src.chunks_exact(3).enumerate() {
                self.x[s.firstrecv + k] = [p[0], p[1], p[2]];
            }
        }
        self.buf = buf;
        self.rbuf = rbuf;
        self.add_local_comm_time(t);
    }

    fn reverse_comm(&mut self) {
        let t = Instant::now();
        let mut buf = std::mem::take(&mut self.buf);
        let mut rbuf = std::mem::take(&mut self.rbuf);
        for s in self.swaps.iter().rev() {
            buf.clear();
            for fv in &self.f[s.firstrecv..s.firstrecv + s.nrecv] {
                buf.extend_from_slice(fv);
            }
            rbuf.clear();
            rbuf.resize(s.sendlist.len() * 3, 0.0);
            let src: &[f64] = if self.comm.sendrecv(&buf, s.recvproc, &mut rbuf, s.sendproc) {
                &rbuf
            } else {
                &buf
            };
            for (k, &i) in s.sendlist.iter().enumerate() {
                let f = &mut self.f[i as usize];
                f[0] += src[3 * k];
                f[1] += src[3 * k + 1];
                f[2] += src[3 * k + 2];
            }
        }
        self.buf = buf;
        self.rbuf = rbuf;
        self.add_local_comm_time(t);
    }

    /// Count the whole halo update (packing, local copies, MPI) as
    /// communication time, as LAMMPS' "Comm" column does.
    fn add_local_comm_time(&mut self, t: Instant) {
        self.comm.time += t.elapsed().as_secs_f64();
    }

    fn build_neighbors(&mut self) {
        let nall = self.nall();
        let cut = self.cutneigh;
        let cutsq = cut * cut;
        let mut blo = [0.0; 3];
        let mut nb = [0usize; 3];
        let mut binsize = [0.0; 3];
        for d in 0..3 {
            blo[d] = self.sublo[d] - cut;
            let ext = self.subhi[d] + cut - blo[d];
            nb[d] = ((ext / cut).floor() as usize).max(1);
            binsize[d] = ext / nb[d] as f64;
        }
        let bin_of = |p: &[f64; 3]| -> [usize; 3] {
            let mut b = [0usize; 3];
            for d in 0..3 {
                let c = ((p[d] - blo[d]) / binsize[d]).floor();
                b[d] = if c < 0.0 {
                    0
                } else {
                    (c as usize).min(nb[d] - 1)
                };
            }
            b
        };
        let nbins = nb[0] * nb[1] * nb[2];
        let mut bins = Vec::with_capacity(nall);
        let mut start = vec![0u32; nbins + 1];
        for p in &self.x {
            let b = bin_of(p);
            let id = b[0] + nb[0] * (b[1] + nb[1] * b[2]);
            bins.push(id as u32);
            start[id + 1] += 1;
        }
        for k in 0..nbins {
            start[k + 1] += start[k];
        }
        let mut fill = start.clone();
        let mut sorted = vec![0u32; nall];
        for (i, &b) in bins.iter().enumerate() {
            sorted[fill[b as usize] as usize] = i as u32;
            fill[b as usize] += 1;
        }
        self.neigh.clear();
        self.firstneigh.clear();
        self.numneigh.clear();
        let x = &self.x;
        for i in 0..self.nlocal {
            let xi = x[i];
            let b = bin_of(&xi);
            self.firstneigh.push(self.neigh.len() as u32);
            let (z0, z1) = (b[2].saturating_sub(1), (b[2] + 1).min(nb[2] - 1));
            let (y0, y1) = (b[1].saturating_sub(1), (b[1] + 1).min(nb[1] - 1));
            let (x0, x1) = (b[0].saturating_sub(1), (b[0] + 1).min(nb[0] - 1));
            for bz in z0..=z1 {
                for by in y0..=y1 {
                    for bx in x0..=x1 {
                        let id = bx + nb[0] * (by + nb[1] * bz);
                        for &j in &sorted[start[id] as usize..start[id + 1] as usize] {
                            let j = j as usize;
                            let xj = x[j];
                            let keep = if j < self.nlocal {
                                j > i
                            } else {
                                xj[2] > xi[2]
                                    || (xj[2] == xi[2]
                                        && (xj[1] > xi[1] || (xj[1] == xi[1] && xj[0] > xi[0])))
                            };
                            if !keep {
                                continue;
                            }
                            let dx = xi[0] - xj[0];
                            let dy = xi[1] - xj[1];
                            let dz = xi[2] - xj[2];
                            if dx * dx + dy * dy + dz * dz < cutsq {
                                self.neigh.push(j as u32);
                            }
                        }
                    }
                }
            }
            let n = self.neigh.len() as u32 - self.firstneigh[i];
            self.numneigh.push(n);
        }
    }

    /// Compute forces (and, with EFLAG, return energy and virial sums of
    /// this rank's pairs), then send ghost forces home.
    fn force<const EFLAG: bool>(&mut self) -> (f64, f64) {
        if self.dsf.is_some() || self.rf.is_some() {
            return self.force_dsf::<EFLAG>();
        }
        let nall = self.nall();
        for fv in &mut self.f[..nall] {
            *fv = [0.0; 3];
        }
        let mut eng = 0.0;
        let mut vir = 0.0;
        let x = &self.x[..nall];
        let f = &mut self.f[..nall];
        let typ = &self.typ[..nall];
        let nt = self.ntypes;
        let pp = &self.pp[..];
        let neigh = &self.neigh[..];
        for i in 0..self.nlocal {
            // SAFETY: every index below is < nall, established by
            // build_neighbors (j < x.len()) and the loop bound.
            unsafe {
                let xi = *x.get_unchecked(i);
                let ti = *typ.get_unchecked(i) as usize * nt;
                let mut fi = [0.0; 3];
                let s = *self.firstneigh.get_unchecked(i) as usize;
                let n = *self.numneigh.get_unchecked(i) as usize;
                for &j in neigh.get_unchecked(s..s + n) {
                    let j = j as usize;
                    let xj = *x.get_unchecked(j);
                    let dx = xi[0] - xj[0];
                    let dy = xi[1] - xj[1];
                    let dz = xi[2] - xj[2];
                    let rsq = dx * dx + dy * dy + dz * dz;
                    let c = pp.get_unchecked(ti + *typ.get_unchecked(j) as usize);
                    if rsq < c[4] {
                        let r2inv = 1.0 / rsq;
                        let r6inv = r2inv * r2inv * r2inv;
                        let forcelj = r6inv * (c[0] * r6inv - c[1]);
                        let fpair = forcelj * r2inv;
                        fi[0] += dx * fpair;
                        fi[1] += dy * fpair;
                        fi[2] += dz * fpair;
                        let fj = f.get_unchecked_mut(j);
                        fj[0] -= dx * fpair;
                        fj[1] -= dy * fpair;
                        fj[2] -= dz * fpair;
                        if EFLAG {
                            eng += r6inv * (c[2] * r6inv - c[3]);
                            vir += rsq * fpair;
                        }
                    }
                }
                let fv = f.get_unchecked_mut(i);
                fv[0] += fi[0];
                fv[1] += fi[1];
                fv[2] += fi[2];
            }
        }
        self.reverse_comm();
        (eng, vir)
    }

    /// lj/cut/coul/dsf (Fennell & Gezelter's damped shifted force Coulomb,
    /// as LAMMPS' pair style: erfc by Abramowitz–Stegun 7.1.26 inside the
    /// loop, self energy per atom). Returns (E_vdwl + E_coul, virial).
    fn force_dsf<const EFLAG: bool>(&mut self) -> (f64, f64) {
        const EWALD_P: f64 = 0.3275911;
        const A1: f64 = 0.254829592;
        const A2: f64 = -0.284496736;
        const A3: f64 = 1.421413741;
        const A4: f64 = -1.453152027;
        const A5: f64 = 1.061405429;
        let [alpha, mut cut_coulsq, e_shift, f_shift] = self.dsf.unwrap_or_default();
        let rf = self.rf;
        if let Some(r) = rf {
            cut_coulsq = r[0];
        }
        let pis = PI.sqrt();
        let nall = self.nall();
        for fv in &mut self.f[..nall] {
            *fv = [0.0; 3];
        }
        let (mut evdwl, mut ecoul, mut vir) = (0.0, 0.0, 0.0);
        let nt = self.ntypes;
        for i in 0..self.nlocal {
            let xi = self.x[i];
            let ti = self.typ[i] as usize;
            let qi = self.qtype[ti];
            if EFLAG && rf.is_none() {
                ecoul += -(e_shift / 2.0 + alpha / pis) * qi * qi;
            }
            let mut fi = [0.0; 3];
            let s = self.firstneigh[i] as usize;
            let n = self.numneigh[i] as usize;
            for k in s..s + n {
                let j = self.neigh[k] as usize;
                let xj = self.x[j];
                let tj = self.typ[j] as usize;
                let dx = xi[0] - xj[0];
                let dy = xi[1] - xj[1];
                let dz = xi[2] - xj[2];
                let rsq = dx * dx + dy * dy + dz * dz;
                let c = &self.pp[ti * nt + tj];
                let in_lj = rsq < c[4];
                let in_coul = rsq < cut_coulsq;
                if !in_lj && !in_coul {
                    continue;
                }
                let r2inv = 1.0 / rsq;
                let mut forcecoul = 0.0;
                if let (true, Some([_, k_rf, c_rf])) = (in_coul, rf) {
                    // V = qq (1/r + k_rf r² − c_rf); F·r̂ = qq (1/r² − 2 k_rf r)
                    let r = rsq.sqrt();
                    let qq = qi * self.qtype[tj];
                    forcecoul = qq * (1.0 / r - 2.0 * k_rf * rsq);
                    if EFLAG {
                        ecoul += qq * (1.0 / r + k_rf * rsq - c_rf);
                    }
                } else if in_coul {
                    let r = rsq.sqrt();
                    let prefactor = qi * self.qtype[tj] / r;
                    let erfcd = (-alpha * alpha * rsq).exp();
                    let t = 1.0 / (1.0 + EWALD_P * alpha * r);
                    let erfcc = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5)))) * erfcd;
                    forcecoul =
                        prefactor * (erfcc / r + 2.0 * alpha / pis * erfcd + r * f_shift) * r;
                    if EFLAG {
                        ecoul += prefactor * (erfcc - r * e_shift - rsq * f_shift);
                    }
                }
                let mut forcelj = 0.0;
                if in_lj {
                    let r6inv = r2inv * r2inv * r2inv;
                    forcelj = r6inv * (c[0] * r6inv - c[1]);
                    if EFLAG {
                        evdwl += r6inv * (c[2] * r6inv - c[3]);
                    }
                }
                let fpair = (forcecoul + forcelj) * r2inv;
                fi[0] += dx * fpair;
                fi[1] += dy * fpair;
                fi[2] += dz * fpair;
                let fj = &mut self.f[j];
                fj[0] -= dx * fpair;
                fj[1] -= dy * fpair;
                fj[2] -= dz * fpair;
                if EFLAG {
                    vir += rsq * fpair;
                }
            }
            let fv = &mut self.f[i];
            fv[0] += fi[0];
            fv[1] += fi[1];
            fv[2] += fi[2];
        }
        self.reverse_comm();
        self.last_ecoul = ecoul;
        (evdwl + ecoul, vir)
    }

    fn need_build(&mut self) -> bool {
        let ago = self.step - self.last_build;
        if ago < self.delay || ago % self.every != 0 {
            return false;
        }
        if !self.check {
            return true;
        }
        let trig = 0.5 * self.skin;
        let mut dmax: f64 = 0.0;
        for (p, h) in self.x[..self.nlocal].iter().zip(&self.xhold) {
            let d = (p[0] - h[0]).powi(2) + (p[1] - h[1]).powi(2) + (p[2] - h[2]).powi(2);
            dmax = dmax.max(d);
        }
        self.comm.max(if dmax > trig * trig { 1.0 } else { 0.0 }) > 0.0
    }

    /// One velocity-Verlet step; returns thermo sums when `thermo`.
    pub fn step(&mut self, thermo: bool) -> Option<(f64, f64)> {
        let dtf = 0.5 * self.dt;
        for i in 0..self.nlocal {
            let dtfm = dtf / self.mass[self.typ[i] as usize];
            let (v, f, x) = (&mut self.v[i], &self.f[i], &mut self.x[i]);
            for d in 0..3 {
                v[d] += dtfm * f[d];
                x[d] += self.dt * v[d];
            }
        }
        self.step += 1;
        if self.need_build() {
            self.reneighbor();
        } else {
            self.forward_comm();
        }
        let r = if thermo {
            Some(self.force::<true>())
        } else {
            self.force::<false>();
            None
        };
        for i in 0..self.nlocal {
            let dtfm = dtf / self.mass[self.typ[i] as usize];
            let (v, f) = (&mut self.v[i], &self.f[i]);
            for d in 0..3 {
                v[d] += dtfm * f[d];
            }
        }
        r
    }

    /// Global thermo; `ev` are this rank's energy and virial sums.
    pub fn thermo(&mut self, ev: (f64, f64)) -> Result<Thermo, MdError> {
        let mut ke = 0.0;
        for i in 0..self.nlocal {
            let v = self.v[i];
            ke += self.mass[self.typ[i] as usize] * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
        }
        let mut s = [ke, ev.0, ev.1, self.nlocal as f64];
        self.comm.sum(&mut s);
        let [ke, pe, vir, n] = s;
        if n as usize != self.natoms {
            return Err(MdError::LostAtoms {
                have: n,
                expected: self.natoms as f64,
            });
        }
        let n = self.natoms as f64;
        let dof = 3.0 * n - 3.0;
        let temp = ke / dof;
        let vol = self.prd[0] * self.prd[1] * self.prd[2];
        Ok(Thermo {
            step: self.step,
            temp,
            e_pair: pe / n,
            tot_eng: (pe + 0.5 * ke) / n,
            press: (temp * dof + vir) / (3.0 * vol),
        })
    }

    /// Thermo at the current step (recomputes forces with energy tally).
    pub fn thermo_now(&mut self) -> Result<Thermo, MdError> {
        let ev = self.force::<true>();
        self.thermo(ev)
    }

    pub fn box_bounds(&self) -> ([f64; 3], [f64; 3]) {
        let hi = [
            self.lo[0] + self.prd[0],
            self.lo[1] + self.prd[1],
            self.lo[2] + self.prd[2],
        ];
        (self.lo, hi)
    }
}

/// Complementary error function, used once per run for the DSF shifts:
/// Taylor series of erf below 2, continued fraction above (≲1e-13 relative).
pub fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.0 {
        // erf by its Taylor series: 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
        let mut sum: f64 = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs().max(1e-300) {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
            if n > 200.0 {
                break;
            }
        }
        return 1.0 - 2.0 / PI.sqrt() * sum;
    }
    // Continued fraction (Lentz) for x ≥ 2.
    let mut f = x;
    let tiny = 1e-300;
    let mut c = x;
    let mut d = 0.0;
    for k in 1..300 {
        let a = k as f64 / 2.0;
        d = x + a * d;
        d = if d == 0.0 { tiny } else { 1.0 / d };
        c = x + a / c;
        if c == 0.0 {
            c = tiny;
        }
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / (f * PI.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::parse;

    fn small(cells: u32, rho: f64) -> Input {
        let src = format!(
            "units lj\natom_style atomic\nlattice fcc {rho}\nregion box block 0 {cells} 0 {cells} 0 {cells}\ncreate_box 1 box\ncreate_atoms 1 box\nmass 1 1.0\nvelocity all create 1.44 4242 loop geom\npair_style lj/cut 2.5\npair_coeff 1 1 1.0 1.0 2.5\nneighbor 0.3 bin\nneigh_modify every 20 delay 0 check no\nfix 1 all nve\nrun 10\n"
        );
        parse(&src, &[]).unwrap()
    }

    /// Energy and virial by brute force over all pairs, minimum image.
    fn brute(sim: &Sim) -> (f64, f64) {
        let (mut e, mut w) = (0.0, 0.0);
        let x = &sim.x[..sim.nlocal];
        for i in 0..x.len() {
            for j in i + 1..x.len() {
                let mut rsq = 0.0;
                for d in 0..3 {
                    let mut dd = x[i][d] - x[j][d];
                    dd -= sim.prd[d] * (dd / sim.prd[d]).round();
                    rsq += dd * dd;
                }
                if rsq < 6.25 {
                    let r6i = 1.0 / (rsq * rsq * rsq);
                    e += 4.0 * r6i * (r6i - 1.0);
                    w += 24.0 * r6i * (2.0 * r6i - 1.0);
                }
            }
        }
        (e, w)
    }

    #[test]
    fn erfc_values() {
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (1.9, 0.007_209_570_764_742_524),
            (2.5, 4.069_520_174_449_59e-4),
            (-1.0, 1.842_700_792_949_715),
        ] {
            assert!(
                (erfc(x) - want).abs() <= 1e-13 * want,
                "erfc({x}) = {} vs {want}",
                erfc(x)
            );
        }
    }

    /// Shoal's reaction field checked against an O(N²) minimum-image sum of
    /// energy, virial and every force, with two charged types and masses.
    #[test]
    fn reaction_field_matches_brute_force() {
        for eps_rf in [0.0, 78.0] {
            let src = format!(
                "units lj\natom_style charge\nlattice fcc 0.8442\nregion box block 0 6 0 6 0 6\ncreate_box 2 box\ncreate_atoms 1 box basis 2 2 basis 4 2\nmass 1 1.0\nmass 2 2.0\nset type 1 charge 0.7\nset type 2 charge -0.7\nvelocity all create 1.2 99 loop geom\npair_style lj/cut/coul/rf 2.5 {eps_rf}\npair_coeff * * 1.0 1.0\npair_coeff 1 2 0.8 1.1\nneighbor 0.3 bin\nneigh_modify every 20 delay 0 check no\nfix 1 all nve\nrun 10\n"
            );
            let inp = parse(&src, &[]).unwrap();
            let mut sim = Sim::new(&inp, Comm::serial()).unwrap();
            for _ in 0..9 {
                sim.step(false);
            }
            let (e, w) = sim.force::<true>();
            let rc = 2.5f64;
            let k_rf = if eps_rf == 0.0 {
                0.5 / rc.powi(3)
            } else {
                (eps_rf - 1.0) / ((2.0 * eps_rf + 1.0) * rc.powi(3))
            };
            let c_rf = 1.0 / rc + k_rf * rc * rc;
            let n = sim.nlocal;
            let x = &sim.x[..n];
            let (mut eb, mut wb) = (0.0, 0.0);
            let mut fb = vec![[0.0f64; 3]; n];
            for i in 0..n {
                for j in i + 1..n {
                    let mut del = [0.0; 3];
                    for d in 0..3 {
                        del[d] = x[i][d] - x[j][d];
                        del[d] -= sim.prd[d] * (del[d] / sim.prd[d]).round();
                    }
                    let r = (del[0] * del[0] + del[1] * del[1] + del[2] * del[2]).sqrt();
                    if r >= rc {
                        continue;
                    }
                    let (ti, tj) = (sim.typ[i], sim.typ[j]);
                    let (eps, sig) = if ti != tj { (0.8, 1.1) } else { (1.0, 1.0) };
                    let qq = inp.charges[ti as usize] * inp.charges[tj as usize];
                    let sr6 = (sig / r).powi(6);
                    eb += 4.0 * eps * (sr6 * sr6 - sr6) + qq * (1.0 / r + k_rf * r * r - c_rf);
                    // -dV/dr
                    let fmag = 24.0 * eps * (2.0 * sr6 * sr6 - sr6) / r
                        + qq * (1.0 / (r * r) - 2.0 * k_rf * r);
                    wb += fmag * r;
                    for d in 0..3 {
                        fb[i][d] += fmag * del[d] / r;
                        fb[j][d] -= fmag * del[d] / r;
                    }
                }
            }
            assert!((e - eb).abs() < 1e-9 * eb.abs(), "{e} vs {eb}");
            assert!((w - wb).abs() < 1e-9 * wb.abs().max(1.0), "{w} vs {wb}");
            for i in 0..n {
                for d in 0..3 {
                    assert!(
                        (sim.f[i][d] - fb[i][d]).abs() < 1e-9,
                        "atom {i}: {:?} vs {:?}",
                        sim.f[i],
                        fb[i]
                    );
                }
            }
        }
    }

    #[test]
    fn lattice_constant() {
        assert_eq!(fcc_a(0.8442), 1.679_596_191_382_507_3);
    }

    #[test]
    fn forces_match_brute_force_and_momentum_is_zero() {
        for rho in [0.8442, 0.6] {
            let mut sim = Sim::new(&small(6, rho), Comm::serial()).unwrap();
            assert_eq!(sim.natoms, 864);
            for _ in 0..7 {
                sim.step(false);
            }
            let (e, w) = sim.force::<true>();
            let (eb, wb) = brute(&sim);
            assert!((e - eb).abs() < 1e-9 * eb.abs(), "{e} vs {eb}");
            assert!((w - wb).abs() < 1e-9 * wb.abs().max(1.0), "{w} vs {wb}");
            let mut fsum = [0.0; 3];
            let mut p = [0.0; 3];
            for i in 0..sim.nlocal {
                for d in 0..3 {
                    fsum[d] += sim.f[i][d];
                    p[d] += sim.v[i][d];
                }
            }
            for d in 0..3 {
                assert!(fsum[d].abs() < 1e-9 && p[d].abs() < 1e-9, "{fsum:?} {p:?}");
            }
        }
    }

    #[test]
    fn initial_temperature_is_exact() {
        let mut sim = Sim::new(&small(5, 0.8442), Comm::serial()).unwrap();
        let t = sim.thermo_now().unwrap();
        assert!((t.temp - 1.44).abs() < 1e-12);
    }

    #[test]
    fn too_small_box_is_an_error() {
        assert!(matches!(
            Sim::new(&small(2, 0.8442), Comm::serial()),
            Err(MdError::BoxTooSmall { .. })
        ));
    }
}
