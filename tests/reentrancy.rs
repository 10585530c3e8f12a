//! An embedder's `Drop` may call back into the table whose value it drops.
//!
//! Values are dropped inside crossbeam-epoch's destructors, which run on whichever thread
//! pins the epoch afresh or flushes it. Each test writes enough garbage that the
//! destructors run inside the table's own calls (its reclamation steps, a feed's wait),
//! with a `Drop` that calls the table again. A call that held a lock while a destructor
//! ran would deadlock there; each test runs its work on a thread and fails if that thread
//! does not finish.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

use rtm::{Criteria, InterfaceId, Ipv4Net, ProtocolId, Route, RouteKey, RouteTable};

/// A payload whose drop, when `calls_back`, calls into the table `table` names.
#[derive(Clone, Debug)]
struct Payload {
    table: Which,
    calls_back: bool,
}

#[derive(Clone, Copy, Debug)]
enum Which {
    Collects,
    Writes,
}

static COLLECTS: OnceLock<RouteTable<Ipv4Net, Payload>> = OnceLock::new();
static WRITES: OnceLock<RouteTable<Ipv4Net, Payload>> = OnceLock::new();
static CALLS_BACK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static IN_DROP: Cell<bool> = const { Cell::new(false) };
}

fn key(p: &str) -> RouteKey<Ipv4Net> {
    RouteKey::new(
        p.parse().unwrap(),
        ProtocolId(1),
        InterfaceId(1),
        "192.0.2.1".parse().unwrap(),
    )
}

impl Drop for Payload {
    fn drop(&mut self) {
        if !self.calls_back {
            return;
        }
        match self.table {
            Which::Collects => {
                // `collect` runs destructors itself: call it from the outermost drop only,
                // or the drops it runs would recurse as deep as the garbage is long.
                if let Some(t) = COLLECTS.get().filter(|_| !IN_DROP.get()) {
                    IN_DROP.set(true);
                    t.collect();
                    IN_DROP.set(false);
                    CALLS_BACK.fetch_add(1, Ordering::Relaxed);
                }
            }
            Which::Writes => {
                if let Some(t) = WRITES.get() {
                    let inert = Payload {
                        table: Which::Writes,
                        calls_back: false,
                    };
                    t.add_route(Route::new(key("192.168.0.0/16"), inert))
                        .unwrap();
                    CALLS_BACK.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// Runs `work` on its own thread; fails if it has not finished within a minute (it
/// finishes in well under a second unless it deadlocked).
fn finishes(work: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        work();
        done.send(()).unwrap();
    });
    finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the table's call deadlocked in a value's Drop");
}

#[test]
fn a_drop_that_collects_the_same_table() {
    finishes(|| {
        let t = COLLECTS.get_or_init(RouteTable::new);
        let before = CALLS_BACK.load(Ordering::Relaxed);
        let k = key("10.0.0.0/8");
        for _ in 0..20_000 {
            let v = Payload {
                table: Which::Collects,
                calls_back: true,
            };
            // Each replace leaves the old value to the reclaimer.
            t.add_route(Route::new(k, v)).unwrap();
        }
        t.collect();
        assert!(
            CALLS_BACK.load(Ordering::Relaxed) > before,
            "the values' Drop ran and called the table"
        );
    });
}

#[test]
fn a_drop_that_writes_while_a_feed_waits() {
    finishes(|| {
        let t = WRITES.get_or_init(RouteTable::new);
        let mut feed = t
            .feed(Criteria::all().network("10.0.0.0/8".parse().unwrap()))
            .unwrap();
        let before = CALLS_BACK.load(Ordering::Relaxed);
        // Another thread stays pinned while the garbage is made, so that the epoch cannot
        // free any of it yet: it is all left for the pins of the waits below.
        let (pinned, is_pinned) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let guard = crossbeam_epoch::pin();
            pinned.send(()).unwrap();
            released.recv().unwrap();
            drop(guard);
        });
        is_pinned.recv().unwrap();
        let k = key("10.0.0.0/8");
        for _ in 0..20_000 {
            let v = Payload {
                table: Which::Writes,
                calls_back: true,
            };
            t.add_route(Route::new(k, v)).unwrap();
        }
        while feed.try_next().unwrap().is_some() {}
        release.send(()).unwrap();
        holder.join().unwrap();
        // Caught up (the drops' own writes are of another network): each call waits, and
        // pins, in the journal until its timeout, and those pins run the destructors.
        for _ in 0..500 {
            assert!(matches!(
                feed.next_timeout(Duration::from_micros(10)),
                Ok(None)
            ));
        }
        drop(feed);
        t.collect();
        assert!(
            CALLS_BACK.load(Ordering::Relaxed) > before,
            "the values' Drop ran and called the table"
        );
    });
}
