//! Orders waiting for workers. The actor pushes; a worker's long poll takes
//! them, waiting up to its `waitMs` for the first one to arrive.
//!
//! Every order to a node has a position in this scheduler process's stream
//! of orders to it ([`OrderSeq`]: the process's epoch and a count). An order
//! stays in the mailbox, and goes out with every poll, until a poll of that
//! node acknowledges it: a reply lost on the way (a link cut while it was
//! in flight) loses no order. The worker takes each position once.

use shoal_model::wire::{Order, OrderSeq};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
struct Slot {
    /// Not yet acknowledged: (seq, order, handed out in a reply).
    orders: Vec<(u64, Order, bool)>,
    /// The seq of the last order pushed.
    last: u64,
    notify: Arc<Notify>,
}

/// Per-node order queues, shared by the actor and the HTTP handlers.
#[derive(Clone)]
pub struct Mailboxes {
    inner: Arc<Mutex<HashMap<String, Slot>>>,
    epoch: u64,
}

impl Default for Mailboxes {
    fn default() -> Self {
        // A new stream per scheduler process: the clock's nanoseconds and
        // the pid, never 0 (a worker that has taken nothing acks epoch 0).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Mailboxes {
            inner: Arc::default(),
            epoch: (nanos ^ (u64::from(std::process::id()) << 40)) | 1,
        }
    }
}

impl Mailboxes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue an order for `node` and wake its poll.
    pub fn push(&self, node: &str, order: Order) {
        let mut m = self.lock();
        let slot = m.entry(node.to_string()).or_default();
        slot.last += 1;
        let seq = slot.last;
        slot.orders.push((seq, order, false));
        slot.notify.notify_one();
    }

    /// Whether an order for `node` is not yet acknowledged.
    pub fn has_pending(&self, node: &str, pred: impl Fn(&Order) -> bool) -> bool {
        let m = self.lock();
        m.get(node)
            .is_some_and(|s| s.orders.iter().any(|(_, o, _)| pred(o)))
    }

    /// Take back the Start orders of `node` that never went out in a reply
    /// (they cannot have reached it), leaving its other orders.
    pub fn withdraw_starts(&self, node: &str) -> Vec<Order> {
        let mut m = self.lock();
        let Some(s) = m.get_mut(node) else {
            return Vec::new();
        };
        let (starts, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut s.orders)
            .into_iter()
            .partition(|(_, o, sent)| !sent && matches!(o, Order::Start(_)));
        s.orders = rest;
        starts.into_iter().map(|(_, o, _)| o).collect()
    }

    /// Drop everything queued for `node` (it is gone).
    pub fn clear(&self, node: &str) {
        if let Some(s) = self.lock().get_mut(node) {
            s.orders.clear();
        }
    }

    /// `node` has taken every order up to `ack`: forget them.
    pub fn ack(&self, node: &str, ack: Option<OrderSeq>) {
        let Some(ack) = ack.filter(|a| a.epoch == self.epoch) else {
            return;
        };
        if let Some(s) = self.lock().get_mut(node) {
            s.orders.retain(|(seq, _, _)| *seq > ack.seq);
        }
    }

    fn take(&self, node: &str) -> (Vec<Order>, OrderSeq, Arc<Notify>) {
        let mut m = self.lock();
        let slot = m.entry(node.to_string()).or_default();
        let first = OrderSeq {
            epoch: self.epoch,
            seq: slot.orders.first().map_or(slot.last + 1, |o| o.0),
        };
        let orders = slot
            .orders
            .iter_mut()
            .map(|(_, o, sent)| {
                *sent = true;
                o.clone()
            })
            .collect();
        (orders, first, slot.notify.clone())
    }

    /// The orders for `node` not yet acknowledged and the position of the
    /// first, waiting up to `wait` for one to arrive.
    pub async fn take_or_wait(&self, node: &str, wait: Duration) -> (Vec<Order>, OrderSeq) {
        if wait.is_zero() {
            // No timer: tokio's fire on the next millisecond tick at the
            // earliest, which a report's reply would wait for (`shoal
            // bench path` measured 1.4 ms).
            let (orders, first, _) = self.take(node);
            return (orders, first);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (orders, first, notify) = self.take(node);
            if !orders.is_empty() {
                return (orders, first);
            }
            // `notify_one` stores a permit when nobody waits, so an order
            // pushed between `take` and here is not missed.
            if tokio::time::timeout_at(deadline, notify.notified())
                .await
                .is_err()
            {
                let (orders, first, _) = self.take(node);
                return (orders, first);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_model::wire::TaskRef;

    fn kill(n: u32) -> Order {
        Order::Kill {
            task: TaskRef {
                job_id: format!("j{n}").parse().unwrap(),
                attempt: 0,
                node_index: 0,
            },
            reason: String::new(),
        }
    }

    #[test]
    fn a_poll_that_waits_zero_needs_no_timer() {
        // A runtime without timers: a timer would panic here (and fire on
        // the next millisecond tick at the earliest where there are some).
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let m = Mailboxes::default();
        let (none, _) = rt.block_on(m.take_or_wait("n", Duration::ZERO));
        assert!(none.is_empty());
        m.push("n", kill(1));
        let (orders, first) = rt.block_on(m.take_or_wait("n", Duration::ZERO));
        assert_eq!((orders, first.seq), (vec![kill(1)], 1));
    }

    #[tokio::test]
    async fn an_order_goes_out_until_acknowledged_and_then_never_again() {
        let m = Mailboxes::default();
        m.push("n", kill(1));
        m.push("n", kill(2));
        let (orders, first) = m.take_or_wait("n", Duration::ZERO).await;
        assert_eq!(orders, vec![kill(1), kill(2)]);
        assert_eq!(first.seq, 1);
        // The reply was lost: the next poll acknowledges nothing new.
        m.ack("n", None);
        let (again, first_again) = m.take_or_wait("n", Duration::ZERO).await;
        assert_eq!((again, first_again), (vec![kill(1), kill(2)], first));
        // Another scheduler's acknowledgement means nothing here.
        m.ack(
            "n",
            Some(OrderSeq {
                epoch: first.epoch ^ 2,
                seq: 9,
            }),
        );
        assert_eq!(m.take_or_wait("n", Duration::ZERO).await.0.len(), 2);
        m.ack(
            "n",
            Some(OrderSeq {
                epoch: first.epoch,
                seq: 1,
            }),
        );
        m.push("n", kill(3));
        let (rest, from) = m.take_or_wait("n", Duration::ZERO).await;
        assert_eq!(rest, vec![kill(2), kill(3)]);
        assert_eq!(from.seq, 2);
        // Sent Starts are not withdrawn (they may have arrived); others are.
        assert!(m.withdraw_starts("n").is_empty());
    }
}
