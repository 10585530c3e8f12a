//! Replays the committed corpus of every target, then a few thousand random inputs per
//! target, through the same functions the fuzz targets call. Runs on stable without
//! cargo-fuzz: `cd fuzz && cargo test`.

use std::fs;
use std::path::Path;
use std::sync::Mutex;

/// The `reclaimer` target checks that `collect()` freed exactly what no snapshot sees,
/// which holds only while no other thread pins crossbeam-epoch's default collector: the
/// tests of this binary run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The random inputs per target.
const RANDOM_INPUTS: usize = 3000;

/// SplitMix64: deterministic, so that a failure names a reproducible seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Bytes with a bias towards small values, so that selectors collide and `Option`s,
    /// enum tags and lengths take their small values more often than uniform bytes would.
    fn input(&mut self) -> Vec<u8> {
        let len = (self.next() % 1024) as usize;
        let mut v = Vec::with_capacity(len);
        for _ in 0..len {
            let r = self.next();
            v.push(match r % 4 {
                0 => (r >> 8) as u8 % 4,
                _ => (r >> 8) as u8,
            });
        }
        v
    }
}

fn replay_corpus(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut n = 0;
    let mut entries: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    for path in entries {
        let data = fs::read(&path).unwrap();
        eprintln!("replaying {}", path.display());
        run(&data);
        n += 1;
    }
    n
}

fn random_inputs(seed: u64, run: fn(&[u8])) {
    let mut rng = Rng(seed);
    for i in 0..RANDOM_INPUTS {
        let data = rng.input();
        let r = std::panic::catch_unwind(|| run(&data));
        if let Err(e) = r {
            panic!("random input {i} (seed {seed:#x}) failed: {data:?}: {e:?}");
        }
    }
}

fn check(target: &str, seed: u64, run: fn(&[u8])) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let n = replay_corpus(target, run);
    assert!(n > 0, "the {target} corpus is empty");
    random_inputs(seed, run);
}

#[test]
fn handle_misuse() {
    check("handle_misuse", 0x68616e646c65, rtm_fuzz::run_handle_misuse);
}

#[test]
fn table_ops() {
    check("table_ops", 0x7461626c65, rtm_fuzz::run_table_ops);
}

#[test]
fn capi_misuse() {
    check("capi_misuse", 0x63617069, rtm_fuzz::run_capi_misuse);
}

#[test]
fn reclaimer() {
    check("reclaimer", 0x7265636c61696d, rtm_fuzz::run_reclaimer);
}

#[test]
fn feed() {
    check("feed", 0x66656564, rtm_fuzz::run_feed);
}

#[test]
fn fib_ops() {
    check("fib_ops", 0x666962, rtm_fuzz::run_fib_ops);
}

#[test]
fn groups() {
    check("groups", 0x67726f757073, rtm_fuzz::run_groups);
}

#[test]
fn multipath() {
    check("multipath", 0x6d756c7469, rtm_fuzz::run_multipath);
}

/// Inputs too short to hold a header or one operation still run (and check the empty
/// tables' final state) without panicking.
#[test]
fn empty_and_tiny_inputs_are_accepted() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for run in [
        rtm_fuzz::run_handle_misuse as fn(&[u8]),
        rtm_fuzz::run_table_ops,
        rtm_fuzz::run_reclaimer,
        rtm_fuzz::run_feed,
        rtm_fuzz::run_capi_misuse,
        rtm_fuzz::run_fib_ops,
        rtm_fuzz::run_groups,
        rtm_fuzz::run_multipath,
    ] {
        run(&[]);
        run(&[0]);
        run(&[0xff; 64]);
    }
}
