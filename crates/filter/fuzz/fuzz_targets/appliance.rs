//! The appliance-language compiler never panics, and errors point inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wirecap_filter::{CompileOptions, Date, Filter};
use wirecap_pcap::LinkType;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let today = Date::from_days_since_epoch(19_000);
    match Filter::appliance(text, LinkType::ETHERNET, &CompileOptions::new(today)) {
        Ok(f) => {
            let _ = f.matches(0, 64, &[0u8; 64]);
        }
        Err(e) => {
            assert!(e.offset().is_none_or(|o| o <= text.len()));
            let _ = e.to_string();
        }
    }
});
