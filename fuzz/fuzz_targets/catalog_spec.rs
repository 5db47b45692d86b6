//! A catalog entry's text (YAML or JSON) as the dashboard and the API read it:
//! `parse_spec`, then `validate`. Checks: no panic; an entry that validates is shown for
//! editing as YAML (`spec_yaml`, the dashboard's edit page) and reads back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toolbelt_model::catalog::{parse_spec, spec_yaml};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = parse_spec(text) else {
        return;
    };
    if spec.validate().is_err() {
        return;
    }
    let yaml = spec_yaml(&spec).expect("a valid entry is shown as YAML");
    let back = parse_spec(&yaml).expect("its YAML reads back");
    assert_eq!(back, spec, "the YAML of a valid entry reads back as another:\n{yaml}");
});
