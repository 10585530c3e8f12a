//! The checked-in header `include/rtm.h` is what cbindgen generates from `src/lib.rs`:
//! this test regenerates it and fails on any difference. After changing the C ABI, run
//! `RTM_BLESS_HEADER=1 cargo test --release -p rtm-capi --test header` and commit the header.

use std::path::Path;

#[test]
fn header_is_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen parses src/lib.rs")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = dir.join("include/rtm.h");
    if std::env::var_os("RTM_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/rtm.h");
        return;
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is out of date: run `RTM_BLESS_HEADER=1 cargo test --release -p rtm-capi --test header` \
         and commit it",
        path.display()
    );
}

/// The values of the C ABI's documented #defines, as the header spells them.
#[test]
fn header_defines_the_contract_values() {
    let header = include_str!("../include/rtm.h");
    for (name, value) in [
        ("RTM_NO_ERROR", "0"),
        ("RTM_ERROR_INVALID_HANDLE", "6"),
        ("RTM_ERROR_INVALID_PARAMETER", "87"),
        ("RTM_ERROR_BUSY", "170"),
        ("RTM_ERROR_NO_MORE_ROUTES", "259"),
        ("RTM_ERROR_NO_SYSTEM_RESOURCES", "1450"),
        ("RTM_ONLY_THIS_NETWORK", "1"),
        ("RTM_ONLY_THIS_INTERFACE", "2"),
        ("RTM_ONLY_THIS_PROTOCOL", "4"),
        ("RTM_ONLY_BEST_ROUTES", "8"),
        ("RTM_INCLUDE_DISABLED_ROUTES", "1073741824"),
    ] {
        let line = format!("#define {name} ");
        let at = header
            .find(&line)
            .unwrap_or_else(|| panic!("{name} is not defined"));
        let rest = header[at + line.len()..].lines().next().unwrap().trim();
        let digits = rest.trim_end_matches(['u', 'U']);
        let parsed = if let Some(hex) = digits.strip_prefix("0x") {
            u64::from_str_radix(hex, 16).unwrap()
        } else {
            digits.parse().unwrap()
        };
        assert_eq!(parsed.to_string(), value, "{name} is {rest}");
        assert!(
            rest.ends_with('u') || rest.ends_with('U'),
            "{name} is not unsigned: {rest}"
        );
    }
}
