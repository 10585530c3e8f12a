//! Builds the C tests in `tests/c/` and the examples `examples/forwarding.c` and
//! `examples/batch.c` with the system `cc` against the static library that cargo built for
//! this test run (`<target>/<profile>/librtm_capi.a`), and runs them: the tests once plain
//! and once under AddressSanitizer (which also reports leaks at exit). Each C program exits
//! non-zero on the first failed check.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The static library of this build: rustc writes every crate type of `rtm-capi` into
/// `<profile>/deps/` (where this test binary lives) in the same invocation that built the
/// rlib this test links, and cargo copies some of them up to `<profile>/`.
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("the test binary is in <profile>/deps");
    let candidates = [deps.join("librtm_capi.a"), deps.join("../librtm_capi.a")];
    candidates
        .iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no librtm_capi.a in {}", deps.display()))
        .clone()
}

fn capi_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Compiles `source` into `name` (with `extra` flags) and returns the executable's path.
fn build(source: &str, name: &str, extra: &[&str]) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let lib = static_lib();
    let status = Command::new("cc")
        .args(["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-O1", "-g"])
        .args(["-Wall", "-Wextra", "-Werror"])
        .args(extra)
        .arg("-I")
        .arg(capi_dir().join("include"))
        .arg(capi_dir().join(source))
        .arg(&lib)
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&out)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed on {source}");
    out
}

fn run(exe: &Path, args: &[&Path]) {
    let out = Command::new(exe)
        .args(args)
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        .output()
        .expect("run the C program");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        exe.display(),
        out.status
    );
    print!("{stdout}");
}

const ASAN: &[&str] = &["-fsanitize=address", "-fno-omit-frame-pointer"];

#[test]
fn c_api_plain() {
    run(&build("tests/c/api.c", "api", &[]), &[]);
}

#[test]
fn c_api_asan() {
    run(&build("tests/c/api.c", "api-asan", ASAN), &[]);
}

#[test]
fn c_threads_plain() {
    run(&build("tests/c/threads.c", "threads", &[]), &[]);
}

#[test]
fn c_threads_asan() {
    run(&build("tests/c/threads.c", "threads-asan", ASAN), &[]);
}

/// The example loads the MAE-West table and checks its own lookups and enumeration.
#[test]
fn c_example_forwarding() {
    let data = capi_dir().join("../benches/data/mae-west-v4.txt");
    run(&build("examples/forwarding.c", "forwarding", &[]), &[&data]);
}

/// The example of a batch: a withdraw and two announcements as one commit, and a commit
/// that fails whole; under AddressSanitizer, which also checks that commits free batches.
#[test]
fn c_example_batch() {
    run(&build("examples/batch.c", "batch-asan", ASAN), &[]);
}
