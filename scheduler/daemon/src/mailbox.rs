//! Orders waiting for workers. The actor pushes; a worker's long poll takes
//! them, waiting up to its `waitMs` for the first one to arrive.

use shoal_model::wire::Order;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

#[derive(Default)]
struct Slot {
    orders: Vec<Order>,
    notify: Arc<Notify>,
}

/// Per-node order queues, shared by the actor and the HTTP handlers.
#[derive(Default, Clone)]
pub struct Mailboxes {
    inner: Arc<Mutex<HashMap<String, Slot>>>,
}

impl Mailboxes {
    /// Queue an order for `node` and wake its poll.
    pub fn push(&self, node: &str, order: Order) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let slot = m.entry(node.to_string()).or_default();
        slot.orders.push(order);
        slot.notify.notify_one();
    }

    /// Whether an order for `node` is still waiting to be picked up.
    pub fn has_pending(&self, node: &str, pred: impl Fn(&Order) -> bool) -> bool {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.get(node).is_some_and(|s| s.orders.iter().any(pred))
    }

    /// Take back the Start orders `node` has not picked up (they never
    /// reached it), leaving its other orders.
    pub fn withdraw_starts(&self, node: &str) -> Vec<Order> {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(s) = m.get_mut(node) else {
            return Vec::new();
        };
        let (starts, rest) = std::mem::take(&mut s.orders)
            .into_iter()
            .partition(|o| matches!(o, Order::Start(_)));
        s.orders = rest;
        starts
    }

    /// Drop everything queued for `node` (it was lost).
    pub fn clear(&self, node: &str) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = m.get_mut(node) {
            s.orders.clear();
        }
    }

    fn take(&self, node: &str) -> (Vec<Order>, Arc<Notify>) {
        let mut m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let slot = m.entry(node.to_string()).or_default();
        (std::mem::take(&mut slot.orders), slot.notify.clone())
    }

    /// Take the orders for `node`, waiting up to `wait` for one to arrive.
    pub async fn take_or_wait(&self, node: &str, wait: Duration) -> Vec<Order> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let (orders, notify) = self.take(node);
            if !orders.is_empty() {
                return orders;
            }
            // `notify_one` stores a permit when nobody waits, so an order
            // pushed between `take` and here is not missed.
            if tokio::time::timeout_at(deadline, notify.notified())
                .await
                .is_err()
            {
                return self.take(node).0;
            }
        }
    }
}
