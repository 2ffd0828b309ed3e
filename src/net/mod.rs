//! Sockets and threads. Each backend takes `Probe`s on a bounded channel
//! and gives back validated `Reply`s on another; it never decides a state
//! on its own except what its reply proves.
//!
//! Invariants: the engine owns both channel ends it holds; dropping the
//! probe sender (and the stop sender) shuts a backend's threads down, and
//! `Backend::join` waits for them. Whether raw sockets can be used is
//! decided in exactly one place: `open_raw` returns `OpenError::Permission`.
//! Per-packet failures become `Counters`, never errors out of a loop.

pub mod connect;
pub mod mux;
pub mod raw;
pub mod route;
pub mod sys;
pub mod udp;
pub mod worker;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::validate::Reply;
use crate::wire::ethernet::EthernetAddress;

pub use crate::scan::Probe;

/// Packet counters shared with the backend's threads.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub send_errors: AtomicU64,
    pub received: AtomicU64,
    pub malformed: AtomicU64,
    pub not_reply: AtomicU64,
    pub bad_cookie: AtomicU64,
    pub dropped_late: AtomicU64,
}

impl Counters {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Hardware addresses learnt from ARP replies and Neighbour
/// Advertisements that proved a host.
pub type Neighbours = Arc<Mutex<HashMap<IpAddr, EthernetAddress>>>;

/// A running backend.
pub struct Backend {
    /// Probes travel in batches to amortize thread wake-ups.
    pub probes: Sender<Vec<Probe>>,
    pub replies: Receiver<Vec<Reply>>,
    pub counters: Arc<Counters>,
    /// Most probes the backend can have in flight (connect: file
    /// descriptors); None when only memory limits it.
    pub max_inflight: Option<usize>,
    /// Link-layer addresses of the hosts that answered ARP or Neighbour
    /// Discovery (raw backend; one entry per live neighbour).
    pub neighbours: Neighbours,
    /// Dropping this tells the backend's threads to stop.
    stop: Sender<()>,
    threads: Vec<JoinHandle<()>>,
}

impl Backend {
    /// Assemble a backend from its channel ends and threads (used by the
    /// real backends and by tests' scripted ones).
    pub fn new(
        probes: Sender<Vec<Probe>>,
        replies: Receiver<Vec<Reply>>,
        counters: Arc<Counters>,
        max_inflight: Option<usize>,
        stop: Sender<()>,
        threads: Vec<JoinHandle<()>>,
    ) -> Self {
        Backend {
            probes,
            replies,
            counters,
            max_inflight,
            neighbours: Neighbours::default(),
            stop,
            threads,
        }
    }

    /// The hardware address `ip` answered ARP or NDP from, if it did.
    pub fn neighbour(&self, ip: &IpAddr) -> Option<EthernetAddress> {
        self.neighbours
            .lock()
            .map(|m| m.get(ip).copied())
            .unwrap_or_else(|e| e.into_inner().get(ip).copied())
    }

    /// Stop the threads and wait for them.
    pub fn join(self) {
        let Backend {
            probes,
            stop,
            threads,
            ..
        } = self;
        drop(probes);
        drop(stop);
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Why a raw backend could not start.
#[derive(Debug)]
pub enum OpenError {
    /// No CAP_NET_RAW: the caller falls back to a connect scan.
    Permission(std::io::Error),
    Other(anyhow::Error),
}

/// Bound on reply batches queued from receiver to engine.
const REPLY_QUEUE: usize = 1024;
/// Bound on probe batches queued from engine to sender.
const PROBE_QUEUE: usize = 8;
/// Most probes the engine puts in one batch.
pub const PROBE_BATCH: usize = 64;
