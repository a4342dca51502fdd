//! Any bytes into the decoder: an error is fine, a panic or an allocation beyond the pixel
//! budget is a bug. This is the path every request body takes first.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(d) = predictor::decode::decode(data, 4_000_000) {
        assert!(u64::from(d.pixels.width()) * u64::from(d.pixels.height()) <= 4_000_000);
    }
});
