//! Two backends behind one: TCP probes go to one, UDP probes to the other
//! (`-sT -sU` with privileges, or `-sS -sU` without), replies are merged.
//!
//! Invariants: a router thread owns both sub-backends; it never blocks on
//! one channel while another has work (bounded queues on every side), and
//! it shuts both down when the engine drops its ends.

use std::collections::VecDeque;
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Select, TrySendError, bounded};

use super::{Backend, PROBE_QUEUE, Probe, REPLY_QUEUE};
use crate::probe::Proto;
use crate::validate::Reply;

/// Most batches held for a busy sub-backend before the router stops
/// taking new ones (backpressure to the engine).
const HOLD: usize = 8;

pub fn mux(tcp: Backend, udp: Backend) -> anyhow::Result<Backend> {
    let (probe_tx, probe_rx) = bounded::<Vec<Probe>>(PROBE_QUEUE);
    let (reply_tx, reply_rx) = bounded::<Vec<Reply>>(REPLY_QUEUE);
    let (stop_tx, stop_rx) = bounded::<()>(0);
    // Both sub-backends were started with the same shared counters.
    let counters = tcp.counters.clone();
    let max_inflight = match (tcp.max_inflight, udp.max_inflight) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let sum = counters.clone();
    let router = thread::Builder::new()
        .name("rawscan-mux".into())
        .spawn(move || {
            let subs = [tcp, udp];
            let mut held: [VecDeque<Vec<Probe>>; 2] = [VecDeque::new(), VecDeque::new()];
            let mut input_open = true;
            loop {
                // Hand held batches to their backend while it has room.
                for (i, sub) in subs.iter().enumerate() {
                    while let Some(b) = held[i].pop_front() {
                        match sub.probes.try_send(b) {
                            Ok(()) => {}
                            Err(TrySendError::Full(b)) => {
                                held[i].push_front(b);
                                break;
                            }
                            Err(TrySendError::Disconnected(_)) => held[i].clear(),
                        }
                    }
                }
                if !input_open && held.iter().all(|h| h.is_empty()) {
                    break;
                }
                let mut sel = Select::new();
                let r0 = sel.recv(&subs[0].replies);
                let r1 = sel.recv(&subs[1].replies);
                let stop = sel.recv(&stop_rx);
                let input = (input_open && held.iter().all(|h| h.len() < HOLD))
                    .then(|| sel.recv(&probe_rx));
                let Ok(op) = sel.select_timeout(Duration::from_millis(1)) else {
                    continue;
                };
                match op.index() {
                    i if i == r0 || i == r1 => {
                        let sub = if i == r0 { &subs[0] } else { &subs[1] };
                        if let Ok(batch) = op.recv(&sub.replies) {
                            let n = batch.len() as u64;
                            if reply_tx
                                .send_timeout(batch, Duration::from_millis(100))
                                .is_err()
                            {
                                sum.dropped_late
                                    .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    }
                    i if i == stop => {
                        // Nothing is ever sent on stop: readiness means the
                        // engine dropped it.
                        let _ = op.recv(&stop_rx);
                        break;
                    }
                    i if Some(i) == input => match op.recv(&probe_rx) {
                        Ok(batch) => {
                            let (t, u): (Vec<Probe>, Vec<Probe>) =
                                batch.into_iter().partition(|p| p.key.proto == Proto::Tcp);
                            for (k, part) in [t, u].into_iter().enumerate() {
                                if !part.is_empty() {
                                    held[k].push_back(part);
                                }
                            }
                        }
                        Err(_) => input_open = false,
                    },
                    _ => {}
                }
            }
            let [a, b] = subs;
            a.join();
            b.join();
        })?;
    Ok(Backend::new(
        probe_tx,
        reply_rx,
        counters,
        max_inflight,
        stop_tx,
        vec![router],
    ))
}
