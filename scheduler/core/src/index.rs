//! Typed indices: a slot of each table the core keeps (jobs, nodes,
//! queues, shapes, status reasons) has a type of its own, and a table is an
//! [`IndexVec`] that only its own index opens. "No slot" is `None`: an index
//! is stored as its value plus one in a `NonZeroU32`, so an `Option` of one
//! is as small as the index (4 bytes), which keeps the pass's entries the
//! size they were.

use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::ops::{Index, IndexMut};

/// An index into one kind of table.
pub(crate) trait Idx: Copy + Eq {
    /// The index of position `i`.
    fn new(i: usize) -> Self;
    /// Its position.
    fn index(self) -> usize;
}

macro_rules! define_index {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub(crate) struct $name(NonZeroU32);

        #[allow(dead_code)]
        impl $name {
            /// The lowest index (bounds of ranges over sets keyed by it).
            pub(crate) const FIRST: $name = $name(NonZeroU32::MIN);
            /// The highest index.
            pub(crate) const LAST: $name = $name(NonZeroU32::MAX);
        }

        impl Idx for $name {
            #[inline]
            fn new(i: usize) -> Self {
                let n = u32::try_from(i + 1).ok().and_then(NonZeroU32::new);
                $name(n.expect("a core table holds fewer than 2^32 - 1 entries"))
            }
            #[inline]
            fn index(self) -> usize {
                (self.0.get() - 1) as usize
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.index())
            }
        }
    )*};
}

define_index! {
    /// A job's slot in `Core::jobs`.
    JobSlot;
    /// A node's slot in the cluster's node tables (`hot`, `meta`, `overdue`).
    NodeSlot;
    /// A queue's slot in `Cluster::queues`.
    QueueSlot;
    /// A shape (queue, demand) in `Cluster::shapes`.
    ShapeId;
    /// An interned status reason in `Reasons`.
    ReasonId;
}

/// A vector opened only by its index type `I`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct IndexVec<I, T> {
    raw: Vec<T>,
    _index: PhantomData<fn(I) -> I>,
}

impl<I: Idx, T> IndexVec<I, T> {
    /// An empty table.
    pub fn new() -> Self {
        IndexVec {
            raw: Vec::new(),
            _index: PhantomData,
        }
    }

    /// `n` copies of `value`.
    pub fn from_elem(value: T, n: usize) -> Self
    where
        T: Clone,
    {
        IndexVec {
            raw: vec![value; n],
            _index: PhantomData,
        }
    }

    /// Append `value`; its index.
    #[inline]
    pub fn push(&mut self, value: T) -> I {
        let i = I::new(self.raw.len());
        self.raw.push(value);
        i
    }

    /// The index the next push gets.
    #[inline]
    pub fn next_index(&self) -> I {
        I::new(self.raw.len())
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    #[inline]
    pub fn get(&self, i: I) -> Option<&T> {
        self.raw.get(i.index())
    }

    #[inline]
    pub fn get_mut(&mut self, i: I) -> Option<&mut T> {
        self.raw.get_mut(i.index())
    }

    /// Every (index, value).
    #[inline]
    pub fn iter_enumerated(&self) -> impl Iterator<Item = (I, &T)> + '_ {
        self.raw.iter().enumerate().map(|(i, v)| (I::new(i), v))
    }

    /// Every index.
    #[inline]
    pub fn indices(&self) -> impl Iterator<Item = I> + 'static
    where
        I: 'static,
    {
        (0..self.raw.len()).map(I::new)
    }

    /// Grow or shrink to `n` entries, filling with `value`.
    pub fn resize(&mut self, n: usize, value: T)
    where
        T: Clone,
    {
        self.raw.resize(n, value);
    }
}

impl<I: Idx, T> Default for IndexVec<I, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I: Idx, T: fmt::Debug> fmt::Debug for IndexVec<I, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.raw.fmt(f)
    }
}

impl<I: Idx, T> Index<I> for IndexVec<I, T> {
    type Output = T;
    #[inline]
    fn index(&self, i: I) -> &T {
        &self.raw[i.index()]
    }
}

impl<I: Idx, T> IndexMut<I> for IndexVec<I, T> {
    #[inline]
    fn index_mut(&mut self, i: I) -> &mut T {
        &mut self.raw[i.index()]
    }
}

impl<'a, I: Idx, T> IntoIterator for &'a IndexVec<I, T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.raw.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_and_its_option_are_four_bytes_and_round_trip() {
        assert_eq!(std::mem::size_of::<JobSlot>(), 4);
        assert_eq!(std::mem::size_of::<Option<JobSlot>>(), 4);
        for i in [0usize, 1, 7, u32::MAX as usize - 1] {
            assert_eq!(NodeSlot::new(i).index(), i);
        }
        let mut v: IndexVec<QueueSlot, &str> = IndexVec::new();
        let a = v.push("a");
        let b = v.push("b");
        assert_eq!((v[a], v[b]), ("a", "b"));
        assert_eq!(v.next_index().index(), 2);
        assert_eq!(
            v.iter_enumerated().map(|(i, _)| i).collect::<Vec<_>>(),
            [a, b]
        );
    }
}
