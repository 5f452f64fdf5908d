//! Parser + checker + diagnostic rendering on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(report) = congruity::lang::check_str("fuzz.interp", &text) {
        let _ = report.render_plain();
        let _ = format!("{:?}", miette::Report::new(report));
    }
});
